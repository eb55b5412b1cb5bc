"""draft-model trees: EAGLE-2-style trees from the draft model (greedy identity, lossless sampling, option checks)
and trees sized by the target's measured pass costs."""
from __future__ import annotations

import pytest
import torch

from spec_helpers import close_draft  # isort: skip
from policies.simple import ConstantPolicy
from specdec.api import SpecDecoder
from specdec.config import SamplingConfig, SpecConfig, StopConfig
from specdec.drafters.base import DraftContext
from specdec.drafters.draft_model import DraftModelDrafter
from specdec.runners.costs import PassCosts
from specdec.runners.torch_runner import TorchRunner
from specdec.errors import InputError
from specdec.sampling import process_logits
from specdec.stats import GenerationStats


@pytest.fixture(scope="module")
def close(target_model):
    return close_draft(target_model, eps=0.15)


# ------------------------------------------------------------------ trees from the draft model
@pytest.mark.parametrize("kind", ["qwen2", "llama"])
@pytest.mark.parametrize("nodes,branch,width", [(6, 2, 3), (8, 3, 4)])
def test_tree_drafts_greedy_identical_to_plain(kind, nodes, branch, width, tokenizer, target_model):
    from spec_helpers import make_model, random_prompts

    target = target_model if kind == "qwen2" else make_model("llama", seed=5, layers=2, sharp=8.0)
    draft = close_draft(target, eps=0.3)
    dec = SpecDecoder(target, tokenizer, model_loader=lambda name: (draft, tokenizer), draft="d")
    stop = StopConfig(max_new_tokens=20)
    spec = SpecConfig(drafter="draft-model", k=4, drafter_options={"tree_nodes": nodes, "tree_branch": branch,
                                                                   "tree_width": width})
    total, trees = GenerationStats(), 0
    for p in random_prompts(10, seed=3):
        plain = [t for r in dec.stream_ids(p, stop=stop, spec=SpecConfig()) for t in r.tokens]
        st = GenerationStats()
        out = [t for r in dec.stream_ids(p, stop=stop, spec=spec, stats=st) for t in r.tokens]
        assert out == plain
        total.accepted += st.accepted
        total.drafted += st.drafted
        trees += sum(1 for n in st.extra.get("tree_size", []) if n > 4)  # more nodes than the depth cap: branches
    assert total.accepted > 0 and trees > 0


def test_tree_drafts_keep_speculative_sampling_lossless(tokenizer, target_model):
    """Deterministic children (q one-hot): the first two sampled tokens follow the target's own distribution."""
    from spec_helpers import chi2_pvalue

    target = target_model
    draft = close_draft(target, eps=0.3)
    dec = SpecDecoder(target, tokenizer, model_loader=lambda name: (draft, tokenizer), draft="d")
    prompt = torch.tensor([[3, 4, 5, 3, 4]])
    cfg = SamplingConfig(temperature=1.0)
    spec = SpecConfig(drafter="draft-model", k=3, drafter_options={"tree_nodes": 4, "tree_branch": 2, "tree_width": 2})
    stop = StopConfig(max_new_tokens=3, eos_token_ids=())
    V = target.config.vocab_size
    joint = torch.zeros(V, V)
    st = GenerationStats()
    for seed in range(1200):
        out = [t for r in dec.stream_ids(prompt, sampling=SamplingConfig(temperature=1.0, seed=seed), stop=stop,
                                         spec=spec, stats=st) for t in r.tokens]
        joint[out[0], out[1]] += 1
    with torch.no_grad():
        p1 = process_logits(target(prompt).logits[0, -1], cfg)
        seqs = torch.cat([prompt.expand(V, -1), torch.arange(V)[:, None]], dim=1)
        p2 = process_logits(target(seqs).logits[:, -1], cfg)
    exact = p1[:, None] * p2
    assert 0 < st.accepted < st.drafted
    assert chi2_pvalue(joint.flatten(), exact.flatten()) > 1e-3


def test_tree_options_are_checked_before_any_model():
    from specdec.drafters import DRAFTERS

    with pytest.raises(InputError, match="tree_branch >= 1"):
        DRAFTERS.check("draft-model", tree_nodes=4, tree_branch=0)

    with pytest.raises(InputError, match="sized=true sizes trees"):
        DRAFTERS.check("draft-model", sized=True)
    with pytest.raises(InputError, match="sized must be true or false"):
        DRAFTERS.check("draft-model", tree_nodes=8, sized="yes")


