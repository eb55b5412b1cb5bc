"""The runner contract, run against every registered runner (specdec.runners.RUNNERS) in every weight format:
passes, rollback, trees, commits, hidden states, measured costs, and the invariant every drafter and policy
must keep on every runner -- greedy speculative output equals the same runner's greedy plain output.

Each registered runner needs an entry in VARIANTS (a new runner without one fails `test_every_runner_has_
contract_variants`). Variants build a runner from a tiny random HF model: torch directly (fp32, and int8 /
int4 weights by round-to-nearest on each of the kernels), llamacpp from a GGUF written with the `gguf`
library (tests/gguf_helpers.py).
"""
from __future__ import annotations

import importlib.util

import pytest
import torch

from spec_helpers import close_draft, make_model, make_tokenizer, pin_pass_costs, random_prompts
from specdec.runners import RUNNERS
from specdec.weights import kernels, quant
from specdec.runners.costs import measure

MAX_CONTEXT = 96


def _torch(weights: str, kernel: str | None = None):
    def build(model, tmp_path):
        from specdec.runners.torch_runner import TorchRunner

        if kernel == "vnni" and not kernels.cpu_supported():
            pytest.skip("this CPU has no AVX512-VNNI for specdec's qmatmul kernel")
        if kernel == "avx2" and not kernels.cpu_supported_avx2():
            pytest.skip("this CPU has no AVX2 / FMA / F16C for the kernel's AVX2 build")
        if weights != "fp32":
            import copy

            model = copy.deepcopy(model)
            model = quant.quantize_model(model, quant.quantize_from_weights(model, weights), kernel=kernel)
            quant.fuse_projections(model)
            quant.compute_in_float32(model)
        return TorchRunner(model, max_context=MAX_CONTEXT)

    return build


def _llamacpp(qtype: str):
    def build(model, tmp_path):
        if importlib.util.find_spec("llama_cpp") is None:
            pytest.skip("llama-cpp-python is not installed (pip install 'specdec[llamacpp]')")
        from gguf_helpers import write_gguf
        from specdec.runners.llamacpp_runner import LlamaCppRunner

        path = write_gguf(model, tmp_path / f"m-{id(model)}-{qtype}.gguf", qtype=qtype)
        return LlamaCppRunner(path, max_context=MAX_CONTEXT, threads=1)

    return build


VARIANTS = {
    "torch": {"fp32": _torch("fp32"), "int8-vnni": _torch("int8", "vnni"), "int4-vnni": _torch("int4", "vnni"),
              "int8-avx2": _torch("int8", "avx2"), "int4-avx2": _torch("int4", "avx2"),
              "int4-aten": _torch("int4", "aten"), "int4-reference": _torch("int4", "reference")},
    "llamacpp": {"f32": _llamacpp("F32"), "q8_0": _llamacpp("Q8_0")},
}
IDS = [(r, v) for r in VARIANTS for v in VARIANTS[r]]
# rows of a pass may round differently from one-row passes elsewhere; exact on specdec's VNNI kernel (per-row
# activation quantization, row-by-row attention), within a few ulps for fp32 torch; the AVX2 build's linear
# layers are row-exact too, but its attention is torch's
ATOL = {"fp32": 2e-5, "int8-vnni": 0.0, "int4-vnni": 0.0}


def test_every_runner_has_contract_variants():
    assert set(RUNNERS.names()) <= set(VARIANTS), "add the new runner's tiny-model builders to VARIANTS"


@pytest.fixture(scope="module")
def tiny():
    target = make_model("qwen2", seed=0, layers=2, sharp=8.0)
    return target, close_draft(target, eps=0.15), make_tokenizer()


@pytest.fixture(params=IDS, ids=[f"{r}-{v}" for r, v in IDS])
def runner(request, tiny, tmp_path):
    name, variant = request.param
    r = VARIANTS[name][variant](tiny[0], tmp_path)
    r.variant = variant
    return r


def ids_of(n, seed=0):
    return torch.randint(3, 64, (1, n), generator=torch.Generator().manual_seed(seed))


def close(a, b, runner):
    atol = ATOL.get(runner.variant, 2e-3)
    torch.testing.assert_close(a, b, atol=atol, rtol=0.0 if atol == 0 else 1e-3)


