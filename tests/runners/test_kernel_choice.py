"""specdec.weights.kernels: which int4 path a CPU gets, and the one line a user without the kernel's flags reads."""
from __future__ import annotations

import pytest

from specdec.weights import kernels

AVX = ["fpu", "sse2", "avx", "f16c"]
AVX2 = AVX + ["avx2", "fma"]
VNNI = AVX2 + ["avx512f", "avx512bw", "avx512_vnni"]


@pytest.mark.parametrize("forced", ["", "auto", "int8"])
def test_a_cpu_with_avx2_but_no_avx512_gets_the_avx2_build_and_no_hint(monkeypatch, forced):
    monkeypatch.setenv("SPECDEC_QKERNEL", forced)
    monkeypatch.setattr(kernels, "_cpu_flags", lambda: AVX2)
    assert kernels.mode() == "avx2" and kernels.on_kernel(kernels.mode())
    assert kernels.slow_path_hint() is None
    assert kernels.signature().startswith("avx2|amx>=0|")


@pytest.mark.parametrize("forced", ["", "auto", "int8"])
def test_a_cpu_without_either_builds_flags_gets_aten_and_a_hint_naming_what_it_lacks(monkeypatch, forced):
    monkeypatch.setenv("SPECDEC_QKERNEL", forced)
    monkeypatch.setattr(kernels, "_cpu_flags", lambda: AVX)
    assert kernels.mode() == "aten" and not kernels.on_kernel("aten")
    hint = kernels.slow_path_hint()
    assert hint and "avx2, fma" in hint and "llamacpp" in hint and "f16c" not in hint.split(":")[0]


def test_no_hint_where_the_kernel_runs_or_a_kernel_was_asked_for(monkeypatch):
    monkeypatch.setattr(kernels, "_cpu_flags", lambda: VNNI)
    monkeypatch.setenv("SPECDEC_QKERNEL", "auto")
    assert kernels.mode() == "vnni" and kernels.slow_path_hint() is None
    monkeypatch.setenv("SPECDEC_QKERNEL", "avx2")  # the AVX2 build on an AVX-512 CPU (the same numbers)
    assert kernels.mode() == "avx2" and kernels.slow_path_hint() is None
    monkeypatch.setattr(kernels, "_cpu_flags", lambda: AVX)
    for forced in ("aten", "reference"):
        monkeypatch.setenv("SPECDEC_QKERNEL", forced)
        assert kernels.mode() == forced and kernels.slow_path_hint() is None


def test_each_build_has_its_own_folder(tmp_path):
    assert kernels.build_dir(tmp_path) != kernels.build_dir(tmp_path, avx2=True)
    assert kernels.build_dir(tmp_path, avx2=True).name.startswith(f"torch-{kernels.torch.__version__}-avx2-")


@pytest.mark.parametrize("flags,llama,want", [(VNNI, True, "torch"), (AVX2, True, "torch"), (AVX, True, "llamacpp"),
                                              (AVX, False, "torch")])
def test_auto_backend_takes_the_torch_runner_wherever_a_build_of_the_kernel_runs(monkeypatch, flags, llama, want):
    """A zoo GGUF model in bf16 on the CPU: the torch runner on either build of the kernel (both faster there than
    llama.cpp: docs/runners.md), else llama.cpp when it is installed, else torch on PyTorch's int4 kernel."""
    from specdec.config import EngineConfig
    from specdec.runners import llamacpp_runner, resolve_backend

    monkeypatch.setenv("SPECDEC_QKERNEL", "auto")
    monkeypatch.setattr(kernels, "_cpu_flags", lambda: flags)
    monkeypatch.setattr(llamacpp_runner, "available", lambda: llama)
    assert resolve_backend(EngineConfig(), "qwen2.5-coder-1.5b-instruct") == want
    assert resolve_backend(EngineConfig(backend="llamacpp"), "qwen2.5-coder-1.5b-instruct") == "llamacpp"
