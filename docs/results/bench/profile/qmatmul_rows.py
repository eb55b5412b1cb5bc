"""The VNNI kernel's time by rows, apart from the rest of a pass: the 1.5B's four linear layers (qkv 2048x1536,
o 1536x1536, gate+up 17920x1536, down 1536x8960, 4-bit) x 28 and its output layer (151936x1536, 8-bit), random
codes, the fastest of 20 (layers) / 5 (head) calls. The layers' codes are reused call after call, so they sit in
the caches: this times the arithmetic, which is what grows with the rows (a real 1-row pass streams the weights
from memory and costs more). `python docs/results/bench/profile/qmatmul_rows.py` (about a minute)."""
import torch, time, sys
from specdec.weights import kernels
ext = kernels.load()
torch.set_num_threads(2)
def mk(N, K, bits):
    B, G = N // 16, K // 32
    codes = torch.randint(0, 256, (B, G, 256 if bits == 4 else 512), dtype=torch.uint8)
    sc = torch.randint(0, 64, (B, G, 16), dtype=torch.uint8); mn = torch.randint(0, 64, (B, G, 16), dtype=torch.uint8)
    S = 8 if bits == 4 else 1
    d = (torch.rand(B, G // S, 16) * 1e-3).half(); dm = (torch.rand(B, G // S, 16) * 1e-3).half()
    return codes, sc, mn, d, dm, bits
layers = [mk(2048, 1536, 4), mk(1536, 1536, 4), mk(17920, 1536, 4), mk(1536, 8960, 4)]
head = mk(151936, 1536, 8)
def t(ws, M, reps):
    xs = [torch.randn(M, w[0].shape[1] * 32) for w in ws]
    for x, w in zip(xs, ws): ext.qmatmul(x, *w)
    best = 1e9
    for _ in range(reps):
        t0 = time.perf_counter()
        for x, w in zip(xs, ws): ext.qmatmul(x, *w)
        best = min(best, time.perf_counter() - t0)
    return best
for M in [1, 2, 4, 8, 12, 16, 24, 32]:
    lt = t(layers, M, 20) * 28
    ht = t([head], M, 5)
    print(f"M={M:2d} layers {lt*1e3:6.1f} ms  head {ht*1e3:6.1f} ms  total {(lt+ht)*1e3:6.1f}", flush=True)