def test_llamacpp_exact_mode_loads_unrepacked_weights(tiny, tmp_path):
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install 'specdec[llamacpp]')")
    from gguf_helpers import write_gguf
    from specdec.errors import InputError
    from specdec.runners.llamacpp_runner import LlamaCppRunner

    path = write_gguf(tiny[0], tmp_path / "m.gguf", qtype="Q8_0")
    exact = LlamaCppRunner(path, max_context=MAX_CONTEXT, threads=1, query_len=8)
    assert exact.exact and not exact.repack and exact.query_len is None  # nothing padded
    fast = LlamaCppRunner(path, max_context=MAX_CONTEXT, threads=1, repack=True)
    assert fast.repack and not fast.exact and fast.fingerprint() != exact.fingerprint()
    with pytest.raises(InputError, match="unrepacked"):
        LlamaCppRunner(path, max_context=MAX_CONTEXT, threads=1, query_len=8, repack=True)


def test_protocol_attributes(runner):
    from specdec.runners.base import Runner

    assert isinstance(runner, Runner)
    assert runner.name in RUNNERS.names() and runner.vocab_size >= 64 and runner.max_pass >= 16
    assert runner.length == 0 and runner.space_left() == runner.max_context == MAX_CONTEXT
    assert isinstance(runner.fingerprint(), str) and runner.fingerprint()
    assert isinstance(runner.weights, str) and runner.weights and runner.vocab_ids is None
    assert runner.compute_dtype in ("bfloat16", "float32", "float16", "gguf")


def test_restrict_vocab_narrows_the_logits_or_says_why_in_one_line(runner):
    """A draft's smaller output layer (draft-model's vocab=N): rows become the kept ids' logits, unchanged; a
    runner that cannot restrict raises InputError (one line), not an AttributeError from a caller's probe."""
    from specdec.errors import InputError

    ids = ids_of(8, seed=3)
    runner.prefill(ids[:, :6])
    full, _ = runner.forward(ids[:, 6:8])  # (1, 2, V)
    keep = [0, 5, 7, 9] + list(range(20, 32))  # 16 ids: one kernel block, no padding
    try:
        runner.restrict_vocab(keep)
    except InputError as e:
        assert "\n" not in str(e) and "vocab=0" in str(e)
        return
    assert runner.vocab_ids.tolist() == keep
    part, _ = runner.forward(ids[:, 6:8])  # (1, 2, 16)
    assert part.shape == (1, 2, len(keep))
    torch.testing.assert_close(part, full[:, :, keep], rtol=1e-4, atol=1e-4)


def test_a_pass_matches_one_token_at_a_time_and_never_commits(runner):
    ids = ids_of(14, seed=1)
    runner.prefill(ids[:, :6])
    assert runner.length == 6
    together, _ = runner.forward(ids[:, 6:14])  # (1, 8, V)
    assert together.shape == (1, 8, runner.vocab_size) and together.dtype == torch.float32
    assert runner.length == 6  # forward never commits
    for t in range(6, 14):
        alone, _ = runner.forward(ids[:, t : t + 1])
        close(alone[0, 0], together[0, t - 6], runner)
        runner.commit(1)
    assert runner.length == 14 and runner.space_left() == MAX_CONTEXT - 14


def test_rollback_forgets_and_the_same_pass_gives_the_same_logits(runner):
    ids = ids_of(12, seed=2)
    runner.prefill(ids[:, :8])
    a, _ = runner.forward(ids[:, 8:12])
    runner.commit(4)
    runner.rollback(8)
    b, _ = runner.forward(torch.tensor([[5, 6, 7]]))  # other tokens in the rolled-back slots
    runner.rollback(8)
    c, _ = runner.forward(ids[:, 8:12])
    torch.testing.assert_close(a, c, atol=0, rtol=0)
    assert not torch.allclose(a[0, 1:3], b[0, 1:3])
    with pytest.raises(ValueError):
        runner.rollback(9)


