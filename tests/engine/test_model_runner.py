"""specdec.runners.torch_runner.TorchRunner: our static KV cache + masks give HF's logits (chains, trees, rollback, compaction)."""
from __future__ import annotations

import types

import pytest
import torch
import transformers

from spec_helpers import make_model
from specdec.runners.torch_runner import BUCKETS, TorchRunner
from specdec.errors import InputError, ModelLoadError

ATOL = 2e-5


def tiny(kind: str, seed: int = 0, **over):
    """Tiny fp32 models of every attention layout the runner claims: GQA (4 q / 2 kv heads), MHA, qwen3 (q/k norm)."""
    if kind in ("qwen2", "llama"):
        return make_model(kind, seed=seed, sharp=4.0)
    torch.manual_seed(seed)
    common = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  max_position_embeddings=512, tie_word_embeddings=False, eos_token_id=1, pad_token_id=2)
    if kind == "llama-mha":
        cfg = transformers.LlamaConfig(num_key_value_heads=4, **common, **over)
        return transformers.LlamaForCausalLM(cfg).eval()
    if kind == "qwen3":
        cfg = transformers.Qwen3Config(num_key_value_heads=2, head_dim=16, **common, **over)  # head_dim != H / heads
        return transformers.Qwen3ForCausalLM(cfg).eval()
    raise ValueError(kind)


KINDS = ["qwen2", "llama", "llama-mha", "qwen3"]


@pytest.fixture(scope="module", params=KINDS)
def model(request):
    return tiny(request.param)


@torch.no_grad()
def hf_logits(model, ids: torch.Tensor) -> torch.Tensor:
    return model(ids).logits.float()


