"""policies/cost.py: draft while the next token pays on the measured costs; its calibration; its checks."""
from __future__ import annotations

import pytest

import spec_helpers  # noqa: F401  (imports specdec first)
from policies import POLICIES, DraftStep, RoundCosts
from policies.cost import CostPolicy
from specdec.errors import InputError


def step(i, top):
    return DraftStep(index=i, token=5, token_prob=top, top_prob=top)


def costs(step_s=0.030, row_s=0.005, draft_s=0.010):
    """A 1-row pass `step_s`, each further row `row_s`, a drafted token `draft_s`."""
    return RoundCosts(verify=lambda n: step_s + row_s * (n - 1), draft_token=draft_s)


def drafted_until_stop(policy, tops):
    """How many tokens a chain drafts before the policy stops it (the stopping token is still drafted)."""
    for i, top in enumerate(tops):
        if not policy.keep_drafting(step(i, top)):
            return i + 1
    return len(tops)


def test_stops_where_the_next_token_no_longer_pays():
    # step 30 ms, a row 5 ms, a draft token 10 ms: a token pays iff its chance > 0.5; with every confidence 0.9
    # the chance of token i + 1 is 0.9 ** (i + 2): 0.81, 0.73, 0.66, 0.59, 0.53 pay, 0.48 (i = 5) does not
    p = CostPolicy(k=16)
    p.start(costs())
    assert drafted_until_stop(p, [0.9] * 16) == 6


def test_cheap_rows_and_drafts_draft_longer_dear_ones_shorter():
    tops = [0.9] * 16
    free = CostPolicy(k=16)
    free.start(costs(row_s=0.0, draft_s=0.0))
    assert drafted_until_stop(free, tops) == 16  # nothing costs: every token with any chance pays
    dear = CostPolicy(k=16)
    dear.start(costs(draft_s=0.030))  # a drafted token costs a plain step: none can pay
    assert drafted_until_stop(dear, tops) == 1
    mid = CostPolicy(k=16)
    mid.start(costs(row_s=0.001, draft_s=0.005))  # break-even chance 0.2
    assert 6 < drafted_until_stop(mid, tops) < 16


def test_a_low_confidence_token_stops_the_chain_at_once():
    p = CostPolicy(k=16)
    p.start(costs())
    assert drafted_until_stop(p, [0.95, 0.95, 0.3, 0.95, 0.95]) == 3


def test_calibration_follows_what_was_accepted():
    tops = [0.9] * 16
    p = CostPolicy(k=16, prior=1.0)
    p.start(costs())
    base = drafted_until_stop(p, tops)
    p.observe(base, 0)  # everything rejected: the draft is less right than its confidence says
    assert p.calibration < 1.0
    assert drafted_until_stop(p, tops) < base
    p.observe(1, 0)
    for _ in range(30):  # then long runs accepted beyond what was predicted
        n = drafted_until_stop(p, tops)
        p.observe(n, n)
    assert p.calibration > 1.0
    assert drafted_until_stop(p, tops) > base


def test_a_round_drafted_without_asking_teaches_nothing():
    p = CostPolicy(k=8)
    p.start(costs())
    p.observe(5, 0)  # a copy from the context: keep_drafting never saw its tokens
    assert p.calibration == 1.0


def test_the_last_token_drafted_at_k_counts_in_the_calibration():
    p = CostPolicy(k=3, prior=1.0)
    p.start(costs(row_s=0.0, draft_s=0.0))
    for i in range(2):  # the drafter asks after tokens 0 and 1; token 2 reaches k and is never shown
        assert p.keep_drafting(step(i, 0.5))
    p.observe(3, 3)  # predicted 0.5 + 0.25 + 0.25 (the last one's product repeated), accepted 3
    assert p.calibration == pytest.approx((1 + 3) / (1 + 1.0))


def test_without_measured_costs_the_fallback_chance_decides():
    p = CostPolicy(k=16, fallback=0.5)
    p.start(None)
    assert drafted_until_stop(p, [0.9] * 16) == 6  # the same break-even chance as the first test's costs


def test_start_forgets_the_last_generation():
    p = CostPolicy(k=16, prior=1.0)
    p.start(costs())
    p.keep_drafting(step(0, 0.9))
    p.observe(1, 0)
    p.start(costs())
    assert p.calibration == 1.0 and p.max_draft() == 16


@pytest.mark.parametrize("opts,match", [({"k": 0}, "k must be >= 1"), ({"prior": 0}, "prior must be > 0"),
                                        ({"fallback": 0.0}, r"fallback must be in \(0, 1\]"),
                                        ({"fallback": 1.5}, r"fallback must be in \(0, 1\]")])
def test_bad_options_are_refused(opts, match):
    with pytest.raises(InputError, match=match):
        POLICIES.create("cost", **opts)
