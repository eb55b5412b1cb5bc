"""Bytes a second of the kernel alone on the draft's layer shapes against the target's, 1 row, one window: the
0.5B's 24 layers (q|k|v 1152 x 896, o 896 x 896, gate|up 9728 x 896, down 896 x 4864) and the 1.5B's 28 (q|k|v
2048 x 1536, o 1536 x 1536, gate|up 17920 x 1536, down 1536 x 8960), all 4-bit with random codes, distinct weights
per layer (streamed from memory), alternating the two models, median of 15 passes each, printed per call shape too.
Why: a 0.5B draft pass cost 0.44-0.53 of a 1.5B pass on two machines while its weights are ~0.25 of the bytes.
`python docs/results/bench/profile/layer_shapes.py` (about 1 minute)."""
import time

import numpy as np
import torch

from specdec.weights import kernels

ext = kernels.load()
torch.set_num_threads(2)
g = torch.Generator().manual_seed(0)


def mk(N, K):
    B, G = N // 16, K // 32
    S = 8 if G % 8 == 0 else 1  # a scale per 8 groups (Q4_K) where K allows, else per group (the 0.5B's 896)
    return (torch.randint(0, 256, (B, G, 256), dtype=torch.uint8, generator=g),
            torch.randint(0, 64, (B, G, 16), dtype=torch.uint8, generator=g),
            torch.randint(0, 64, (B, G, 16), dtype=torch.uint8, generator=g),
            (torch.rand(B, G // S, 16, generator=g) * 1e-3).half(), (torch.rand(B, G // S, 16, generator=g) * 1e-3).half(), 4)


SHAPES = {"0.5B": (24, ((1152, 896), (896, 896), (9728, 896), (896, 4864))),
          "1.5B": (28, ((2048, 1536), (1536, 1536), (17920, 1536), (1536, 8960)))}
models = {}
for name, (layers, shapes) in SHAPES.items():
    ws = [mk(n, k) for _ in range(layers) for n, k in shapes]
    xs = [torch.randn(1, w[0].shape[1] * 32, generator=g) for w in ws]
    nbytes = sum(sum(t.numel() * t.element_size() for t in w[:5]) for w in ws)
    models[name] = (ws, xs, nbytes, len(shapes))


def one(ws, xs):
    t = time.perf_counter()
    for x, w in zip(xs, ws):
        ext.qmatmul(x, *w)
    return time.perf_counter() - t


times = {n: [] for n in models}
per_shape = {n: [[] for _ in range(m[3])] for n, m in models.items()}
for _ in range(15):
    for name, (ws, xs, nbytes, k) in models.items():
        times[name].append(one(ws, xs))
        for j in range(k):  # each call shape alone, all its layers
            per_shape[name][j].append(one(ws[j::k], xs[j::k]))
for name, (ws, xs, nbytes, k) in models.items():
    ms = np.median(times[name]) * 1e3
    print(f"{name}: {len(ws)} calls, {nbytes / 1e6:.1f} MB, {ms:.2f} ms a pass, {nbytes / ms / 1e6:.1f} GB/s, "
          f"{ms * 1e3 / len(ws):.0f} us a call", flush=True)
    for j, (n, kk) in enumerate(SHAPES[name][1]):
        sb = sum(sum(t.numel() * t.element_size() for t in w[:5]) for w in ws[j::k])
        sms = np.median(per_shape[name][j]) * 1e3
        print(f"   {n} x {kk}: {sms:.2f} ms for {len(ws) // k} calls, {sb / sms / 1e6:.1f} GB/s", flush=True)
