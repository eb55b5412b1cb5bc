"""The 1.5B's 4-bit layers alone (28 distinct sets of qkv, o, gate+up, down; random codes, streamed from memory)
on the VNNI path for 1, 2 and 4 rows, median and fastest of 9 passes, twice; used to time prefetching on 1-row
passes (the kernel before and after the change, one edit apart). Output of 2026-12-06: six_bit-2026-12-06.md."""
import time, torch, numpy as np
from specdec.weights import kernels
ext = kernels.load(); torch.set_num_threads(2)
g = torch.Generator().manual_seed(0)
def mk(N, K, bits):
    B, G = N // 16, K // 32; S = 8 if bits == 4 else 1
    return (torch.randint(0, 256, (B, G, 256 if bits == 4 else 512), dtype=torch.uint8, generator=g),
            torch.randint(0, 64, (B, G, 16), dtype=torch.uint8, generator=g),
            torch.randint(0, 64, (B, G, 16), dtype=torch.uint8, generator=g),
            (torch.rand(B, G // S, 16, generator=g) * 1e-3).half(), (torch.rand(B, G // S, 16, generator=g) * 1e-3).half(), bits)
ws = [mk(n, k, 4) for _ in range(28) for n, k in ((2048, 1536), (1536, 1536), (17920, 1536), (1536, 8960))]
ext.set_amx_min_rows(12)
for rep in range(2):
  for M in [1, 2, 4]:
    xs = [torch.randn(M, w[0].shape[1] * 32, generator=g) for w in ws]
    ts=[]
    for _ in range(9):
        t0 = time.perf_counter()
        for x, w in zip(xs, ws): ext.qmatmul(x, *w)
        ts.append(time.perf_counter() - t0)
    print(M, "median %.1f ms min %.1f" % (np.median(ts)*1e3, min(ts)*1e3), flush=True)
