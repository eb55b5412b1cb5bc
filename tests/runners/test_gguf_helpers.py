"""tests/gguf_helpers.py: tiny HF models written as GGUF files that llama.cpp runs with the HF model's logits
(F32), and with the logits of the dequantized weights (Q8_0, Q4_0, Q4_K); and our numpy Q4_K encoder against
gguf's decoder. The llama.cpp parts skip without llama-cpp-python; the file-format parts always run.

Measured (10 seeds, 32 tokens, both archs, the tiny 32-wide model and the 256-wide one), as
max |llama.cpp - reference| / max |reference| over all logits:
    F32, the runner as is (llama.cpp's F16 KV cache, flash attention): <= 8.6e-4 (1.3e-3 at 48 tokens,
        2.7e-3 at 300: the F16 cache's rounding); with an F32 cache and no flash attention: ~3e-7
    Q8_0 / Q4_0 / Q4_K against HF on the dequantized weights: <= 2.2e-2 max, <= 4.4e-3 mean (llama.cpp
        quantizes the activations to 8 bits: Q8_0 blocks for Q8_0 / Q4_0 weights, Q8_K for Q4_K); the
        argmax agrees on >= 90% of positions (the rest are near-ties); 4-bit: 5-10x closer to the dequantized
        weights than to the original ones
"""
from __future__ import annotations

import importlib.util
import time

import numpy as np
import pytest
import torch

import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFReader

from gguf_helpers import (dequantize_q4_k, dequantized_model, gguf_tensor_types, gguf_weights,
                          make_gguf_friendly_model, quantize_q4_k, randomize, write_gguf)
from spec_helpers import make_model, make_tokenizer

torch.set_num_threads(1)

HAVE_LLAMACPP = importlib.util.find_spec("llama_cpp") is not None
needs_llamacpp = pytest.mark.skipif(not HAVE_LLAMACPP,
                                    reason="llama-cpp-python is not installed (pip install 'specdec[llamacpp]')")

F32_RTOL = 2.5e-3  # the runner as is: F16 KV cache (measured <= 8.6e-4 at 32 tokens)
EXACT_RTOL = 1e-5  # F32 KV cache, no flash attention (measured ~3e-7)
QUANT_RTOL = 5e-2  # max error vs the dequantized reference (measured <= 2.2e-2)
QUANT_MEAN_RTOL = 1e-2  # mean error (measured <= 4.4e-3)
QUANT_AGREE = 0.85  # argmax agreement (measured >= 0.906)


def tiny(kind: str = "qwen2", seed: int = 0):
    """make_model's 32-wide model with every parameter random (biases, norms too) and activations of order one."""
    return randomize(make_model(kind, seed=seed), seed=seed)


def ids_of(n: int, seed: int = 0, vocab: int = 64) -> torch.Tensor:
    return torch.randint(3, vocab, (1, n), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def hf_logits(model, ids: torch.Tensor) -> torch.Tensor:
    return model(ids).logits.float()


def rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    return float((a - ref).abs().max() / ref.abs().max())


def runner_for(path, max_context: int = 64):
    from specdec.runners.llamacpp_runner import LlamaCppRunner

    return LlamaCppRunner(path, max_context=max_context, threads=1)


@pytest.fixture
def f32_cache(monkeypatch):
    """Runners made while this is active keep their KV cache in F32 and skip flash attention (which rounds to
    F16): llama.cpp then computes what HF computes, to float rounding."""
    import llama_cpp

    default = llama_cpp.llama_context_default_params

    def params():
        cp = default()
        cp.type_k = cp.type_v = llama_cpp.GGML_TYPE_F32
        cp.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        return cp

    monkeypatch.setattr(llama_cpp, "llama_context_default_params", params)


# ------------------------------------------------------------------ the file (no llama.cpp needed)
@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_tensor_names_and_types(kind, tmp_path):
    model = tiny(kind)
    types = gguf_tensor_types(write_gguf(model, tmp_path / "m.gguf", qtype="Q8_0"))
    per_layer = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up",
                 "ffn_down"]
    expected = {"token_embd.weight", "output_norm.weight", "output.weight"}
    expected |= {f"blk.{i}.{t}.weight" for i in range(2) for t in per_layer}
    if kind == "qwen2":
        expected |= {f"blk.{i}.attn_{t}.bias" for i in range(2) for t in "qkv"}
    assert set(types) == expected
    for name, t in types.items():
        linear = name.endswith(".weight") and not ("norm" in name or name == "token_embd.weight")
        assert t == ("Q8_0" if linear else "F32"), name
    assert set(gguf_tensor_types(write_gguf(model, tmp_path / "f.gguf")).values()) == {"F32"}


