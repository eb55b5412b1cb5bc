"""Prefetching on 1-row passes, A/B inside one process: this kernel (every pass prefetches its codes 8 groups
ahead) and a copy of its source built under another name whose block loops prefetch only for 2+ rows (the kernel
before 63bf98e), called in alternation on the same weights so that a machine whose memory bandwidth drifts (seen on
Zen 4: a 1-row pass of the 1.5B 23.6 and 35.9 ms minutes apart) weighs on both alike.
Shapes: the 1.5B's 4-bit layers (28 distinct sets of qkv, o, gate+up, down; random codes, streamed from memory) and
its output layer as 6-bit codes (151936 x 1536). Per round one pass of each kernel in turn (which goes first
alternates); median over rounds and the median of the per-round ratios.
`python docs/results/bench/profile/prefetch_ab.py [ROUNDS]` (about 2 minutes with 40 rounds)."""
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.cpp_extension import load as cpp_load

from specdec.weights import kernels, quant

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
torch.set_num_threads(2)
new = kernels.load()
src = kernels.SOURCE.read_text()
edited, n = re.subn(r"^(    )(for \(int64_t o = 0; o < (?:cbytes|384); o \+= 64\) _mm_prefetch)", r"\1if (R > 1) \2", src,
                    flags=re.M)
assert n == 2, f"expected the two block loops' prefetch lines, found {n}"
tmp = Path(tempfile.mkdtemp())
(tmp / "qmatmul_nopf1.cpp").write_text(edited)
old = cpp_load("qmatmul_nopf1", [str(tmp / "qmatmul_nopf1.cpp")], extra_cflags=kernels.CFLAGS,
               extra_ldflags=["-fopenmp"], build_directory=str(tmp), verbose=False)
for ext in (new, old):
    ext.set_amx_min_rows(0)  # no AMX here; where there is, keep both on VNNI

g = torch.Generator().manual_seed(0)


def mk(N, K):
    B, G = N // 16, K // 32
    return (torch.randint(0, 256, (B, G, 256), dtype=torch.uint8, generator=g),
            torch.randint(0, 64, (B, G, 16), dtype=torch.uint8, generator=g),
            torch.randint(0, 64, (B, G, 16), dtype=torch.uint8, generator=g),
            (torch.rand(B, G // 8, 16, generator=g) * 1e-3).half(), (torch.rand(B, G // 8, 16, generator=g) * 1e-3).half(), 4)


layers = [mk(n, k) for _ in range(28) for n, k in ((2048, 1536), (1536, 1536), (17920, 1536), (1536, 8960))]
N, K = 151936, 1536
rng = np.random.default_rng(0)
b = rng.integers(0, 256, size=(N * K // 256, 210), dtype=np.uint8)
b[:, 208:210] = rng.uniform(0.001, 0.05, size=(N * K // 256, 1)).astype(np.float16).view(np.uint8)
w6 = quant.pack(quant.gguf_codes(b.reshape(N, -1), "Q6_K", N, K))
out6 = (w6.codes, w6.sc, w6.mn, w6.d, w6.dm, 6)


def one(ext, ws, xs):
    t = time.perf_counter()
    for x, w in zip(xs, ws):
        ext.qmatmul(x, *w)
    return time.perf_counter() - t


print("CPU:", next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?"),
      flush=True)
for name, ws in (("4-bit layers", layers), ("6-bit output layer", [out6])):
    for rows in (1, 2):
        xs = [torch.randn(rows, w[0].shape[1] * 32, generator=g) for w in ws]
        one(new, ws, xs), one(old, ws, xs)  # warm both
        t_new, t_old = [], []
        for r in range(rounds):
            pair = (new, old) if r % 2 == 0 else (old, new)
            a, b_ = one(pair[0], ws, xs), one(pair[1], ws, xs)
            (t_new if pair[0] is new else t_old).append(a)
            (t_old if pair[0] is new else t_new).append(b_)
        ratio = np.median(np.array(t_new) / np.array(t_old))
        print(f"{name}, {rows} row(s): prefetch {np.median(t_new) * 1e3:.2f} ms, without (1 row) "
              f"{np.median(t_old) * 1e3:.2f} ms; median ratio {ratio:.3f}", flush=True)
