"""specdec.weights.kernels: which int4 path a CPU gets, and the one line a user without the kernel's flags reads."""
from __future__ import annotations

import pytest

from specdec.weights import kernels

AVX2 = ["fpu", "sse2", "avx", "avx2", "fma", "f16c"]
VNNI = AVX2 + ["avx512f", "avx512bw", "avx512_vnni"]


@pytest.mark.parametrize("forced", ["", "auto", "int8"])
def test_a_cpu_without_the_kernel_flags_gets_aten_and_a_hint_naming_what_it_lacks(monkeypatch, forced):
    monkeypatch.setenv("SPECDEC_QKERNEL", forced)
    monkeypatch.setattr(kernels, "_cpu_flags", lambda: AVX2)
    assert kernels.mode() == "aten"
    hint = kernels.slow_path_hint()
    assert hint and "avx512f, avx512bw, avx512_vnni" in hint and "llamacpp" in hint and "f16c" not in hint.split(":")[0]


def test_no_hint_where_the_kernel_runs_or_a_kernel_was_asked_for(monkeypatch):
    monkeypatch.setattr(kernels, "_cpu_flags", lambda: VNNI)
    monkeypatch.setenv("SPECDEC_QKERNEL", "auto")
    assert kernels.mode() == "vnni" and kernels.slow_path_hint() is None
    monkeypatch.setattr(kernels, "_cpu_flags", lambda: AVX2)
    for forced in ("aten", "reference"):
        monkeypatch.setenv("SPECDEC_QKERNEL", forced)
        assert kernels.mode() == forced and kernels.slow_path_hint() is None