def test_metadata_llama_cpp_needs(tmp_path):
    model = tiny("qwen2")
    cfg = model.config
    reader = GGUFReader(str(write_gguf(model, tmp_path / "m.gguf")))

    def val(key):
        f = reader.fields[key]
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            return [f.contents(i) for i in range(len(f.data))]
        return f.contents()

    assert val("general.architecture") == "qwen2"
    want = {"qwen2.context_length": cfg.max_position_embeddings, "qwen2.embedding_length": 32,
            "qwen2.block_count": 2, "qwen2.feed_forward_length": 64, "qwen2.attention.head_count": 4,
            "qwen2.attention.head_count_kv": 2, "qwen2.rope.dimension_count": 8}
    for k, v in want.items():
        assert val(k) == v, k
    assert val("qwen2.rope.freq_base") == pytest.approx(cfg.rope_parameters["rope_theta"])
    assert val("qwen2.attention.layer_norm_rms_epsilon") == pytest.approx(cfg.rms_norm_eps)
    assert val("tokenizer.ggml.model") == "gpt2" and val("tokenizer.ggml.pre") == "default"
    assert len(val("tokenizer.ggml.tokens")) == len(val("tokenizer.ggml.token_type")) == 64
    assert len(val("tokenizer.ggml.merges")) >= 1 and val("tokenizer.ggml.eos_token_id") == 1


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_f32_file_holds_the_weights_exactly(kind, tmp_path):
    """Reading back (and, for llama, un-permuting q/k) gives the model's own weights: nothing is lost."""
    model = tiny(kind)
    back = dequantized_model(model, write_gguf(model, tmp_path / "m.gguf"))
    for (n, a), (_, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), n
    if kind == "llama":  # the stored q/k rows are permuted for llama.cpp's interleaved rope, v is not
        w = gguf_weights(tmp_path / "m.gguf")
        q = model.model.layers[0].self_attn.q_proj.weight.detach().numpy()
        assert not np.array_equal(w["blk.0.attn_q.weight"], q)
        assert np.array_equal(np.sort(w["blk.0.attn_q.weight"], axis=None), np.sort(q, axis=None))
        assert np.array_equal(w["blk.0.attn_v.weight"], model.model.layers[0].self_attn.v_proj.weight.detach().numpy())


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_0"])
def test_q8_0_q4_0_bytes_are_gguf_quants(qtype, tmp_path):
    model = tiny("qwen2")
    path = write_gguf(model, tmp_path / "m.gguf", qtype=qtype)
    stored = {t.name: np.asarray(t.data) for t in GGUFReader(str(path)).tensors}
    w = model.model.layers[1].mlp.down_proj.weight.detach().numpy()
    assert np.array_equal(stored["blk.1.ffn_down.weight"], gguf.quants.quantize(w, QT[qtype]))
    deq = gguf_weights(path)["blk.1.ffn_down.weight"]
    assert deq.shape == w.shape and 0 < np.abs(deq - w).max() < 0.2 * np.abs(w).max()


def test_writing_is_fast_and_small(tmp_path):
    small, wide = tiny("qwen2"), make_gguf_friendly_model(0)
    sizes = {}
    for model, qtypes in ((small, ["F32", "Q8_0", "Q4_0"]), (wide, ["F32", "Q8_0", "Q4_0", "Q4_K"])):
        for qtype in qtypes:
            t = time.perf_counter()
            path = write_gguf(model, tmp_path / f"{model.config.hidden_size}-{qtype}.gguf", qtype=qtype)
            assert time.perf_counter() - t < 1.0, qtype
            sizes[model.config.hidden_size, qtype] = path.stat().st_size
    assert sizes[32, "F32"] < 200_000 and sizes[256, "F32"] < 8_000_000
    for h in (32, 256):
        assert sizes[h, "Q4_0"] < sizes[h, "Q8_0"] < sizes[h, "F32"]
    assert sizes[256, "Q4_K"] < sizes[256, "Q8_0"]


def test_shapes_and_models_it_cannot_write(tmp_path):
    with pytest.raises(ValueError, match="multiple of 256"):
        write_gguf(tiny("qwen2"), tmp_path / "m.gguf", qtype="Q4_K")  # 32-wide rows: no Q4_K super-block
    with pytest.raises(ValueError, match="qtype"):
        write_gguf(tiny("qwen2"), tmp_path / "m.gguf", qtype="Q5_K")
    import transformers

    cfg = transformers.Qwen3Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                   num_attention_heads=4, num_key_value_heads=2, head_dim=8)
    with pytest.raises(NotImplementedError):
        write_gguf(transformers.Qwen3ForCausalLM(cfg), tmp_path / "m.gguf")
    with pytest.raises(ValueError):
        make_gguf_friendly_model(hidden=128)