# ------------------------------------------------------------------ trees sized by the target's pass costs
# 3 ms a row beside a 100 ms pass: a first node pays above a 0.03 chance (this tiny draft's best paths: about 0.06)
DEAR = PassCosts((1, 65), (0.1, 0.1 + 64 * 0.003))
FLAT = PassCosts((1, 64), (0.1, 0.1))  # rows cost nothing beside the pass: every node pays


def sized_draft(close, costs, draft_costs=None) -> DraftModelDrafter:
    return DraftModelDrafter(TorchRunner(close, max_context=64), target_vocab=64, tree_nodes=12, tree_branch=3,
                             tree_width=4, costs=costs, draft_costs=draft_costs)


def test_sized_draft_trees_stop_deepening_where_the_draft_pass_does_not_pay(close):
    ids = torch.tensor([[5, 6, 7, 8]])
    depth = {}
    for name, draft_costs in (("none", None), ("cheap", PassCosts((1, 64), (1e-7, 1e-7))),
                              ("dear", PassCosts((1, 64), (0.1, 0.1)))):
        d = sized_draft(close, FLAT, draft_costs)  # the target's rows free: only the draft's passes decide
        d.start(ids)
        draft = d.propose(tree_ctx(ids))
        depth[name] = max(draft.tree.depths) + 1 if draft.length else 0
    assert depth["none"] == depth["cheap"] == 4  # the policy's k caps the depth
    assert depth["dear"] == 1  # a draft pass at the target's price: the first depth only (no second pass)


def tree_ctx(ids):
    return DraftContext(ids, 4, 12, ConstantPolicy(k=4), SamplingConfig(), policy_k=4)


def test_sized_draft_trees_keep_all_on_a_flat_curve_and_cut_on_a_steep_one(close):
    from specdec.runners.costs import PassCosts

    ids = torch.tensor([[5, 6, 7, 8]])
    sizes = {}
    for name, costs in (("none", None), ("flat", PassCosts((1, 64), (0.1, 0.1))),
                        ("dear", DEAR), ("rows", PassCosts((1, 64), (0.01, 0.64)))):
        d = sized_draft(close, costs)
        d.start(ids)
        draft = d.propose(tree_ctx(ids))
        sizes[name] = draft.length
        if draft.length:  # what is returned is a tree of the kept nodes, scores still path probabilities
            assert draft.scores.shape == (1, draft.length) and float(draft.scores.max()) <= 1
    assert sizes["flat"] == sizes["none"] == 12
    assert 0 < sizes["dear"] < 12 and sizes["rows"] == 0  # a pass that costs its rows: no node pays


def test_sized_draft_trees_learn_from_what_was_accepted(close):
    from specdec.drafters.base import VerifyResult

    ids = torch.tensor([[5, 6, 7, 8]])
    d = sized_draft(close, DEAR)
    d.start(ids)
    before = d.propose(tree_ctx(ids)).length
    for _ in range(40):  # every node rejected: the draft's path probabilities overstate its chances
        d.propose(tree_ctx(ids))
        d.observe(VerifyResult(tokens=torch.tensor([[1]]), num_accepted=0, draft_length=1, accepted_nodes=[],
                               bonus=False))
    assert d.propose(tree_ctx(ids)).length < before


@pytest.mark.parametrize("costs", ["flat", "measured"])
@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_sized_draft_trees_greedy_identical_to_plain(kind, costs, tokenizer, target_model, monkeypatch):
    """Identity on whatever curve this machine measures; drafts accepted on a flat curve (a measured one may
    cut every node on a busy machine: then nothing is drafted, still identical)."""
    from spec_helpers import make_model, pin_pass_costs, random_prompts

    if costs == "flat":
        pin_pass_costs(monkeypatch, FLAT)
    target = target_model if kind == "qwen2" else make_model("llama", seed=5, layers=2, sharp=8.0)
    draft = close_draft(target, eps=0.3)
    dec = SpecDecoder(target, tokenizer, model_loader=lambda name: (draft, tokenizer), draft="d")
    stop = StopConfig(max_new_tokens=20)
    spec = SpecConfig(drafter="draft-model", k=4, drafter_options={"tree_nodes": 12, "tree_branch": 3,
                                                                   "tree_width": 4, "sized": True})
    st = GenerationStats()
    for p in random_prompts(8, seed=3):
        plain = [t for r in dec.stream_ids(p, stop=stop, spec=SpecConfig()) for t in r.tokens]
        assert [t for r in dec.stream_ids(p, stop=stop, spec=spec, stats=st) for t in r.tokens] == plain
    if costs == "flat":
        assert st.accepted > 0
