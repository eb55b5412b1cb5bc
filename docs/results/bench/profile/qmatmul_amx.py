"""The quantized linear layers of the 1.5B alone, by rows, on the kernel's VNNI path and its AMX path, same
weights, same inputs, one window: 28 distinct layer sets (qkv 2048x1536, o 1536x1536, gate+up 17920x1536,
down 1536x8960, 4-bit codes, streamed from memory as in a real pass) and the output layer (151936x1536,
8-bit codes, as the bundled model has it). Fastest of REPS calls of the whole set.
`python docs/results/bench/profile/qmatmul_amx.py [REPS]` (about 2 minutes). Needs a CPU with AMX for the AMX
column; prints `-` there otherwise."""
import sys
import time

import torch

from specdec.weights import kernels

reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
ext = kernels.load()
torch.set_num_threads(2)
g = torch.Generator().manual_seed(0)


def mk(N, K, bits):
    B, G = N // 16, K // 32
    S = 8 if bits == 4 else 1
    return (torch.randint(0, 256, (B, G, 256 if bits == 4 else 512), dtype=torch.uint8, generator=g),
            torch.randint(0, 64, (B, G, 16), dtype=torch.uint8, generator=g),
            torch.randint(0, 64, (B, G, 16), dtype=torch.uint8, generator=g),
            (torch.rand(B, G // S, 16, generator=g) * 1e-3).half(), (torch.rand(B, G // S, 16, generator=g) * 1e-3).half(),
            bits)


ws = [mk(n, k, 4) for _ in range(28) for n, k in ((2048, 1536), (1536, 1536), (17920, 1536), (1536, 8960))]
ws.append(mk(151936, 1536, 8))
gb = sum(w[0].numel() + w[1].numel() * 2 + w[3].numel() * 4 for w in ws) / 1e9


def best(M, amx_rows):
    ext.set_amx_min_rows(amx_rows)
    xs = [torch.randn(M, w[0].shape[1] * 32, generator=g) for w in ws]
    t_best = 1e9
    for _ in range(reps):
        t0 = time.perf_counter()
        for x, w in zip(xs, ws):
            ext.qmatmul(x, *w)
        t_best = min(t_best, time.perf_counter() - t0)
    return t_best * 1e3


amx = ext.amx_available()
print(f"{gb:.2f} GB of codes and scales a pass; AMX available: {amx}")
print("| rows | VNNI ms | AMX ms | VNNI x 1-row | AMX x VNNI 1-row |")
print("|---:|---:|---:|---:|---:|")
base = None
for M in [1, 2, 4, 8, 12, 16, 24, 32, 48, 64]:
    v = best(M, 0)
    base = base or v
    a = best(M, 1) if amx else None
    print(f"| {M} | {v:.1f} | {'-' if a is None else f'{a:.1f}'} | {v / base:.2f} | "
          f"{'-' if a is None else f'{a / base:.2f}'} |", flush=True)
ext.set_amx_min_rows(kernels.amx_threshold())