def test_friendly_model_shape():
    m = make_gguf_friendly_model(3, vocab=96, layers=1)
    c = m.config
    assert (c.hidden_size, c.intermediate_size, c.vocab_size, c.num_hidden_layers) == (256, 512, 96, 1)
    assert c.hidden_size // c.num_attention_heads == 64 and c.num_key_value_heads == 2
    assert float(m.model.layers[0].self_attn.q_proj.bias.detach().abs().max()) > 0  # biases are random, not zero


# ------------------------------------------------------------------ Q4_K encoder vs gguf's decoder
def canonical_q4_k_values(n_blocks: int, seed: int = 0):
    """Values exactly on a Q4_K grid our encoder picks (every sub-block uses q = 0 and 15, the largest scale and
    min are 63), from (d, dmin, sc, m, q) drawn at random and the decoder's formula x = d*sc*q - dmin*m."""
    rng = np.random.default_rng(seed)
    d = rng.uniform(1e-3, 1e-1, n_blocks).astype(np.float16)
    dmin = rng.uniform(1e-3, 1e-1, n_blocks).astype(np.float16)
    sc = rng.integers(1, 64, (n_blocks, 8)).astype(np.uint8)
    m = rng.integers(0, 64, (n_blocks, 8)).astype(np.uint8)
    sc[np.arange(n_blocks), rng.integers(0, 8, n_blocks)] = 63
    m[np.arange(n_blocks), rng.integers(0, 8, n_blocks)] = 63
    q = rng.integers(0, 16, (n_blocks, 8, 32)).astype(np.uint8)
    idx = rng.permutation(32)[:2]
    q[:, :, idx[0]], q[:, :, idx[1]] = 0, 15
    a = d.astype(np.float32)[:, None] * sc.astype(np.float32)
    b = dmin.astype(np.float32)[:, None] * m.astype(np.float32)
    x = a[..., None] * q.astype(np.float32) - b[..., None]
    return x.reshape(n_blocks, 256), (d, dmin, sc, m)


def test_q4_k_layout_is_what_gguf_decodes():
    x, (d, dmin, sc, m) = canonical_q4_k_values(64)
    blocks = quantize_q4_k(x)
    assert blocks.shape == (64, 144) and blocks.dtype == np.uint8
    assert np.array_equal(blocks[:, 0:2].copy().view(np.float16)[:, 0], d)
    assert np.array_equal(blocks[:, 2:4].copy().view(np.float16)[:, 0], dmin)
    got_sc, got_m = gguf.quants.Q4_K.get_scale_min(blocks[:, 4:16].copy())
    assert np.array_equal(got_sc, sc) and np.array_equal(got_m, m)
    assert np.array_equal(dequantize_q4_k(blocks), x)  # bit for bit: the values are on the grid
    assert np.array_equal(gguf.quants.dequantize(blocks.reshape(8, 8 * 144), QT.Q4_K), x.reshape(8, 8 * 256))


def weight_like_arrays():
    rng = np.random.default_rng(0)
    g = rng.standard_normal((64, 512)).astype(np.float32)
    varied = g * np.repeat(rng.uniform(1e-3, 3, (64, 16)), 32, axis=1).astype(np.float32)
    spiky = g * 1e-3
    spiky[:, 7] = -100
    tiny_sub = g.copy()
    tiny_sub[:, :32] *= 1e-4
    return {"normal": g, "small": 0.02 * g, "sub-block scales": varied, "positive": np.abs(g), "negative": -np.abs(g),
            "offset": g * 0.01 - 1, "cauchy": rng.standard_cauchy((64, 512)).astype(np.float32), "spike": spiky,
            "tiny sub-block": tiny_sub, "zeros": np.zeros((4, 256), np.float32),
            "constant": np.full((4, 256), -0.5, np.float32)}


@pytest.mark.parametrize("name", list(weight_like_arrays()))
def test_q4_k_reencoding_a_decoded_tensor_gives_the_same_bytes(name):
    w = weight_like_arrays()[name]
    b = quantize_q4_k(w)
    decoded = gguf.quants.dequantize(b, QT.Q4_K)
    assert decoded.shape == w.shape
    assert np.array_equal(quantize_q4_k(decoded), b)


