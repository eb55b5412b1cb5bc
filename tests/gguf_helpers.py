"""GGUF files from tiny HF models, for the llama.cpp runner's tests: `write_gguf` turns a Qwen2ForCausalLM or
LlamaForCausalLM into a file llama.cpp (llama-cpp-python) loads and runs with the HF model's logits.

    write_gguf(model, path, qtype="F32", tokens=None) -> Path
        qtype: "F32" (exact), or "Q8_0" / "Q4_0" (gguf.quants) / "Q4_K" / "Q6_K" (our numpy encoders, below) for
        the 2-D linear weights (attention, MLP, output); token embeddings and norms stay F32. Q8_0 / Q4_0 need
        the linear layers' input sizes to be multiples of 32, K-quants of 256 (make_gguf_friendly_model).
    gguf_tensor_types(path) -> {name: "F32" | "Q8_0" | ...}
    gguf_weights(path) -> {name: float32 array, numpy (out, in) layout}, dequantized with gguf.quants
    dequantized_model(model, path) -> a copy of the HF model carrying the file's (dequantized) weights: the
        reference a quantized GGUF's llama.cpp logits are compared with
    make_gguf_friendly_model(seed, hidden=256, intermediate=512, vocab=64, layers=2) -> Qwen2ForCausalLM
    quantize_q4_k(w) / dequantize_q4_k(b): the Q4_K encoder and gguf's decoder; quantize_q6_k(w) likewise

What llama.cpp needs besides the tensors (llama.cpp names: token_embd, blk.N.attn_norm / attn_q / attn_k /
attn_v (+ .bias for qwen2) / attn_output / ffn_norm / ffn_gate / ffn_up / ffn_down, output_norm, output):
    {arch}.context_length, embedding_length, block_count, feed_forward_length, attention.head_count,
    attention.head_count_kv, attention.layer_norm_rms_epsilon, rope.freq_base, rope.dimension_count
    (+ attention.key_length / value_length), and a vocabulary of exactly vocab_size tokens: tokenizer.ggml.model
    "gpt2" (BPE) needs tokenizer.ggml.tokens, token_type and a non-empty merges list (one dummy merge is
    enough; gguf refuses to write an empty array), pre-tokenizer "default", eos id. The tests only ever feed
    token ids, so the dummy tokens "<t0>", "<t1>", ... (printable ASCII: valid byte-level BPE text) do.

Rope: qwen2 in llama.cpp rotates NEOX-style (halves), like HF's rotate_half, so q/k go as they are; the llama
arch rotates interleaved pairs, so q/k rows (and biases) are permuted as convert_hf_to_gguf.py's
LlamaModel.permute does (`dequantized_model` un-permutes them).

Precision: an F32 file is the HF model bit for bit; llama.cpp's logits then differ from HF's by float rounding
(~3e-7 relative) with an F32 KV cache and no flash attention, and by ~1e-3 relative (growing slowly with the
context) with its default F16 cache, which LlamaCppRunner uses. Quantized files: llama.cpp also rounds the
activations to 8 bits for its integer dot products (~2e-2 relative; tests/runners/test_gguf_helpers.py).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFReader, GGUFWriter, LlamaFileType, TokenType

QTYPES = {"F32": QT.F32, "Q8_0": QT.Q8_0, "Q4_0": QT.Q4_0, "Q4_K": QT.Q4_K, "Q6_K": QT.Q6_K}
FILE_TYPES = {"F32": LlamaFileType.ALL_F32, "Q8_0": LlamaFileType.MOSTLY_Q8_0, "Q4_0": LlamaFileType.MOSTLY_Q4_0,
              "Q4_K": LlamaFileType.MOSTLY_Q4_K_S, "Q6_K": LlamaFileType.MOSTLY_Q6_K}
ARCHS = {"Qwen2ForCausalLM": "qwen2", "LlamaForCausalLM": "llama"}

# HF parameter name (per layer) -> llama.cpp tensor name
_LAYER = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.o_proj.bias": "attn_output.bias",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
_GLOBAL = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
           "lm_head.weight": "output.weight"}
_NOT_QUANTIZED = ("token_embd.weight",)  # embeddings stay F32 (a row lookup, no matmul)


# ------------------------------------------------------------------ names and rope layout
def tensor_name(hf_name: str) -> str:
    """llama.cpp's name for an HF Qwen2/Llama parameter name."""
    if hf_name in _GLOBAL:
        return _GLOBAL[hf_name]
    parts = hf_name.split(".")
    if len(parts) > 3 and parts[0] == "model" and parts[1] == "layers":
        rest = ".".join(parts[3:])
        if rest in _LAYER:
            return f"blk.{int(parts[2])}.{_LAYER[rest]}"
    raise ValueError(f"no llama.cpp tensor for HF parameter {hf_name!r}")


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF (rotate_half) q/k rows -> llama.cpp llama-arch (interleaved rope) rows; convert_hf_to_gguf's permute."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _rope_heads(arch: str, gguf_name: str, cfg) -> int | None:
    """Heads to (un)permute a tensor by, or None: only the llama arch's q/k."""
    if arch != "llama":
        return None
    kind = gguf_name.split(".")[-2] if gguf_name.startswith("blk.") else ""
    if kind == "attn_q":
        return cfg.num_attention_heads
    if kind == "attn_k":
        return cfg.num_key_value_heads
    return None