def ids_of(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(3, 64, (1, n), generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ chains
def test_full_forward_matches_hf(model):
    ids = ids_of(11)
    r = TorchRunner(model, max_context=64)
    logits, hidden = r.forward(ids)
    assert logits.shape == (1, 11, 64) and logits.dtype == torch.float32
    torch.testing.assert_close(logits, hf_logits(model, ids), atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(r.core.lm_head(hidden), logits, atol=ATOL, rtol=1e-4)
    assert r.length == 0  # forward never commits


def test_incremental_decoding_matches_hf(model):
    ids = ids_of(14, seed=1)
    ref = hf_logits(model, ids)
    r = TorchRunner(model, max_context=64)
    r.prefill(ids[:, :5])
    assert r.length == 5
    for s, e in [(5, 6), (6, 9), (9, 10), (10, 14)]:  # 1, 3, 1, 4 tokens at a time
        out, _ = r.forward(ids[:, s:e])
        torch.testing.assert_close(out, ref[:, s:e], atol=ATOL, rtol=1e-4)
        r.commit(e - s)
    assert r.length == 14


def test_chunked_prefill_matches_hf(model):
    ids = ids_of(13, seed=2)
    ref = hf_logits(model, ids)
    r = TorchRunner(model, max_context=64)
    r.prefill(ids[:, :12], chunk=5)  # chunks of 5, 5, 2
    assert r.length == 12
    out, _ = r.forward(ids[:, 12:13])  # the cache the chunks wrote gives the next token's logits
    torch.testing.assert_close(out, ref[:, 12:13], atol=ATOL, rtol=1e-4)
    nxt, _ = r.forward(ids[:, 12:13])
    torch.testing.assert_close(nxt, ref[:, 12:13], atol=ATOL, rtol=1e-4)


def test_rollback_then_reforward_gives_identical_logits(model):
    ids = ids_of(12, seed=3)
    other = ids_of(4, seed=4)
    r = TorchRunner(model, max_context=64)
    r.prefill(ids[:, :8])
    first, _ = r.forward(ids[:, 8:12])
    r.commit(4)
    r.rollback(8)  # reject all four
    assert r.length == 8
    alt, _ = r.forward(other)  # a different continuation overwrites the slots
    torch.testing.assert_close(alt, hf_logits(model, torch.cat([ids[:, :8], other], 1))[:, 8:], atol=ATOL, rtol=1e-4)
    r.commit(2)
    r.rollback(8)
    again, _ = r.forward(ids[:, 8:12])
    torch.testing.assert_close(again, first, atol=1e-6, rtol=0)
    r.commit(4)
    r.rollback(10)  # keep two, continue
    tail, _ = r.forward(ids[:, 10:12])
    torch.testing.assert_close(tail, first[:, 2:], atol=1e-6, rtol=0)


def test_rollback_out_of_range_raises():
    r = TorchRunner(tiny("qwen2"), max_context=32)
    r.prefill(ids_of(4))
    with pytest.raises(ValueError):
        r.rollback(5)
    with pytest.raises(ValueError):
        r.rollback(-1)
    r.reset()
    assert r.length == 0 and r.space_left() == 32


# ------------------------------------------------------------------ trees
# root (the pending token) -> n0, n1;  n1 -> n2, n3;  n2 -> n4;  n0 -> n5
PARENTS = [-1, -1, 1, 1, 2, 0]


def tree_inputs(parents):
    """The loop's tree layout: row 0 = the pending root token, rows 1.. = the nodes."""
    n = len(parents)
    mask = torch.zeros(n + 1, n + 1, dtype=torch.bool)
    depth = [0] * (n + 1)
    mask[0, 0] = True
    for i, p in enumerate(parents, start=1):
        par = p + 1  # -1 -> the root row 0
        mask[i] = mask[par]
        mask[i, i] = True
        depth[i] = depth[par] + 1
    return mask, torch.tensor(depth)


def path_to(node: int, parents) -> list[int]:
    """Row indices (root = 0) from the root to `node` (a 0-based node index)."""
    out = []
    while node >= 0:
        out.append(node + 1)
        node = parents[node]
    return [0] + out[::-1]


def test_tree_forward_equals_each_branch_run_alone(model):
    prefix = ids_of(7, seed=5)
    toks = ids_of(1 + len(PARENTS), seed=6)  # root + nodes
    mask, depth = tree_inputs(PARENTS)
    r = TorchRunner(model, max_context=64)
    r.prefill(prefix)
    out, _ = r.forward(toks, tree_mask=mask, depths=depth)
    assert r.length == 7
    for node in range(-1, len(PARENTS)):
        rows = path_to(node, PARENTS) if node >= 0 else [0]
        seq = torch.cat([prefix, toks[:, rows]], dim=1)
        torch.testing.assert_close(out[0, rows[-1]], hf_logits(model, seq)[0, -1], atol=ATOL, rtol=1e-4)


def test_commit_keep_compacts_the_accepted_path(model):
    prefix = ids_of(6, seed=7)
    toks = ids_of(1 + len(PARENTS), seed=8)
    mask, depth = tree_inputs(PARENTS)
    r = TorchRunner(model, max_context=64)
    r.prefill(prefix)
    r.forward(toks, tree_mask=mask, depths=depth)
    keep = path_to(4, PARENTS)  # root, n1, n2, n4 -> rows [0, 2, 3, 5]
    assert keep == [0, 2, 3, 5]
    r.commit(len(keep), keep=keep)
    assert r.length == 6 + 4
    nxt = ids_of(3, seed=9)
    out, _ = r.forward(nxt)  # continue after the accepted path
    seq = torch.cat([prefix, toks[:, keep], nxt], dim=1)
    torch.testing.assert_close(out, hf_logits(model, seq)[:, -3:], atol=ATOL, rtol=1e-4)


def test_commit_keep_of_a_prefix_is_a_plain_commit():
    m = tiny("llama")
    prefix, toks = ids_of(5, seed=10), ids_of(4, seed=11)
    r = TorchRunner(m, max_context=32)
    r.prefill(prefix)
    r.forward(toks)
    r.commit(2, keep=[0, 1])
    out, _ = r.forward(toks[:, 2:3])
    torch.testing.assert_close(out, hf_logits(m, torch.cat([prefix, toks[:, :3]], 1))[:, -1:], atol=ATOL, rtol=1e-4)


# ------------------------------------------------------------------ limits and errors
def test_context_overflow_raises_input_error():
    r = TorchRunner(tiny("qwen2"), max_context=16)
    with pytest.raises(InputError, match="context overflow"):
        r.forward(ids_of(17))
    r.prefill(ids_of(10))
    out, _ = r.forward(ids_of(6))  # exactly full is fine
    assert out.shape == (1, 6, 64)
    with pytest.raises(InputError, match="max context 16"):
        r.forward(ids_of(7))
    assert r.space_left() == 6


def test_max_context_is_capped_by_the_model():
    r = TorchRunner(tiny("qwen2"), max_context=100_000)
    assert r.max_context == 512  # max_position_embeddings of the tiny config
    assert r.vocab_size == 64


def test_unsupported_model_type_raises():
    fake = types.SimpleNamespace(config=types.SimpleNamespace(model_type="gpt2"))
    with pytest.raises(ModelLoadError, match="gpt2.*supported: .*llama"):
        TorchRunner(fake)


def test_sliding_window_is_refused():
    torch.manual_seed(0)
    cfg = transformers.Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                   num_attention_heads=4, num_key_value_heads=2, use_sliding_window=True,
                                   sliding_window=8, max_position_embeddings=512)
    with pytest.raises(ModelLoadError, match="sliding"):
        TorchRunner(transformers.Qwen2ForCausalLM(cfg).eval(), max_context=64)


# ------------------------------------------------------------------ torch.compile
def test_compiled_step_matches_eager_including_padded_buckets():
    """One compile (~20 s of CPU here): a query length that is not a bucket is padded up; the padding must not
    change the real rows (chain and tree), and a later call of the bucket's own length reuses the compiled graph."""
    m = tiny("qwen2")
    T = next(t for t in range(1, max(BUCKETS)) if t not in BUCKETS)  # padded up to the next bucket
    P = next(b for b in BUCKETS if b > T)
    prefix, toks = ids_of(9, seed=12), ids_of(P, seed=13)
    eager = TorchRunner(m, max_context=64)
    comp = TorchRunner(m, max_context=64, compile=True)
    for r in (eager, comp):
        r.prefill(prefix)
    # chain of T tokens (padded to P)
    ref, _ = eager.forward(toks[:, :T])
    out, _ = comp.forward(toks[:, :T])
    assert comp.compile_seconds > 0
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out, hf_logits(m, torch.cat([prefix, toks[:, :T]], 1))[:, 9:], atol=1e-4, rtol=1e-4)
    spent = comp.compile_seconds
    # the bucket's own length: same compiled shape, no new compile; commit some and check the cache is right
    comp.commit(2)
    eager.commit(2)
    ref, _ = eager.forward(toks[:, 2:2 + P])
    out, _ = comp.forward(toks[:, 2:2 + P])
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    assert comp.compile_seconds == spent
    # a tree through the padded compiled step
    parents = [i - 2 if i >= 2 else -1 for i in range(T - 1)]  # two interleaved chains
    mask, depth = tree_inputs(parents)
    ref, _ = eager.forward(toks[:, :T], tree_mask=mask, depths=depth)
    out, _ = comp.forward(toks[:, :T], tree_mask=mask, depths=depth)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    assert comp.compile_seconds == spent
    # the compiled step wrote its keys/values into the runner's own per-layer tensors, in place
    torch.testing.assert_close(comp.k_cache[:, :, :, :eager.length + T], eager.k_cache[:, :, :, :eager.length + T])


def test_each_layer_has_its_own_cache_tensor():
    """One tensor per layer, not views of one (L, ...) tensor: inductor copies a whole graph input when a slice
    of it is written, which cost ~30 ms per step of the 1.5B (a third of the step)."""
    r = TorchRunner(tiny("qwen2"), max_context=32)
    ptrs = {t.untyped_storage().data_ptr() for t in r.k_layers + r.v_layers}
    assert len(r.k_layers) == r.config.num_hidden_layers and len(ptrs) == 2 * len(r.k_layers)
    assert r.k_cache.shape == (len(r.k_layers), *r.k_layers[0].shape)


def test_compiled_shapes_are_capped():
    """Each compiled shape holds its own prepacked weights: past MAX_COMPILED_SHAPES a pass is padded to the
    smallest compiled length that fits, or runs eagerly (None) -- never a fifth compile."""
    from specdec.runners import torch_runner as runner_mod

    r = TorchRunner(tiny("qwen2"), max_context=64)
    assert r._bucket(3) == 3 and r._bucket(7) == 8  # nothing compiled yet: the bucket
    r._seen_shapes = {1, 5}
    assert r._bucket(4) == 5  # reuse within REUSE_SLACK
    assert r._bucket(11) == 12  # under the cap: a new bucket
    r._seen_shapes = set(list(BUCKETS)[: runner_mod.MAX_COMPILED_SHAPES])  # {1, 2, 3, 4}: the cap is reached
    assert r._bucket(2) == 2
    assert r._bucket(9) is None  # nothing compiled fits: eager
    r._seen_shapes = {1, 2, 3, 16}
    assert r._bucket(9) == 16  # padded to the smallest compiled length that fits, even past REUSE_SLACK
