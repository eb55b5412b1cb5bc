"""policies: constant, heuristic (+2/-1), confidence; the registry; no state leaking across generate() calls."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import spec_helpers  # noqa: F401  (imports specdec first: see test_import_policies_first)
from policies import POLICIES, DraftStep
from policies.simple import ConfidencePolicy, ConstantPolicy, HeuristicPolicy
from spec_helpers import close_draft
from specdec.api import SpecDecoder
from specdec.config import SamplingConfig, SpecConfig
from specdec.drafters.base import DraftContext
from specdec.drafters.draft_model import DraftModelDrafter
from specdec.runners.torch_runner import TorchRunner
from specdec.errors import InputError, UnknownNameError


def step(i=0, top=0.9, tok_p=None):
    return DraftStep(index=i, token=5, token_prob=top if tok_p is None else tok_p, top_prob=top)


# ------------------------------------------------------------------ constant
def test_constant():
    p = ConstantPolicy(k=5)
    p.start()
    for drafted, accepted in [(5, 0), (5, 5), (0, 0)]:
        assert p.max_draft() == 5 and p.keep_drafting(step(top=0.01))
        p.observe(drafted, accepted)
    assert p.max_draft() == 5


def _policies_with_k():
    from dataclasses import fields

    from policies import POLICIES

    return [n for n in POLICIES.names() if "k" in {f.name for f in fields(POLICIES.get(n))}]


@pytest.mark.parametrize("name", _policies_with_k())
@pytest.mark.parametrize("k", [0, -2, 2.5, True])
def test_k_below_one_or_not_whole_is_refused(name, k):
    """Every registered policy with a k refuses the same values in the same line (policies.base.check_k)."""
    from policies import POLICIES

    with pytest.raises(InputError, match="k must be >= 1"):
        POLICIES.get(name)(k=k)


def test_the_classic_policies_have_a_k():
    assert {"constant", "heuristic", "confidence", "cost"} <= set(_policies_with_k())


# ------------------------------------------------------------------ heuristic
@pytest.mark.parametrize("k_max", [-1, 0, 3])
def test_heuristic_refuses_a_cap_below_k(k_max):
    from specdec.errors import InputError

    with pytest.raises(InputError, match="k_max must be an integer >= k"):
        HeuristicPolicy(k=4, k_max=k_max)


def test_heuristic_plus_two_minus_one():
    p = HeuristicPolicy(k=4, k_max=16)
    p.start()
    seq = []
    for drafted, accepted in [(4, 4), (6, 6), (8, 3), (7, 0), (6, 6)]:
        seq.append(p.max_draft())
        p.observe(drafted, accepted)
    seq.append(p.max_draft())
    assert seq == [4, 6, 8, 7, 6, 8]


def test_heuristic_floor_cap_and_empty_rounds():
    p = HeuristicPolicy(k=2, k_max=5)
    p.start()
    for _ in range(4):
        p.observe(p.max_draft(), 0)
    assert p.max_draft() == 1  # never below 1
    p.observe(0, 0)  # an empty draft says nothing
    assert p.max_draft() == 1
    for _ in range(5):
        p.observe(p.max_draft(), p.max_draft())
    assert p.max_draft() == 5  # capped at k_max
    p.observe(3, 3)  # fewer than allowed (budget), all accepted: still +2, still capped
    assert p.max_draft() == 5


def test_heuristic_start_resets():
    p = HeuristicPolicy(k=3)
    p.start()
    p.observe(3, 3)
    p.observe(5, 5)
    assert p.max_draft() == 7
    p.start()
    assert p.max_draft() == 3


def test_heuristic_state_does_not_leak_across_generate_calls(target_model, tokenizer):
    """Two identical generate() calls (another one in between) draft the same lengths round by round."""
    dec = SpecDecoder(target_model, tokenizer, spec=SpecConfig(drafter="prompt-lookup", policy="heuristic", k=2))
    drafter = dec.drafter_for(dec.spec)
    seen = []
    orig = drafter.propose
    drafter.propose = lambda ctx: (seen.append(ctx.max_draft), orig(ctx))[1]
    runs = []
    for prompt in ["w1 w2 w3 w1 w2 w3 w1 w2", "w9 w8 w7 w9 w8 w7 w9", "w1 w2 w3 w1 w2 w3 w1 w2"]:
        seen.clear()
        res = dec.generate(prompt, chat=False, max_new_tokens=30)
        runs.append((res.token_ids, list(seen)))
    assert runs[0] == runs[2]
    assert runs[0][1][0] == 2  # starts from k
    assert max(runs[0][1]) > 2 and max(runs[1][1]) > 2  # it did adapt (else this test checks nothing)


# ------------------------------------------------------------------ confidence
def test_confidence_threshold():
    p = ConfidencePolicy(k=6, threshold=0.4)
    p.start()
    assert p.max_draft() == 6
    assert p.keep_drafting(step(top=0.9))
    assert p.keep_drafting(step(top=0.4))  # at the threshold: keep going
    assert not p.keep_drafting(step(top=0.39))
    assert p.keep_drafting(step(top=0.5, tok_p=0.01))  # the draft's top probability counts, not the token's


@pytest.mark.parametrize("t", [-0.1, 1.5])
def test_confidence_threshold_range(t):
    with pytest.raises(InputError, match="threshold"):
        ConfidencePolicy(threshold=t)


@torch.no_grad()
def test_confidence_stops_the_draft_model_at_the_threshold(target_model):
    """The draft stops right after the first token whose draft top-probability is below the threshold."""
    draft = close_draft(target_model, eps=0.3, seed=2)
    ids = torch.tensor([[44, 3, 29, 60]])
    # the draft's own greedy chain and its top probabilities, from HF directly
    chain, tops, seq = [], [], ids
    for _ in range(8):
        pr = draft(seq).logits[0, -1].softmax(-1)
        chain.append(int(pr.argmax()))
        tops.append(float(pr.max()))
        seq = torch.cat([seq, torch.tensor([[chain[-1]]])], 1)
    # a threshold that stops mid-way: between the first new low of the top probabilities and the ones before it
    m = next(i for i in range(3, 7) if tops[i] < min(tops[:i]))
    middle = (tops[m] + min(tops[:m])) / 2
    for threshold, stop_at in [(0.0, 7), (middle, m), (1.0, 0)]:  # the token at stop_at is still drafted
        d = DraftModelDrafter(TorchRunner(draft, max_context=64), target_vocab=64)
        d.start(ids)
        ctx = DraftContext(ids, ids.shape[1], 8, ConfidencePolicy(k=8, threshold=threshold), SamplingConfig())
        out = d.propose(ctx)
        assert out.tokens[0].tolist() == chain[: stop_at + 1]


# ------------------------------------------------------------------ registry
def test_registry_creates_by_name_with_options():
    assert isinstance(POLICIES.create("constant", k=3), ConstantPolicy)
    h = POLICIES.create("heuristic", k=2, k_max=9)
    assert (h.k, h.k_max) == (2, 9)
    assert {"constant", "heuristic", "confidence"} <= set(POLICIES.names())


def test_unknown_policy_lists_the_known_ones():
    with pytest.raises(UnknownNameError) as e:
        POLICIES.create("nope")
    msg = str(e.value)
    assert "nope" in msg
    for name in POLICIES.names():
        assert name in msg
    assert isinstance(e.value, KeyError)


def test_unknown_policy_through_the_api(target_model, tokenizer):
    dec = SpecDecoder(target_model, tokenizer)
    with pytest.raises(UnknownNameError, match="known: .*constant"):
        dec.generate("w1 w2", chat=False, max_new_tokens=2, policy="nope")


def test_import_policies_first():
    """`import policies` in a fresh interpreter, before anything from specdec, must work."""
    r = subprocess.run([sys.executable, "-c", "import policies; print(sorted(policies.POLICIES.names()))"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
