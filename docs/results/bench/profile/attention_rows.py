"""The kernel library's attention alone, one layer of the 1.5B (12 query heads, 2 KV heads, D 128) after 256
cached tokens, by rows (causal among the new rows): median of 200 calls.
`python docs/results/bench/profile/attention_rows.py`"""
import time, torch, statistics
from specdec.weights import kernels
ext = kernels.load(); torch.set_num_threads(2)
g = torch.Generator().manual_seed(0)
Hq, Hkv, D, S = 12, 2, 128, 2176
kc = torch.randn(1, Hkv, S, D, generator=g); vc = torch.randn(1, Hkv, S, D, generator=g)
for T in (1, 8, 16):
    L = 256 + T
    q = torch.randn(1, Hq, T, D, generator=g)
    m = torch.zeros(T, L, dtype=torch.bool); m[:, :256] = True; m[:, 256:] = torch.ones(T, T, dtype=torch.bool).tril()
    for _ in range(20): ext.attention(q, kc, vc, m, 0.088)
    ts = []
    for _ in range(200):
        t0 = time.perf_counter(); ext.attention(q, kc, vc, m, 0.088); ts.append(time.perf_counter() - t0)
    print(f"T={T}: {statistics.median(ts)*1e6:.0f} us a layer, x28 = {statistics.median(ts)*28e3:.2f} ms", flush=True)
