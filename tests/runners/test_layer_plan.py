"""weights/layer_plan.py: every decoder layer in one kernel-library call gives the Python loop's numbers bit for
bit (logits, hidden states, KV caches), for chains, trees and prefills, fused or separate projections, Qwen2 (q/k/v
biases) and Llama (none); models off the kernel path keep the Python loop."""
from __future__ import annotations

import pytest
import torch

from spec_helpers import make_model
from specdec.weights import layer_plan
from specdec.runners.torch_runner import TorchRunner
from specdec.weights import kernels, quant


def _six_bit(tensors: dict, model) -> dict:
    """v_proj and down_proj in 6-bit codes (as the bundled 1.5B's Q6_K layers): random codes and signed scales
    near the real weights' size, d per whole row."""
    g = torch.Generator().manual_seed(7)
    for name in quant.linear_names(model):
        if name.split(".")[-1] in ("v_proj", "down_proj"):
            N, K = model.get_submodule(name).weight.shape
            G = K // 32
            s = lambda: torch.randint(-127, 128, (N, G), generator=g, dtype=torch.int8).view(torch.uint8)  # noqa: E731
            d = (torch.rand(N, 1, generator=g) * 2e-4 + 1e-5).half()
            c = quant.Codes(torch.randint(0, 64, (N, K), generator=g, dtype=torch.uint8), s(), s(), d, d, 6)
            tensors.update(quant.pack(c).tensors(name))
    return tensors


def _runner(kind: str, weights: str, fuse: bool, kernel: str = "vnni") -> TorchRunner:
    model = make_model(kind, seed=3, layers=3, sharp=4.0)
    tensors = quant.quantize_from_weights(model, weights.removesuffix("+6"))
    if weights.endswith("+6"):
        tensors = _six_bit(tensors, model)
    model = quant.quantize_model(model, tensors, kernel=kernel)
    if fuse:
        assert quant.fuse_projections(model) == (3 if weights.endswith("+6") else 6)  # 6-bit v: q|k|v apart
    quant.compute_in_float32(model)
    return TorchRunner(model, max_context=64)


def _passes(r: TorchRunner) -> list[torch.Tensor]:
    """Prefill, a 1-row pass, a 5-row chain and a 4-node tree, committing between them: every output."""
    g = torch.Generator().manual_seed(0)
    ids = lambda n: torch.randint(3, 60, (1, n), generator=g)  # noqa: E731
    r.reset()
    r.prefill(ids(9))
    out = [r.k_cache[:, :, :, :9].clone()]
    for T in (1, 5):
        logits, hidden = r.forward(ids(T))
        out += [logits, hidden]
        r.commit(T)
    tree = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 1, 1]], dtype=torch.bool)
    logits, hidden = r.forward(ids(4), tree_mask=tree, depths=torch.tensor([0, 1, 1, 2]))
    out += [logits, hidden, r.k_cache[:, :, :, : r.length + 4].clone(), r.v_cache[:, :, :, : r.length + 4].clone()]
    return out


def _skip_without(kernel: str) -> None:
    if kernel == "vnni" and not kernels.cpu_supported():
        pytest.skip("this CPU has no AVX512-VNNI for specdec's qmatmul kernel")
    if kernel == "avx2" and not kernels.cpu_supported_avx2():
        pytest.skip("this CPU has no AVX2 / FMA / F16C for the kernel's AVX2 build")


@pytest.mark.parametrize("kernel", ["vnni", "avx2"])
@pytest.mark.parametrize("kind", ["qwen2", "llama"])
@pytest.mark.parametrize("weights", ["int4", "int8", "int4+6"])
@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "separate"])
def test_one_call_equals_the_python_loop_bit_for_bit(kind, weights, fuse, kernel):
    """int4+6: v_proj and down_proj in 6-bit codes beside 4-bit ones (q|k|v then stay separate). On each build
    of the kernel library: the AVX2 build has its own forward_layers (the shared glue.h) over its own kernels."""
    _skip_without(kernel)
    r = _runner(kind, weights, fuse, kernel)
    assert r.core.kernel == kernel
    assert r.core.plan is not None
    bits = r.core.plan.bits[:7]  # the first layer's q, k, v, o, gate, up, down
    if weights == "int4+6":
        assert bits == ([4, 4, 6, 4, 4, 0, 6] if fuse else [4, 4, 6, 4, 4, 4, 6])
    else:
        assert (bits[1:3] == [0, 0] and bits[5] == 0) if fuse else 0 not in bits
    one_call = _passes(r)
    r.core.plan = None
    loop = _passes(r)
    assert len(one_call) == len(loop)
    for a, b in zip(one_call, loop):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kernel", ["vnni", "avx2"])
def test_the_one_call_is_taken_for_short_passes(monkeypatch, kernel):
    """The runner really calls forward_layers on a kernel-path model (not only when tests ask)."""
    _skip_without(kernel)
    r = _runner("qwen2", "int4", True, kernel)
    calls = []
    real = layer_plan.run
    monkeypatch.setattr(layer_plan, "run", lambda *a, **k: calls.append(a[6].shape) or real(*a, **k))
    r.prefill(torch.arange(3, 10)[None])
    r.forward(torch.arange(3, 6)[None])
    assert calls and calls[-1] == (3, 10)  # the 3-row pass: its mask (T, L) with L = 7 cached + 3 new


@pytest.mark.parametrize("kernel", ["aten", "reference"])
def test_models_off_the_kernel_path_keep_the_python_loop(kernel):
    assert _runner("qwen2", "int4", False, kernel=kernel).core.plan is None
    assert TorchRunner(make_model("qwen2", seed=3), max_context=32).core.plan is None