def test_tree_pass_equals_the_chain_of_each_path_and_commits_a_path(runner):
    ids = ids_of(10, seed=3)
    runner.prefill(ids[:, :6])
    root, a, b, c = int(ids[0, 6]), int(ids[0, 7]), int(ids[0, 8]), 41
    # root -> a -> b, root -> c (a sibling of a between a and b in the batch: non-contiguous path)
    toks = torch.tensor([[root, a, c, b]])
    mask = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 0, 1]], dtype=torch.bool)
    tree, _ = runner.forward(toks, tree_mask=mask, depths=torch.tensor([0, 1, 1, 2]))
    chain_ab, _ = runner.forward(torch.tensor([[root, a, b]]))
    chain_c, _ = runner.forward(torch.tensor([[root, c]]))
    close(tree[0, [0, 1, 3]], chain_ab[0], runner)
    close(tree[0, 2], chain_c[0, 1], runner)
    runner.forward(toks, tree_mask=mask, depths=torch.tensor([0, 1, 1, 2]))
    runner.commit(3, keep=[0, 1, 3])  # root, a, b
    assert runner.length == 9
    nxt, _ = runner.forward(ids[:, 9:10])
    runner.rollback(6)
    ref, _ = runner.forward(torch.tensor([[root, a, b, int(ids[0, 9])]]))
    close(nxt[0, 0], ref[0, 3], runner)


def test_commit_without_keep_after_a_tree_pass_keeps_the_first_path(runner):
    """`commit(n)` keeps the first n tokens of the last pass, a tree pass too (when they form a path)."""
    ids = ids_of(12, seed=4)
    runner.prefill(ids[:, :6])
    mask = torch.ones(4, 4, dtype=torch.bool).tril()
    runner.forward(ids[:, 6:10], tree_mask=mask, depths=torch.arange(4))
    runner.commit(4)
    nxt, _ = runner.forward(ids[:, 10:11])
    runner.rollback(6)
    ref, _ = runner.forward(ids[:, 6:11])
    close(nxt[0, 0], ref[0, 4], runner)


def test_hidden_states_when_asked(runner):
    runner.prefill(ids_of(5))
    logits, hidden = runner.forward(ids_of(3, seed=5), need_hidden=True)
    assert hidden is not None and hidden.shape[:2] == (1, 3) and hidden.shape[2] == 32
    assert torch.isfinite(hidden).all()


def test_reset_and_context_overflow_is_one_clear_error(runner):
    from specdec.errors import InputError

    runner.prefill(ids_of(20))
    runner.reset()
    assert runner.length == 0
    runner.prefill(ids_of(MAX_CONTEXT - 2))
    with pytest.raises(InputError, match="context overflow"):
        runner.forward(ids_of(3))


def test_measured_costs_are_positive_per_row_count(runner):
    costs = measure(runner, rows=(1, 2, 4), context=16, repeats=2)
    assert costs.rows == (1, 2, 4) and all(s > 0 for s in costs.seconds)
    assert costs(3) > 0 and costs(40) >= costs(4) * 0.5
    assert runner.length == 0  # the measurement leaves the cache empty


# ------------------------------------------------------------------ the invariant: greedy speculation == plain
def _combos():
    from policies import POLICIES
    from specdec.drafters import DRAFTERS

    out = []
    for d in DRAFTERS.names():
        for p in POLICIES.names():
            out.append((d, p))
    return out


def _spec_for(drafter: str, policy: str, tmp_path, draft_model, tok):
    from specdec.config import SpecConfig

    d_opts, p_opts = {}, {}
    if drafter == "mlm":
        from mlm_fixtures import make_bert, make_mlm_tokenizer

        words = [f"w{i}" for i in range(61)]
        mtok = make_mlm_tokenizer("bert", words=words)
        folder = tmp_path / "mlm"
        if not folder.exists():
            make_bert(mtok).save_pretrained(folder)
            mtok.save_pretrained(folder)
        d_opts["mlm"] = str(folder)
    if drafter == "aded":
        d_opts["store"] = "empty"
    if drafter == "hybrid":
        d_opts["min_match"] = 2  # random tiny-model text repeats short n-grams only: both parts get rounds
    if policy.startswith("specdecpp"):
        if drafter != "draft-model":
            return None  # the acceptance head reads a draft model's hidden states
        from specdecpp_helpers import make_head_file

        p_opts["head"] = str(make_head_file(tmp_path / f"{policy}.safetensors", draft_model, seed=3))
        if policy == "specdecpp-conf":
            return None  # its head takes the confidence feature too; covered by tests/policies/specdecpp
    return SpecConfig(drafter=drafter, policy=policy, k=4, guard=False, drafter_options=d_opts,
                      policy_options=p_opts)