def test_q4_k_is_close_to_its_input():
    """4-bit accuracy: better than Q4_0 on Gaussian and heavy-tailed weights (sub-block mins, 6-bit scales)."""
    arrays = weight_like_arrays()
    g = arrays["normal"]
    rms = lambda w, back: float(np.sqrt(((back - w) ** 2).mean()) / (w.std() or 1.0))  # noqa: E731
    q40 = lambda w: gguf.quants.dequantize(gguf.quants.quantize(w, QT.Q4_0), QT.Q4_0)  # noqa: E731
    assert rms(g, dequantize_q4_k(quantize_q4_k(g))) < min(0.09, rms(g, q40(g)))  # measured 0.078 (Q4_0 0.086)
    t3 = np.random.default_rng(1).standard_t(3, (64, 1024)).astype(np.float32)
    assert rms(t3, dequantize_q4_k(quantize_q4_k(t3))) < rms(t3, q40(t3))  # measured 0.10 (Q4_0 0.13)
    for name in ("positive", "negative"):
        assert rms(arrays[name], dequantize_q4_k(quantize_q4_k(arrays[name]))) < 0.1, name  # measured <= 0.065
    off = arrays["offset"]  # -1 +- 0.01: 6-bit mins cost accuracy here (0.25 std), still far from Q4_0's 2.3
    assert rms(off, dequantize_q4_k(quantize_q4_k(off))) < 0.2 * rms(off, q40(off))
    assert np.array_equal(dequantize_q4_k(quantize_q4_k(arrays["zeros"])), arrays["zeros"])
    assert np.abs(dequantize_q4_k(quantize_q4_k(arrays["constant"])) + 0.5).max() < 1e-3


@pytest.mark.parametrize("name", list(weight_like_arrays()))
def test_q4_k_error_bound_per_sub_block(name):
    """Every value is within half a step of its sub-block's grid, plus the grid's bottom (-dmin * m, at most
    dmin above the sub-block's minimum), plus -- for scales below 15, rounded down -- the top clipped by
    < 15 d."""
    w = weight_like_arrays()[name]
    b = quantize_q4_k(w).reshape(-1, 144)
    d = b[:, 0:2].copy().view(np.float16).astype(np.float64)
    dmin = b[:, 2:4].copy().view(np.float16).astype(np.float64)
    sc, _ = gguf.quants.Q4_K.get_scale_min(b[:, 4:16].copy())
    bound = 0.5 * d * sc + dmin + np.where(sc < 15, 15 * d, 0) + 1e-6 * np.abs(w).max()
    err = np.abs(dequantize_q4_k(b).reshape(-1, 8, 32) - w.reshape(-1, 8, 32)).max(axis=2)
    assert (err <= bound).all()


# ------------------------------------------------------------------ llama.cpp runs the files
@needs_llamacpp
@pytest.mark.parametrize("kind", ["qwen2", "llama"])
@pytest.mark.parametrize("size", ["tiny", "wide"])
def test_f32_logits_match_hf(kind, size, tmp_path):
    model = tiny(kind, seed=1) if size == "tiny" else make_gguf_friendly_model(1, kind=kind)
    r = runner_for(write_gguf(model, tmp_path / "m.gguf"))
    assert (r.vocab_size, r.hidden_size, r.eos_token_ids) == (64, model.config.hidden_size, (1,))
    ids = ids_of(32, seed=1)
    logits, _ = r.forward(ids)
    ref = hf_logits(model, ids)
    assert logits.shape == ref.shape and rel_err(logits, ref) < F32_RTOL
    assert torch.equal(logits.argmax(-1), ref.argmax(-1))


@needs_llamacpp
@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_f32_is_exact_with_an_f32_kv_cache(kind, f32_cache, tmp_path):
    """The remaining difference above is llama.cpp's F16 cache, not the file: with an F32 cache it is rounding."""
    model = tiny(kind, seed=2)
    r = runner_for(write_gguf(model, tmp_path / "m.gguf"))
    ids = ids_of(24, seed=2)
    logits, hidden = r.forward(ids, need_hidden=True)
    with torch.no_grad():
        out = model(ids, output_hidden_states=True)
    assert rel_err(logits, out.logits) < EXACT_RTOL
    assert rel_err(hidden, out.hidden_states[-1]) < EXACT_RTOL  # post-norm: output_norm is right too


