"""What the kernel's per-group float steps cost: the 4-bit VNNI path with its own group_step (v0: int32 sums -> cvt,
x activation scale, fma with the weights' scale, fnma with the min term) against variants that are NOT correct
kernels, only bounds: v1 no scaling at all (cvt + add: what removing every per-group float step could save), v3 one
int32 multiply-add per group (the sub-block scale applied in int32, as a kernel with activations quantized per 256
would do), v4 two (scale and min in int32). The 1.5B's 4-bit layer shapes x 28, codes cache-resident (as
qmatmul_rows.py: the arithmetic, not the memory stream), best of 3 x 15 calls per variant, 2 threads.
`python docs/results/bench/profile/group_float.py` (compiles 4 variants, ~2 minutes); output: group_float-*.txt."""
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.cpp_extension import load

from specdec.weights.kernels import CFLAGS, SOURCE

OLD = """  __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(xs));
  tot = _mm512_fmadd_ps(t, s, tot);
  return _mm512_fnmadd_ps(m, _mm512_set1_ps(xsq), tot);"""
NEW = {
    "v0": OLD,
    "v1": "  return _mm512_add_ps(tot, _mm512_cvtepi32_ps(acc));",
    "v3": "  return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(tot), "
          "_mm512_mullo_epi32(acc, _mm512_castps_si512(s))));",
    "v4": "  __m512i t = _mm512_add_epi32(_mm512_castps_si512(tot), _mm512_mullo_epi32(acc, _mm512_castps_si512(s)));\n"
          "  return _mm512_castsi512_ps(_mm512_sub_epi32(t, _mm512_mullo_epi32(_mm512_castps_si512(m), "
          "_mm512_set1_epi32((int)xsq))));",
}
src = SOURCE.read_text()
assert OLD in src, "group_step changed: update this script"
tmp = Path(tempfile.mkdtemp(prefix="group_float."))
exts = {}
for v, body in NEW.items():
    (tmp / f"{v}.cpp").write_text(src.replace(OLD, body))
    exts[v] = load(name=f"group_float_{v}", sources=[str(tmp / f"{v}.cpp")], extra_cflags=CFLAGS,
                   extra_ldflags=["-fopenmp"], build_directory=None, verbose=False)
torch.set_num_threads(2)


def mk(N, K):
    B, G = N // 16, K // 32
    codes = torch.randint(0, 256, (B, G, 256), dtype=torch.uint8)
    sc = torch.randint(0, 64, (B, G, 16), dtype=torch.uint8)
    mn = torch.randint(0, 64, (B, G, 16), dtype=torch.uint8)
    d, dm = (torch.rand(B, G // 8, 16) * 1e-3).half(), (torch.rand(B, G // 8, 16) * 1e-3).half()
    return codes, sc, mn, d, dm, 4


layers = [mk(2048, 1536), mk(1536, 1536), mk(17920, 1536), mk(1536, 8960)]


def timed(ext, M, reps=15):
    xs = [torch.randn(M, w[0].shape[1] * 32) for w in layers]
    for x, w in zip(xs, layers):
        ext.qmatmul(x, *w)
    best = 1e9
    for _ in range(reps):
        t0 = time.perf_counter()
        for x, w in zip(xs, layers):
            ext.qmatmul(x, *w)
        best = min(best, time.perf_counter() - t0)
    return best * 28 * 1e3


for M in (1, 4, 8, 16):
    r = {v: min(timed(e, M) for _ in range(3)) for v, e in exts.items()}
    print(f"rows {M:2d}: " + "  ".join(f"{v} {ms:6.1f} ms" for v, ms in r.items()) + "  "
          + "  ".join(f"{v}/v0 {r[v] / r['v0']:.3f}" for v in r if v != "v0"), flush=True)
