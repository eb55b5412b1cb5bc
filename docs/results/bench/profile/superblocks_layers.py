"""The per-256 super-block path against the per-32 path: the 1.5B's 4-bit layer shapes x 28, codes cache-resident,
interleaved A/B (the switch flipped between timings), best of 5 rounds x 10 calls.
`python docs/results/bench/profile/superblocks_layers.py`; output: superblocks_layers-*.txt."""
import time, torch
from specdec.weights import kernels
ext = kernels.load(); torch.set_num_threads(2)
def mk(N, K):
    B, G = N // 16, K // 32
    return (torch.randint(0, 256, (B, G, 256), dtype=torch.uint8), torch.randint(0, 64, (B, G, 16), dtype=torch.uint8),
            torch.randint(0, 64, (B, G, 16), dtype=torch.uint8), (torch.rand(B, G // 8, 16) * 1e-3).half(),
            (torch.rand(B, G // 8, 16) * 1e-3).half(), 4)
layers = [mk(2048, 1536), mk(1536, 1536), mk(17920, 1536), mk(1536, 8960)]
def once(xs):
    t0 = time.perf_counter()
    for x, w in zip(xs, layers): ext.qmatmul(x, *w)
    return time.perf_counter() - t0
for M in (1, 2, 4, 8, 16, 32):
    xs = [torch.randn(M, w[0].shape[1] * 32) for w in layers]
    best = {False: 1e9, True: 1e9}
    for _ in range(5):
        for on in (False, True):
            ext.set_superblocks(on); once(xs)
            best[on] = min(best[on], min(once(xs) for _ in range(10)))
    ext.set_superblocks(False)
    a, b = best[False] * 28e3, best[True] * 28e3
    print(f"rows {M:2d}: per-32 {a:6.1f} ms  per-256 {b:6.1f} ms  ratio {b / a:.3f}", flush=True)