def test_greedy_speculation_equals_plain_for_every_drafter_and_policy(runner, tiny, tmp_path, request, monkeypatch):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "mlm_generate"))
    sys.path.insert(0, str(Path(__file__).parents[1] / "policies" / "specdecpp"))
    from specdec.api import SpecDecoder
    from specdec.config import SpecConfig, StopConfig
    from specdec.stats import GenerationStats

    from specdec.runners.costs import PassCosts

    # sized drafters (ADED's default) on a flat curve: what they draft must not hang on this machine's timing
    pin_pass_costs(monkeypatch, PassCosts((1, 64), (0.1, 0.1)))
    target, draft, tok = tiny
    builder = VARIANTS[runner.name][runner.variant]
    dec = SpecDecoder(runner, tok, draft="d", model_loader=lambda name: (builder(draft, tmp_path), tok))
    stop = StopConfig(max_new_tokens=16)
    # and two prompts of 48+ tokens: prefill chunks past the one-call layer path (and, under
    # a CPU with AMX-BF16, on bf16 tiles: tests/runners/test_prefill_bf16.py)
    prompts = random_prompts(8, seed=11) + random_prompts(2, seed=12, lo=48, hi=64)
    plain = [[t for r in dec.stream_ids(p, stop=stop, spec=SpecConfig()) for t in r.tokens] for p in prompts]
    checked = 0
    near_ties: list[float] = []
    for drafter, policy in _combos():
        spec = _spec_for(drafter, policy, tmp_path, draft, tok)
        if spec is None:
            continue
        st = GenerationStats()
        for i, p in enumerate(prompts):
            out = [t for r in dec.stream_ids(p, stop=stop, spec=spec, stats=st) for t in r.tokens]
            if out != plain[i] and runner.name == "llamacpp" and runner.variant != "f32":
                near_ties.append(_explained_by_a_near_tie(runner, p, plain[i], out, f"{drafter} x {policy}, prompt {i}"))
                continue
            assert out == plain[i], f"{drafter} x {policy}, prompt {i}: speculative output differs from plain"
        assert st.drafted > 0, f"{drafter} x {policy} never drafted: the check would be vacuous"
        checked += 1
    assert checked >= 10
    assert len(near_ties) <= 3, f"{len(near_ties)} speculative outputs parted from plain at near-ties: too many to be rounding"


NEAR_TIE = 0.05  # logits; the tiny models' top two are usually several units apart


def _explained_by_a_near_tie(runner, prompt, plain: list[int], out: list[int], what: str) -> float:
    """llama.cpp's tree passes are not bit-exact against its 1-row passes on quantized weights (docs/runners.md,
    "llama.cpp: trees and exactness"): a tree's cells sit elsewhere in its KV cache, attention sums in another
    order, and the per-row int8 rounding of the next layer's input can turn that 1e-7 into 1e-2 in a logit. So a
    greedy output may part from plain decoding only where plain's two best tokens are within NEAR_TIE and the
    speculative run took the second one; the gap is returned."""
    i = next(j for j, (a, b) in enumerate(zip(plain, out)) if a != b)
    runner.reset()
    runner.prefill(prompt[:, :-1])
    seq = [int(prompt[0, -1])] + plain
    for j in range(i + 1):
        logits, _ = runner.forward(torch.tensor([[seq[j]]]))
        runner.commit(1)
    vals, top = logits[0, -1].float().topk(2)
    gap = float(vals[0] - vals[1])
    assert top.tolist() == [plain[i], out[i]] and gap < NEAR_TIE, (
        f"{what}: speculative output differs from plain at token {i} ({out[i]} for {plain[i]}), and plain's top "
        f"two there are {top.tolist()}, {gap:.4f} apart: not a near-tie")
    return gap
