"""specdec's CPU kernel for quantized linear layers (qmatmul.cpp), compiled once per machine and torch.

    qmatmul(x (M, K) float32, codes, sc, mn, d, dm, bits) -> (M, N) float32

Built with torch.utils.cpp_extension (gcc and ninja; about 30 s) into `<cache>/kernels/<torch>-<source>/` the
first time it is needed (or at `specdec models pull`), then loaded in well under a second. Needs a CPU with
AVX512-VNNI (Intel Ice Lake / Sapphire Rapids and later, AMD Zen 4 and later). A CPU with AVX2, FMA and F16C
but not those (AMD Zen 2/3, Intel Haswell to Comet Lake, Intel client chips from Alder Lake on) gets the same
layer from qmatmul_avx2.cpp (`mode() == "avx2"`, `load_avx2()`): the same numbers bit for bit, only the linear
layers (norms, attention and the rest stay torch's). Elsewhere the int4 weights run on PyTorch's own int4
kernel (specdec.weights.quant). `SPECDEC_QKERNEL=avx2` forces the AVX2 build, `aten` PyTorch's kernel,
`reference` the slow pure-torch emulation of this kernel's arithmetic (tests).

AMX (Sapphire Rapids and later, Linux): passes of at least `AMX_MIN_ROWS` rows take the kernel's AMX path (one
tile multiply for 16 rows), shorter ones the VNNI path; both give the same bits for a row (the same int32 sums,
the same float steps), so a token's logits do not depend on the path. `SPECDEC_QKERNEL=vnni` keeps every pass
on VNNI, `SPECDEC_QKERNEL=amx` sends every pass to AMX (refused where the CPU or OS has no AMX).

Super-blocks (opt-in, `SPECDEC_SUPERBLOCKS=1`): 4-bit Q4_K weights (8 groups of 32 sharing d and dmin) take a path
whose activations are quantized per 256 values instead of per 32, so the sub-block scales apply in int32 and the
float steps run once per super-block (qmatmul.cpp, "super-blocks"); other numbers than the default path, row-invariant
like it, VNNI only (passes that take AMX keep the per-32 path).

Prompt prefills of 48+ rows on CPUs with AMX-BF16 (unless `SPECDEC_QKERNEL=int8` or `vnni`): `qmatmul_bf16`, the
weights dequantized to bf16 once a pass and multiplied by bf16 tiles (fp32 sums); not the int8 kernel's numbers, so
only prefills take it (plain and speculative runs prefill alike; runners/torch_runner.py, docs/runners.md "A prefill
through bf16 tiles").
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import torch

from specdec import cpuinfo
from specdec.errors import ModelLoadError

SOURCE = Path(__file__).with_name("qmatmul.cpp")
FLAGS = ("avx512f", "avx512bw", "avx512_vnni", "f16c")
SOURCE_AVX2 = Path(__file__).with_name("qmatmul_avx2.cpp")
GLUE = "glue.h"  # rope_write and forward_layers: the same C++ in both builds, next to each source
FLAGS_AVX2 = ("avx2", "fma", "f16c")
CFLAGS_AVX2 = ["-O3", "-mavx2", "-mfma", "-mf16c", "-fopenmp"]
# -mamx-*, -mavx512bf16: the AMX paths' instructions are only ever run after a run-time check (amx_available,
# bf16_prefill_available)
CFLAGS = ["-O3", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni", "-mf16c", "-mfma",
          "-mamx-tile", "-mamx-int8", "-mamx-bf16", "-mavx512bf16", "-fopenmp"]
_LOCK = threading.Lock()
_EXT = None
_EXT_AVX2 = None


def _cpu_flags() -> list[str]:
    return cpuinfo.flags()  # a seam of its own: the kernel-choice tests give it other CPUs' flags


def cpu_supported() -> bool:
    flags = _cpu_flags()
    return all(f in flags for f in FLAGS)


def cpu_supported_avx2() -> bool:
    flags = _cpu_flags()
    return all(f in flags for f in FLAGS_AVX2)


def cpu_has_amx() -> bool:
    """The CPU's AMX int8 flags (the OS's consent is asked when the kernel turns AMX on)."""
    flags = _cpu_flags()
    return "amx_tile" in flags and "amx_int8" in flags


# auto: VNNI, AMX int8 for passes of AMX_MIN_ROWS+ rows (the same bits), and bf16 tiles for prompt prefills of 48+
# rows where AMX-BF16 runs; int8: the same without the bf16 prefill (every number the int8 kernel's, as before
# 2026-12-06); vnni: no AMX at all; amx: AMX int8 for every pass (and the bf16 prefill); avx2: the AVX2 build
MODES = ("auto", "int8", "vnni", "amx", "avx2", "aten", "reference")
# passes of at least this many rows take the AMX path under "auto": the crossover measured on the 1.5B's layers
# and output layer (docs/runners.md: 8 rows VNNI 51 vs AMX 59 ms, 12 rows 69 vs 66)
AMX_MIN_ROWS = 12


def _forced() -> str:
    forced = os.environ.get("SPECDEC_QKERNEL", "").strip().lower() or "auto"
    if forced not in MODES:
        raise ModelLoadError(f"SPECDEC_QKERNEL must be one of {', '.join(MODES)}, got {forced!r}")
    return forced


def mode() -> str:
    """"vnni" (this kernel, with its AMX path where that runs), "avx2" (its AVX2 build: the linear layers only),
    "aten" (PyTorch's int4/int8 kernels) or "reference" (pure torch, slow)."""
    forced = _forced()
    if forced in ("vnni", "avx2", "aten", "reference"):
        return forced
    if forced == "amx":
        return "vnni"  # the same kernel and weight layout; load() turns the AMX path on or refuses
    return "vnni" if cpu_supported() else "avx2" if cpu_supported_avx2() else "aten"


def on_kernel(kernel: str) -> bool:
    """Whether a QLinear's `kernel` keeps this kernel's weight layout and calls one of its builds."""
    return kernel in ("vnni", "avx2")


def slow_path_hint() -> str | None:
    """One line for a user whose CPU lacks both builds' flags (and who did not ask for a kernel by
    SPECDEC_QKERNEL), else None. Why: PyTorch's int4 kernel runs there, measured 5.4 tok/s for the bundled 1.5B
    on a 2-core AVX2 EPYC (before the AVX2 build) where the llamacpp runner decoded 16.7 (docs/runners.md), and
    `--backend auto` picks llama.cpp only when llama-cpp-python is installed."""
    if _forced() not in ("auto", "amx", "int8") or mode() != "aten":
        return None
    missing = ", ".join(f for f in FLAGS_AVX2 if f not in _cpu_flags())
    return (f"this CPU lacks {missing}: specdec's int4 kernel is off and PyTorch's slower int4 kernel runs; for "
            "speed here install the llamacpp extra (pip install -e '.[llamacpp]'): --backend auto then picks it")


def amx_threshold() -> int:
    """Rows from which a pass takes the AMX path as SPECDEC_QKERNEL asks (0: never)."""
    return {"amx": 1, "auto": AMX_MIN_ROWS, "int8": AMX_MIN_ROWS}.get(_forced(), 0)


def cpu_has_amx_bf16() -> bool:
    """The CPU's AMX-BF16 and AVX512-BF16 flags (the bf16 prefill path's instructions)."""
    flags = _cpu_flags()
    return cpu_has_amx() and "amx_bf16" in flags and "avx512_bf16" in flags


def bf16_prefill_in_effect() -> bool:
    """Whether prompt prefills of BF16_PREFILL_MIN_ROWS+ rows (runners/torch_runner.py) take the bf16 AMX path
    (qmatmul_bf16):
    SPECDEC_QKERNEL is auto (the default) or amx and the CPU has AMX-BF16 (and Linux grants the tile state: the
    runner asks the kernel too). int8 and vnni keep prefills on the int8 kernel."""
    return _forced() in ("auto", "amx") and mode() == "vnni" and cpu_has_amx_bf16()


def amx_rows_in_effect() -> int:
    """Rows from which passes will really take the AMX path here (0: none will: no AMX flags, another kernel,
    or SPECDEC_QKERNEL=vnni)."""
    return amx_threshold() if mode() == "vnni" and cpu_has_amx() else 0


def _digest(*extra: bytes, avx2: bool = False) -> str:
    src, flags = (SOURCE_AVX2, CFLAGS_AVX2) if avx2 else (SOURCE, CFLAGS)
    code = src.read_bytes() + src.with_name(GLUE).read_bytes()  # the shared header is part of each build
    return hashlib.sha256(code + " ".join(flags).encode() + b"".join(extra)).hexdigest()[:12]


SUPERBLOCKS_ENV = "SPECDEC_SUPERBLOCKS"


def superblocks() -> bool:
    """Whether SPECDEC_SUPERBLOCKS asks for the per-256 super-block path (1 / on / true; 0 / off / false / unset)."""
    v = os.environ.get(SUPERBLOCKS_ENV, "").strip().lower()
    if v in ("", "0", "off", "false", "no"):
        return False
    if v in ("1", "on", "true", "yes"):
        return True
    raise ModelLoadError(f"{SUPERBLOCKS_ENV} must be 1 or 0, got {v!r}")


def check_env() -> None:
    """SPECDEC_QKERNEL and SPECDEC_SUPERBLOCKS as load() will read them: one line each, before any model loads."""
    _forced()
    superblocks()


def signature() -> str:
    """What of the kernel sets a quantized runner's speed: its path, the rows from which AMX runs, the super-block
    switch, its source and flags. Part of the runner's cost-cache key, so a pass-cost curve measured on another path
    or with an older kernel is measured again (the cache's probe checks only the 1-row pass)."""
    sb = "|sb" if mode() == "vnni" and superblocks() else ""
    # (prefill is not in the pass-cost curve)
    return f"{mode()}|amx>={amx_rows_in_effect()}{sb}|{_digest(avx2=mode() == 'avx2')}"


def build_dir(cache_dir=None, avx2: bool = False) -> Path:
    from specdec.zoo.catalog import cache_root

    # the source's path too: torch's build rewrites build.ninja (and relinks) when another checkout of this
    # project builds the same source from another path; each checkout has its own folder, so a recorded
    # library changes only when something else changed it
    digest = _digest(str((SOURCE_AVX2 if avx2 else SOURCE).resolve()).encode(), avx2=avx2)
    return cache_root(cache_dir) / "kernels" / f"torch-{torch.__version__}-{'avx2-' if avx2 else ''}{digest}"


def _compile(out: Path, name: str, source: Path, cflags: list[str], say=None):
    """The extension `name` from `source`, built into `out` if this machine has no recorded build of it yet."""
    from torch.utils.cpp_extension import load as cpp_load

    _check_built(out, name)  # before the library is loaded: loading runs its code
    if not any(out.glob("*.so")) and say:
        say("compiling specdec's int4/int8 CPU kernel (once per machine and torch version, about 30 s)")
    out.mkdir(parents=True, exist_ok=True)
    try:
        ext = cpp_load(name, [str(source)], extra_cflags=cflags, extra_ldflags=["-fopenmp"],
                       build_directory=str(out), verbose=False)
    except Exception as e:  # noqa: BLE001 - a compiler problem becomes one line
        raise ModelLoadError(f"could not compile specdec's CPU kernel in {out} ({type(e).__name__}: "
                             f"{str(e).strip().splitlines()[-1][:200] if str(e).strip() else ''}); it needs "
                             "gcc and ninja; set SPECDEC_QKERNEL=aten to use PyTorch's int4 kernel") from None
    _record_built(out, name)
    return ext


def load_avx2(cache_dir=None, say=None):
    """The AVX2 build (qmatmul_avx2.cpp: `qmatmul` only), compiled now if this machine has none yet."""
    global _EXT_AVX2
    with _LOCK:
        if _EXT_AVX2 is None:
            if not cpu_supported_avx2():
                raise ModelLoadError("specdec's AVX2 qmatmul kernel needs AVX2, FMA and F16C, which this CPU lacks; "
                                     "set SPECDEC_QKERNEL=aten")
            _EXT_AVX2 = _compile(build_dir(cache_dir, avx2=True), NAME_AVX2, SOURCE_AVX2, CFLAGS_AVX2, say)
        return _EXT_AVX2


def load_for(kernel: str, cache_dir=None, say=None):
    """The build a QLinear with this `kernel` ("vnni" or "avx2") calls."""
    return load_avx2(cache_dir, say) if kernel == "avx2" else load(cache_dir, say)


def load(cache_dir=None, say=None):
    """The compiled extension (built now if this machine has no build of this source yet)."""
    global _EXT
    with _LOCK:
        if _EXT is not None:
            return _EXT
        if not cpu_supported():
            raise ModelLoadError("specdec's qmatmul kernel needs AVX512-VNNI, which this CPU lacks"
                                 + ("; SPECDEC_QKERNEL=avx2 runs its AVX2 build" if cpu_supported_avx2() else ""))
        ext = _compile(build_dir(cache_dir), NAME, SOURCE, CFLAGS, say)
        want = amx_threshold()
        if ext.set_amx_min_rows(want) != want and _forced() == "amx":
            raise ModelLoadError("SPECDEC_QKERNEL=amx, but this CPU or OS does not run AMX tiles (no amx_int8 "
                                 "flag, or Linux refused the tile state); use auto or vnni")
        ext.set_superblocks(superblocks())
        _EXT = ext
        return _EXT


NAME = "specdec_qmatmul"
NAME_AVX2 = "specdec_qmatmul_avx2"


def loaded():
    """The extension if this process has loaded it already (a torch runner on this kernel did), else None: for
    helpers that use it where it is at hand and never compile it for themselves (the loop's `target_top`)."""
    return _EXT


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_built(out: Path, name: str = NAME) -> None:
    """A compiled library in the (possibly shared) cache is loaded only if its bytes are the ones this project
    built (sha256 recorded at build time, as for model weights). One without a record (an older build, or
    not ours) is removed and rebuilt; one whose bytes changed is refused."""
    so, stamp = out / f"{name}.so", out / f"{name}.so.sha256"
    if not so.is_file():
        return
    if not stamp.is_file():
        so.unlink()  # rebuilt by the load that follows
        return
    if _sha256(so) != stamp.read_text().strip():
        raise ModelLoadError(f"the compiled kernel {so} changed since it was built (sha256 mismatch); it is not "
                             f"loaded. Delete {out} to rebuild it")


def _record_built(out: Path, name: str = NAME) -> None:
    so, stamp = out / f"{name}.so", out / f"{name}.so.sha256"
    if so.is_file() and (not stamp.is_file() or stamp.read_text().strip() != _sha256(so)):
        from contextlib import suppress

        from specdec.jsonl import write_text_atomic

        with suppress(OSError):  # a read-only cache: the next load rebuilds (or refuses) as above
            write_text_atomic(stamp, _sha256(so) + "\n")


def _qmatmul_op(name: str, build):
    """`torch.ops.specdec.<name>`: one build's qmatmul as a torch op, so `torch.compile` keeps it whole (no graph
    break) and fuses what lies between the linear layers."""

    @torch.library.custom_op(f"specdec::{name}", mutates_args=())
    def op(x: torch.Tensor, codes: torch.Tensor, sc: torch.Tensor, mn: torch.Tensor, d: torch.Tensor,
           dm: torch.Tensor, bits: int) -> torch.Tensor:
        return build().qmatmul(x.contiguous(), codes, sc, mn, d, dm, bits)

    @op.register_fake
    def _(x, codes, sc, mn, d, dm, bits):
        return x.new_empty((x.shape[0], codes.shape[0] * 16), dtype=torch.float32)

    return op


def _register_op():
    """The kernels as torch ops: both builds' qmatmul, the AVX-512 build's norms (see `_qmatmul_op`)."""
    qmatmul = _qmatmul_op("qmatmul", load)
    qmatmul_avx2 = _qmatmul_op("qmatmul_avx2", load_avx2)

    @torch.library.custom_op("specdec::rms_norm", mutates_args=())
    def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
        return load().rms_norm(x, w, eps)

    @rms_norm.register_fake
    def _(x, w, eps):
        return torch.empty_like(x)

    @torch.library.custom_op("specdec::add_rms_norm", mutates_args=())
    def add_rms_norm(x: torch.Tensor, r: torch.Tensor, w: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
        s, y = load().add_rms_norm(x, r, w, eps)
        return s, y

    @add_rms_norm.register_fake
    def _(x, r, w, eps):
        return torch.empty_like(x), torch.empty_like(x)

    return qmatmul, qmatmul_avx2, rms_norm, add_rms_norm


OP, OP_AVX2, RMS_NORM, ADD_RMS_NORM = _register_op()