@needs_llamacpp
@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_chains_and_kv_rollback(kind, f32_cache, tmp_path):
    model = tiny(kind, seed=3)
    ids = ids_of(20, seed=3)
    ref = hf_logits(model, ids)[0]
    r = runner_for(write_gguf(model, tmp_path / "m.gguf"))
    r.prefill(ids[:, :8])
    first, _ = r.forward(ids[:, 8:14])  # a chain after the cache
    assert rel_err(first[0], ref[8:14]) < EXACT_RTOL and r.length == 8
    r.commit(3)
    wrong, _ = r.forward(torch.tensor([[5, 6, 7, 8]]))  # a draft that is not the sequence
    r.commit(4)
    assert r.length == 15
    r.rollback(11)  # forget the wrong tokens: the next pass must not see them
    again, _ = r.forward(ids[:, 11:20])
    assert rel_err(again[0], ref[11:20]) < EXACT_RTOL
    r.commit(9)
    r.rollback(8)
    redo, _ = r.forward(ids[:, 8:14])
    assert rel_err(redo[0], first[0]) < EXACT_RTOL
    r.reset()
    alone, _ = r.forward(ids[:, :5])
    assert rel_err(alone[0], ref[:5]) < EXACT_RTOL


@needs_llamacpp
def test_chain_with_the_runner_as_is(tmp_path):
    model = tiny("qwen2", seed=4)
    ids = ids_of(24, seed=4)
    ref = hf_logits(model, ids)[0]
    r = runner_for(write_gguf(model, tmp_path / "m.gguf"))
    r.prefill(ids[:, :10])
    part, _ = r.forward(ids[:, 10:24])
    assert rel_err(part[0], ref[10:]) < F32_RTOL


QUANT_CASES = [(k, q, s) for k in ("qwen2", "llama") for q, s in
               (("Q8_0", "tiny"), ("Q4_0", "tiny"), ("Q8_0", "wide"), ("Q4_0", "wide"), ("Q4_K", "wide"))]


@needs_llamacpp
@pytest.mark.parametrize("kind,qtype,size", QUANT_CASES, ids=["-".join(c) for c in QUANT_CASES])
def test_quantized_logits_match_the_dequantized_weights(kind, qtype, size, tmp_path):
    model = tiny(kind, seed=5) if size == "tiny" else make_gguf_friendly_model(5, kind=kind)
    path = write_gguf(model, tmp_path / "m.gguf", qtype=qtype)
    types = gguf_tensor_types(path)
    assert types["blk.0.ffn_down.weight"] == types["output.weight"] == qtype and types["token_embd.weight"] == "F32"
    ids = ids_of(32, seed=5)
    logits, _ = runner_for(path).forward(ids)
    ref = hf_logits(dequantized_model(model, path), ids)
    err = rel_err(logits, ref)
    assert err < QUANT_RTOL
    assert float((logits - ref).abs().mean() / ref.abs().max()) < QUANT_MEAN_RTOL
    assert (logits.argmax(-1) == ref.argmax(-1)).float().mean() >= QUANT_AGREE
    if qtype != "Q8_0":  # the reference is the file's weights, not the model's: much closer than the original
        assert err < 0.5 * rel_err(logits, hf_logits(model, ids))


@needs_llamacpp
def test_a_tokenizer_vocabulary_loads(tmp_path):
    model = tiny("qwen2")
    r = runner_for(write_gguf(model, tmp_path / "m.gguf", tokens=make_tokenizer()))
    L = r._L
    texts = [L.llama_vocab_get_text(r._vocab, i).decode() for i in range(3)]
    assert texts == ["<unk>", "<eos>", "<pad>"] and r.eos_token_ids == (1,)
    ids = ids_of(8)
    assert rel_err(r.forward(ids)[0], hf_logits(model, ids)) < F32_RTOL


@needs_llamacpp
@pytest.mark.parametrize("variant", ["qwen2-tied-theta1e6", "llama-attention-bias"])
def test_config_variants(variant, f32_cache, tmp_path):
    """Tied embeddings (output written from token_embd), another rope base and rms eps, llama's optional
    attention biases (q/k biases permuted with their rows)."""
    import transformers

    common = dict(vocab_size=80, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256, eos_token_id=1)
    if variant.startswith("qwen2"):
        cfg = transformers.Qwen2Config(tie_word_embeddings=True, rope_theta=1e6, rms_norm_eps=1e-5, **common)
        model = transformers.Qwen2ForCausalLM(cfg)
    else:
        cfg = transformers.LlamaConfig(tie_word_embeddings=False, attention_bias=True, **common)
        model = transformers.LlamaForCausalLM(cfg)
    model = randomize(model.eval(), seed=6)
    path = write_gguf(model, tmp_path / "m.gguf")
    if variant.startswith("llama"):
        assert "blk.1.attn_output.bias" in gguf_tensor_types(path)
    r = runner_for(path)
    assert r.vocab_size == 80 and r.max_context == 64
    ids = ids_of(20, seed=6, vocab=80)
    assert rel_err(r.forward(ids)[0], hf_logits(model, ids)) < EXACT_RTOL