# ------------------------------------------------------------------ Q4_K
_QK_K = 256
_TOL = 1e-4  # grid decisions tolerate this much float error (so re-encoding a decoded block repeats them)


def _fp16_at_most(v: np.ndarray) -> np.ndarray:
    """The largest float16 <= v * (1 + 1e-6) (v >= 0): a super-block scale whose 6-bit multiples reach 63."""
    v = np.asarray(v, dtype=np.float64) * (1 + 1e-6)
    h = v.astype(np.float16)
    over = h.astype(np.float64) > v
    h[over] = np.nextafter(h[over], np.float16(0))
    return h


def _sub_blocks(w: np.ndarray, qtype: str, size: int) -> tuple[tuple, np.ndarray]:
    """K-quant rows as (super-blocks of 256, sub-blocks, values) float64, and the rows' shape; a clear error for
    rows the format cannot hold."""
    w = np.asarray(w, dtype=np.float32)
    if w.shape[-1] % _QK_K:
        raise ValueError(f"{qtype} needs rows of a multiple of {_QK_K} values, got {w.shape[-1]}")
    return w.shape, w.reshape(-1, _QK_K // size, size).astype(np.float64)


def quantize_q4_k(w: np.ndarray) -> np.ndarray:
    """Q4_K bytes for float rows (last dim a multiple of 256): uint8 (..., n // 256 * 144), the layout ggml's
    block_q4_K has and `gguf.quants.Q4_K.dequantize_blocks` decodes (x = d * sc[j] * q - dmin * m[j]).

    Per super-block of 256 = 8 sub-blocks of 32: a sub-block's grid runs from -dmin * m[j] (m[j] = the floor
    of its minimum (clamped to <= 0) over dmin: the grid's bottom is its lowest value or a little above) up
    15 steps of d * sc[j] to its maximum; d / dmin are fp16 with the largest sub-block scale / offset at 63;
    values round to the nearest grid point. No search over the offsets (llama.cpp's make_qkx2_quants does
    one, a little more accurate); instead every choice is one a decoded block re-derives (slack for float
    error included), so quantize_q4_k(dequantize_q4_k(b)) == b.
    """
    shape, x = _sub_blocks(w, "Q4_K", 32)  # x (n, 8, 32)
    n = x.shape[0]

    off = -np.minimum(x.min(axis=2), 0.0)  # (n, 8) >= 0: how far each sub-block reaches below 0
    off_max = off.max(axis=1)
    dmin = np.where(off_max > 0, _fp16_at_most(off_max / 63), np.float16(0))
    dmin32 = dmin.astype(np.float32).astype(np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where(dmin32 > 0, np.floor(off / dmin32 + _TOL), 0).clip(0, 63).astype(np.uint8)
    b = (dmin.astype(np.float32)[:, None] * m.astype(np.float32)).astype(np.float64)  # as the decoder has it

    span = np.maximum(x.max(axis=2) + b, 0.0) / 15  # (n, 8) the step a sub-block needs to reach its max
    span_max = span.max(axis=1)
    d = np.where(span_max > 0, _fp16_at_most(span_max / 63), np.float16(0))
    d32 = d.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(d32 > 0, span / d32.astype(np.float64), 0.0)

    def fit(sc):  # q and the squared error of sub-block scales sc (n, 8), as the decoder reconstructs
        a = (d32 * sc.astype(np.float32)).astype(np.float64)[..., None]
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(a > 0, np.floor((x + b[..., None]) / a + 0.5), 0).clip(0, 15)
        back = (a.astype(np.float32) * q.astype(np.float32) - b[..., None].astype(np.float32)).astype(np.float64)
        return q.astype(np.uint8), ((back - x) ** 2).sum(axis=2)

    # ratio >= 15: the nearest scale (15 steps of it still reach the max, up to half a step: q 0..15 used);
    # below: the floor (q reaches 15, the top clipped by < 15 d) or the ceiling (covers the max with fewer
    # than 15 steps), whichever fits better -- the ceiling only where its grid re-derives it (sc * q_top >
    # 15 (sc - 1)), so a decoded block re-encodes to the same scales
    near = np.floor(ratio + 0.5)
    lo = np.maximum(np.floor(ratio + _TOL), 1)
    hi = np.maximum(np.ceil(ratio - _TOL), 1)
    sc_lo = np.where(ratio >= 15, near, lo).clip(0, 63)
    sc_hi = np.where(ratio >= 15, near, hi).clip(0, 63)
    if (d32 == 0).any():
        sc_lo[(d32 == 0)[:, 0]] = sc_hi[(d32 == 0)[:, 0]] = 0
    q_lo, e_lo = fit(sc_lo)
    q_hi, e_hi = fit(sc_hi)
    stable = sc_hi * q_hi.max(axis=2) > 15 * (sc_hi - 1)
    up = (sc_hi != sc_lo) & stable & (e_hi < e_lo)
    sc = np.where(up, sc_hi, sc_lo).astype(np.uint8)
    q = np.where(up[..., None], q_hi, q_lo)  # (n, 8, 32)

    # 12 scale bytes: 0-3 sc[0:4] | top 2 bits of sc[4:8]; 4-7 m[0:4] | top 2 bits of m[4:8];
    # 8-11 low 4 bits of sc[4:8] | low 4 bits of m[4:8] << 4
    scales = np.empty((n, 12), dtype=np.uint8)
    scales[:, 0:4] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
    scales[:, 4:8] = m[:, 0:4] | ((m[:, 4:8] >> 4) << 6)
    scales[:, 8:12] = (sc[:, 4:8] & 0x0F) | ((m[:, 4:8] & 0x0F) << 4)
    # 128 quant bytes: 4 chunks of 32; chunk c holds sub-block 2c in its low nibbles, 2c + 1 in its high ones
    qs = (q[:, 0::2, :] | (q[:, 1::2, :] << 4)).reshape(n, 128)
    out = np.concatenate([d.reshape(n, 1).view(np.uint8), dmin.reshape(n, 1).view(np.uint8), scales, qs], axis=1)
    return out.reshape(*shape[:-1], shape[-1] // _QK_K * 144)


def dequantize_q4_k(b: np.ndarray) -> np.ndarray:
    return gguf.quants.dequantize(np.asarray(b, dtype=np.uint8), QT.Q4_K)


def quantize_q6_k(w: np.ndarray) -> np.ndarray:
    """Q6_K bytes for float rows (last dim a multiple of 256): uint8 (..., n // 256 * 210) as ggml's block_q6_K
    (ql 128, qh 64, int8 scales 16, fp16 d) and `gguf.quants.Q6_K.dequantize_blocks` decodes:
    x = d * sc[j] * (q - 32) per sub-block j of 16. Plain round to nearest (no search, unlike llama.cpp's)."""
    shape, x = _sub_blocks(w, "Q6_K", 16)  # x (n, 16, 16)
    n = x.shape[0]
    step = np.abs(x).max(axis=2) / 31  # (n, 16) each sub-block's step, so that q - 32 stays within -31..31
    d = (step.max(axis=1) / 127).astype(np.float16)  # (n,)
    d32 = d.astype(np.float32).astype(np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d32 > 0, np.round(step / d32), 0).clip(-128, 127).astype(np.int8)
        a = (d32 * sc.astype(np.float64))[..., None]
        q = np.where(a != 0, np.round(x / a), 0).clip(-32, 31).astype(np.int16) + 32  # (n, 16, 16) 0..63
    q = q.reshape(n, 2, 2, 2, 32).astype(np.uint8)  # position 128h + 64s + 32u + i: ql byte 64h + 32u + i, nibble s
    ql = ((q[:, :, 0] & 0x0F) | ((q[:, :, 1] & 0x0F) << 4)).reshape(n, 128)
    hi = (q >> 4).reshape(n, 2, 4, 32)  # position 128h + 32t + i: qh byte 32h + i, bits 2t
    qh = (hi[:, :, 0] | (hi[:, :, 1] << 2) | (hi[:, :, 2] << 4) | (hi[:, :, 3] << 6)).reshape(n, 64)
    out = np.concatenate([ql, qh, sc.view(np.uint8), d.reshape(n, 1).view(np.uint8)], axis=1)
    return out.reshape(*shape[:-1], shape[-1] // _QK_K * 210)


def _encode(w: np.ndarray, qt: QT) -> np.ndarray:
    if qt == QT.F32:
        return np.ascontiguousarray(w, dtype=np.float32)
    block = gguf.GGML_QUANT_SIZES[qt][0]
    if w.shape[-1] % block:
        raise ValueError(f"{qt.name} needs rows of a multiple of {block} values, got shape {w.shape} (for Q4_K use "
                         "make_gguf_friendly_model: hidden / intermediate sizes multiples of 256)")
    if qt == QT.Q4_K:
        return quantize_q4_k(w)
    if qt == QT.Q6_K:
        return quantize_q6_k(w)
    return gguf.quants.quantize(np.ascontiguousarray(w, dtype=np.float32), qt)


# ------------------------------------------------------------------ writing
def _dummy_tokens(n: int) -> list[str]:
    return [f"<t{i}>" for i in range(n)]


def _token_list(tokens, vocab: int) -> list[str]:
    if tokens is None:
        return _dummy_tokens(vocab)
    if hasattr(tokens, "convert_ids_to_tokens"):  # an HF tokenizer
        tokens = tokens.convert_ids_to_tokens(list(range(len(tokens))))
    tokens = [str(t) for t in tokens]
    if len(tokens) > vocab:
        raise ValueError(f"{len(tokens)} tokens for a model with vocab_size {vocab}")
    seen = set(tokens)
    pad = (f"<t{i}>" for i in range(len(tokens), 1 << 30))
    for _ in range(vocab - len(tokens)):  # llama.cpp wants exactly vocab_size tokens
        t = next(pad)
        while t in seen:
            t = next(pad)
        tokens.append(t)
        seen.add(t)
    if len(seen) != vocab:
        raise ValueError("token strings must be unique")
    return tokens


def _config_checks(cfg, arch: str) -> None:
    for attr in ("rope_parameters", "rope_scaling"):
        rp = getattr(cfg, attr, None)
        rope_type = rp.get("rope_type", rp.get("type", "default")) if isinstance(rp, dict) else "default"
        if rope_type != "default":
            raise NotImplementedError(f"rope scaling {rope_type!r} is not written")
    if getattr(cfg, "hidden_act", "silu") != "silu":
        raise NotImplementedError(f"activation {cfg.hidden_act!r}: llama.cpp's {arch} uses SiLU")
    if getattr(cfg, "mlp_bias", False):
        raise NotImplementedError("MLP biases are not written")
    if getattr(cfg, "use_sliding_window", False):
        raise NotImplementedError("sliding-window attention is not written")


def _rope_theta(cfg) -> float:
    rp = getattr(cfg, "rope_parameters", None)
    if isinstance(rp, dict) and "rope_theta" in rp:
        return float(rp["rope_theta"])
    return float(getattr(cfg, "rope_theta", 10000.0))


def write_gguf(model: torch.nn.Module, path, qtype: str = "F32", tokens: Sequence[str] | None = None) -> Path:
    """Write an HF Qwen2ForCausalLM / LlamaForCausalLM as a GGUF llama.cpp runs (see the module docstring) and
    return its path. `tokens`: the vocabulary's strings, taken verbatim (or an HF tokenizer: its
    convert_ids_to_tokens), padded with dummy "<tN>" to vocab_size; default all dummies. The eos id is the
    config's (else 1), a CONTROL token; no bos is added."""
    qtype = qtype.upper()
    if qtype not in QTYPES:
        raise ValueError(f"qtype {qtype!r}: one of {sorted(QTYPES)}")
    qt = QTYPES[qtype]
    cls = type(model).__name__
    if cls not in ARCHS:
        raise NotImplementedError(f"{cls}: write_gguf writes {sorted(ARCHS)}")
    arch = ARCHS[cls]
    cfg = model.config
    _config_checks(cfg, arch)
    n_head, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_head
    vocab = cfg.vocab_size
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    w = GGUFWriter(path, arch)
    w.add_name(f"specdec-test-{arch}")
    w.add_file_type(int(FILE_TYPES[qtype]))
    if qt != QT.F32:
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_context_length(int(cfg.max_position_embeddings))
    w.add_embedding_length(int(cfg.hidden_size))
    w.add_block_count(int(cfg.num_hidden_layers))
    w.add_feed_forward_length(int(cfg.intermediate_size))
    w.add_head_count(int(n_head))
    w.add_head_count_kv(int(n_kv))
    w.add_key_length(int(head_dim))
    w.add_value_length(int(head_dim))
    w.add_rope_dimension_count(int(head_dim))
    w.add_rope_freq_base(_rope_theta(cfg))
    w.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    w.add_vocab_size(int(vocab))

    toks = _token_list(tokens, vocab)
    eos = cfg.eos_token_id
    if isinstance(eos, (list, tuple)):
        eos = eos[0] if eos else None
    if eos is None or not 0 <= int(eos) < vocab:
        eos = 1  # the tests' convention (conftest.make_tokenizer: <unk> <eos> <pad>)
    eos = int(eos)
    types = [int(TokenType.NORMAL)] * vocab
    types[eos] = int(TokenType.CONTROL)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(toks)
    w.add_token_types(types)
    normal = [t for i, t in enumerate(toks) if i != eos]
    w.add_token_merges([f"{normal[0]} {normal[-1]}"])  # llama.cpp requires the key; gguf refuses an empty array
    w.add_eos_token_id(eos)
    pad = getattr(cfg, "pad_token_id", None)
    if isinstance(pad, int) and 0 <= pad < vocab:
        w.add_pad_token_id(pad)
    w.add_add_bos_token(False)

    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("rotary_emb.inv_freq")}
    if "lm_head.weight" not in sd:  # tied: llama.cpp falls back to token_embd, but an explicit output is simplest
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    order = ["model.embed_tokens.weight"] + [k for k in sd if k.startswith("model.layers.")] + \
            ["model.norm.weight", "lm_head.weight"]
    for hf_name in order:
        name = tensor_name(hf_name)
        arr = sd[hf_name].detach().to(torch.float32).cpu().numpy()
        heads = _rope_heads(arch, name, cfg)
        if heads is not None:
            arr = _permute(arr, heads)
        t = QT.F32 if (arr.ndim < 2 or name in _NOT_QUANTIZED) else qt
        data = _encode(arr, t)
        w.add_tensor(name, data, raw_dtype=None if t == QT.F32 else t)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


# ------------------------------------------------------------------ reading back
def gguf_tensor_types(path) -> dict[str, str]:
    """{tensor name: ggml type name ("F32", "Q8_0", "Q4_K", ...)}."""
    return {t.name: QT(t.tensor_type).name for t in GGUFReader(str(path)).tensors}


def gguf_weights(path) -> dict[str, np.ndarray]:
    """Every tensor, dequantized to float32 in numpy (rows = output features) layout, as stored (a llama-arch
    file's q/k rows still permuted)."""
    out = {}
    for t in GGUFReader(str(path)).tensors:
        arr = gguf.quants.dequantize(np.asarray(t.data), QT(t.tensor_type))
        shape = tuple(int(s) for s in reversed(t.shape))  # GGUF lists dims innermost first
        out[t.name] = np.array(arr, dtype=np.float32).reshape(shape)
    return out


def dequantized_model(model: torch.nn.Module, path) -> torch.nn.Module:
    """A copy of `model` holding exactly the weights of the GGUF at `path` (dequantized, q/k un-permuted)."""
    arch = ARCHS[type(model).__name__]
    ref = copy.deepcopy(model)
    weights = gguf_weights(path)
    with torch.no_grad():
        for hf_name, p in ref.state_dict().items():
            if hf_name.endswith("rotary_emb.inv_freq"):
                continue
            name = tensor_name(hf_name)
            arr = weights[name]
            heads = _rope_heads(arch, name, ref.config)
            if heads is not None:
                arr = _unpermute(arr, heads)
            p.copy_(torch.from_numpy(arr).reshape(p.shape).to(p.dtype))
    return ref.eval()


# ------------------------------------------------------------------ models
def make_gguf_friendly_model(seed: int = 0, hidden: int = 256, intermediate: int = 512, vocab: int = 64,
                             layers: int = 2, heads: int = 4, kv_heads: int = 2, scale: float = 1.0,
                             kind: str = "qwen2"):
    """A tiny random model every qtype can write: hidden / intermediate multiples of 256 (Q4_K's super-block),
    head_dim = hidden / heads (64 by default; llama.cpp needs it even, for rope). Every parameter is random
    (`randomize`), so every tensor's layout shows in the logits."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    for n, what in ((hidden, "hidden"), (intermediate, "intermediate")):
        if n % _QK_K:
            raise ValueError(f"{what} size {n}: Q4_K needs multiples of {_QK_K}")
    if hidden % heads or heads % kv_heads or (hidden // heads) % 2:
        raise ValueError("hidden must split into heads of even size, heads into kv groups")
    torch.manual_seed(seed)
    Cfg, Model = (Qwen2Config, Qwen2ForCausalLM) if kind == "qwen2" else (LlamaConfig, LlamaForCausalLM)
    cfg = Cfg(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
              num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=512,
              tie_word_embeddings=False, eos_token_id=1, bos_token_id=None, pad_token_id=2)
    model = Model(cfg).eval()
    randomize(model, seed=seed, scale=scale)
    return model


@torch.no_grad()
def randomize(model: torch.nn.Module, seed: int = 0, scale: float = 1.0) -> torch.nn.Module:
    """In place: linear weights N(0, (scale / sqrt(fan_in))^2), embeddings N(0, 1), biases N(0, 0.3^2), norm
    weights N(1, 0.2^2): activations and logits of order one, attention far from uniform, and every tensor
    (biases and norms included, which HF initialises to 0 / 1) matters to the logits."""
    g = torch.Generator().manual_seed(10_000 + seed)
    for name, p in model.named_parameters():
        if name.endswith("embed_tokens.weight"):
            p.copy_(torch.randn(p.shape, generator=g))
        elif "norm" in name:
            p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
        elif name.endswith(".bias"):
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
        elif p.ndim == 2:
            p.copy_(scale / p.shape[1] ** 0.5 * torch.randn(p.shape, generator=g))
    return model
