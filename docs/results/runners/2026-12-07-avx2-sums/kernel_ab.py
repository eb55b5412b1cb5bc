"""The AVX2 layer before and after the pinned sums (7477005), one process, interleaved: the bundled 1.5B's three
layer shapes (8960x1536, 1536x8960, 1536x1536) with random codes, each build's fastest of REPS per row count
(3 calls each), and their outputs compared bit for bit. COPIES=10: ten copies of the shapes (about 150 MB of
4-bit codes), streamed from memory as in a pass.
    [BITS=4|6|8] [COPIES=1] [REPS=12] python docs/results/runners/2026-12-07-avx2-sums/kernel_ab.py"""
import os
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.cpp_extension import load

BITS, COPIES, REPS = (int(os.environ.get(k, v)) for k, v in (("BITS", "4"), ("COPIES", "1"), ("REPS", "12")))
root = Path(__file__).resolve().parents[4]
work = Path(tempfile.mkdtemp())
exts = {}
for name, rev in (("before", "7477005~1"), ("after", "7477005")):
    d = work / name
    d.mkdir()
    for f in ("qmatmul_avx2.cpp", "glue.h"):
        src = subprocess.run(["git", "-C", str(root), "show", f"{rev}:specdec/weights/kernels/{f}"],
                             check=True, capture_output=True, text=True).stdout
        (d / f).write_text(src)
    exts[name] = load(name=f"qm_{name}", sources=[str(d / "qmatmul_avx2.cpp")], build_directory=str(d),
                      extra_cflags=["-O3", "-mavx2", "-mfma", "-mf16c", "-fopenmp"], extra_ldflags=["-fopenmp"])
torch.manual_seed(0)
cb = {4: 256, 6: 384, 8: 512}[BITS]


def weights(N, K):
    B, G = N // 16, K // 32
    u8 = lambda *s, hi=256: torch.randint(0, hi, s, dtype=torch.uint8)  # noqa: E731
    return (u8(B, G, cb), u8(B, G, 16, hi=64), u8(B, G, 16, hi=64), (torch.rand(B, G // 8, 16) * 0.01).half(),
            (torch.rand(B, G // 8, 16) * 0.01).half())


shapes = [(8960, 1536), (1536, 8960), (1536, 1536)] * COPIES
ws = [weights(*s) for s in shapes]
rows = [1, 2, 4, 8, 16]
xs = {m: [torch.randn(m, k) for _, k in shapes] for m in rows}
for m in rows:  # the same bits
    for x, w in zip(xs[m][:3], ws[:3]):
        assert torch.equal(exts["before"].qmatmul(x, *w, BITS), exts["after"].qmatmul(x, *w, BITS))
best = {(n, m): float("inf") for n in exts for m in rows}
for _ in range(REPS):
    for m in rows:
        for n, e in exts.items():
            t = time.perf_counter()
            for _ in range(3):
                for x, w in zip(xs[m], ws):
                    e.qmatmul(x, *w, BITS)
            best[(n, m)] = min(best[(n, m)], (time.perf_counter() - t) / 3)
macs = sum(a * b for a, b in shapes)
print(f"bits {BITS}, {COPIES} cop{'y' if COPIES == 1 else 'ies'} of the shapes, fastest of {REPS}; outputs equal")
print("| build | " + " | ".join(f"{m} rows: ms (GMAC/s)" for m in rows) + " |")
for n in exts:
    print(f"| {n} | " + " | ".join(f"{best[(n, m)] * 1e3:.2f} ({m * macs / best[(n, m)] / 1e9:.0f})" for m in rows) + " |")
