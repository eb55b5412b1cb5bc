"""Every decoder layer of an eager kernel-path pass in one call to the kernel library (`forward_layers`).

Why: on the kernel path (int4/int8 weights on specdec's VNNI/AMX kernel or its AVX2 build, float32, batch 1) a pass is ~10 kernel
calls and tensor ops a layer, each dispatched from Python. Timed per call (2026-12-05, Sapphire Rapids, 2 cores,
1-row pass after 256 tokens; docs/runners.md): the 0.5B draft (int4-all) 19.3 ms a pass, of which 5.0 ms outside
the kernels; the 1.5B target 57 ms, 8 ms outside. With the layers in one call: 15.8 and 50.7 ms (0.9 and 1.0 ms
outside). `forward_layers` runs the same kernels and ATen ops in the same order on the same shapes, so a pass
gives the same numbers bit for bit (tests/runners/test_layer_plan.py), only without Python between them.

A model qualifies when every linear layer of its decoder layers is on the kernel path (fused q|k|v and gate|up
as `weights.quant.fuse_projections` makes them, or separate), its norms are RMSNorms with one epsilon, its MLPs
SiLU-gated and it has no q/k norms (Qwen2, Llama); otherwise `build` returns None and the runner keeps its
Python loop. The plan holds the layers' own tensors (no copies), taken when the runner is made: a runner's
decoder layers are not swapped later (`restrict_vocab` replaces only the output layer, not in the plan)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LayerPlan:
    """The flat tensor list `forward_layers` reads (see kernels/qmatmul.cpp for its order)."""

    tensors: list[torch.Tensor]
    bits: list[int]
    sizes: list[int]  # q, k, v, gate, up output sizes
    eps: float
    scale: float


_NONE = torch.empty(0)  # an absent linear's tensors (and an absent bias)


def _linear(mod, kernel: str) -> tuple[list[torch.Tensor], int] | None:
    """A kernel-path linear's six tensors and bits; None where it is not on `kernel` (the runner's build)."""
    from specdec.weights.quant import QLinear

    if not (isinstance(mod, QLinear) and mod.kernel == kernel):
        return None
    return [mod.codes, mod.sc, mod.mn, mod.d, mod.dm, _NONE if mod.bias is None else mod.bias.data], mod.bits


def _layer(layer, kernel: str) -> tuple[list[torch.Tensor], list[int], tuple[int, ...]] | None:
    """One decoder layer's tensors (input norm, post-attention norm, 7 linear slots), bits and split sizes."""
    attn, mlp = layer.self_attn, layer.mlp
    if hasattr(attn, "q_norm") or type(getattr(mlp, "act_fn", None)).__name__ not in ("SiLU", "SiLUActivation"):
        return None
    qkv, gate_up = getattr(attn, "qkv_proj", None), getattr(mlp, "gate_up_proj", None)
    absent = ([_NONE] * 6, 0)
    if qkv is not None and len(qkv.split_sizes) == 3:
        slots, sizes = [_linear(qkv, kernel), absent, absent], tuple(qkv.split_sizes)
    else:
        slots = [_linear(attn.q_proj, kernel), _linear(attn.k_proj, kernel), _linear(attn.v_proj, kernel)]
        sizes = tuple(m.out_features for m in (attn.q_proj, attn.k_proj, attn.v_proj))
    slots.append(_linear(attn.o_proj, kernel))
    if gate_up is not None and len(gate_up.split_sizes) == 2:
        slots += [_linear(gate_up, kernel), absent]
        sizes += tuple(gate_up.split_sizes)
    else:
        slots += [_linear(mlp.gate_proj, kernel), _linear(mlp.up_proj, kernel)]
        sizes += (mlp.gate_proj.out_features, mlp.up_proj.out_features)
    slots.append(_linear(mlp.down_proj, kernel))
    if any(s is None for s in slots):
        return None
    tensors = [layer.input_layernorm.weight.data, layer.post_attention_layernorm.weight.data]
    for t, _ in slots:
        tensors += t
    return tensors, [b for _, b in slots], sizes


def build(core: nn.Module) -> LayerPlan | None:
    """The plan for `core` (runners.torch_runner._Core), or None where a layer does not qualify."""
    model = core.model
    norms = [model.norm] + [n for layer in model.layers
                            for n in (layer.input_layernorm, layer.post_attention_layernorm)]
    if not core.fast_norm or not all(type(n).__name__.endswith("RMSNorm") for n in norms):
        return None
    eps = {float(n.variance_epsilon) for n in norms}
    if len(eps) != 1 or any(n.weight.dtype != torch.float32 for n in norms):
        return None
    tensors: list[torch.Tensor] = []
    bits: list[int] = []
    sizes: set[tuple[int, ...]] = set()
    scales = {float(layer.self_attn.scaling) for layer in model.layers}
    for layer in model.layers:
        one = _layer(layer, core.kernel)
        if one is None:
            return None
        tensors += one[0]
        bits += one[1]
        sizes.add(one[2])
    if len(sizes) != 1 or len(scales) != 1:
        return None
    tensors.append(model.norm.weight.data)
    return LayerPlan(tensors, bits, list(sizes.pop()), eps.pop(), scales.pop())


def run(plan: LayerPlan, ext, x, cos, sin, slots, mask, k_cache, v_cache, n_heads: int, n_kv: int) -> torch.Tensor:
    """x (1, T, H) embedded tokens -> the final norm's output (1, T, H); writes the caches at `slots`."""
    return ext.forward_layers(x, cos, sin, slots, mask, k_cache, v_cache, plan.tensors, plan.bits, plan.sizes,
                              n_heads, n_kv, plan.eps, plan.scale)
