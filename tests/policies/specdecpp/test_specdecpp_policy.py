"""The specdecpp policy: the stop rule on hand-made acceptance probabilities, bounds, EOS, per-round reset,
Theorem 3.1's threshold, cost calibration and the guard."""
from __future__ import annotations

import pytest
import torch

from specdecpp_helpers import hidden_for, make_head_file

from policies import POLICIES
from policies.base import DraftStep
from policies.specdecpp.head import HeadMismatchError
from policies.specdecpp.policy import CostModel, SpecDecPPPolicy, optimal_threshold
from specdec.errors import InputError


def run_round(policy, probs, tokens=None, start_index=0):
    """Feed one round of steps with the given P(accept); returns how many tokens were drafted."""
    for i, p in enumerate(probs):
        tok = tokens[i] if tokens else 5
        step = DraftStep(index=start_index + i, token=tok, token_prob=0.5, top_prob=0.5, hidden=hidden_for(p))
        if not policy.keep_drafting(step):
            return start_index + i + 1
    return start_index + len(probs)


def test_registered_and_options_from_strings(probe_head):
    pol = POLICIES.create("specdecpp", head=probe_head, threshold="0.4", k_min="3", k_max="9", eos_ids="1,7")
    assert isinstance(pol, SpecDecPPPolicy) and pol.name == "specdecpp"
    assert pol.max_draft() == 9 and pol.k_min == 3 and pol._eos == {1, 7}
    assert pol.current_threshold == 0.4


def test_stops_when_rejection_probability_exceeds_threshold(probe_head):
    pol = SpecDecPPPolicy(head=probe_head, threshold=0.3)
    # 1 - 0.9^3 = 0.271 <= 0.3, 1 - 0.9^4 = 0.344 > 0.3: the 4th token is the last
    assert run_round(pol, [0.9] * 10) == 4
    pol.observe(4, 4)
    # the product restarts every round (index 0)
    assert run_round(pol, [0.9] * 10) == 4
    # a confident prefix then a doubtful token: 1 - 0.99*0.99*0.5 > 0.3 at the 3rd token
    assert run_round(pol, [0.99, 0.99, 0.5, 0.99]) == 3
    # exactly at the threshold does not stop (strictly greater)
    pol2 = SpecDecPPPolicy(head=probe_head, threshold=0.5, k_min=1)
    assert run_round(pol2, [0.5, 0.999]) == 2


def test_min_and_max_bounds(probe_head):
    pol = SpecDecPPPolicy(head=probe_head, threshold=0.3, k_min=2, k_max=20)
    assert run_round(pol, [0.01] * 5) == 2  # never before k_min tokens
    assert run_round(pol, [1.0] * 30) == 20  # never beyond k_max
    pol1 = SpecDecPPPolicy(head=probe_head, threshold=0.3, k_min=1)
    assert run_round(pol1, [0.01] * 5) == 1
    with pytest.raises(InputError):
        SpecDecPPPolicy(head=probe_head, k_min=5, k_max=3)
    with pytest.raises(InputError):
        SpecDecPPPolicy(head=probe_head, threshold=1.5)


def test_stops_at_eos(probe_head):
    pol = SpecDecPPPolicy(head=probe_head, threshold=0.9)  # eos_ids from the head file: [1]
    assert run_round(pol, [1.0] * 6, tokens=[5, 5, 1, 5, 5, 5]) == 3
    assert run_round(pol, [1.0] * 6, tokens=[1, 5, 5, 5, 5, 5]) == 1  # even before k_min
    pol2 = SpecDecPPPolicy(head=probe_head, threshold=0.9, eos_ids=[9])
    assert run_round(pol2, [1.0] * 6, tokens=[5, 1, 9, 5, 5, 5]) == 3


def test_state_resets_in_start_and_each_round(probe_head):
    pol = SpecDecPPPolicy(head=probe_head, threshold=0.3)
    # an abandoned round (the drafter hit its own limit) must not leak into the next one
    run_round(pol, [0.9, 0.9])
    assert run_round(pol, [0.9] * 10) == 4
    pol.observe(4, 2)
    pol.start()
    assert pol.history == [] and run_round(pol, [0.9] * 10) == 4


def test_threshold_formula_on_hand_made_costs():
    assert optimal_threshold(1.0, 3.0, 1.0) == pytest.approx(0.8)  # (3 + 1) / (1 + 3 + 1)
    assert optimal_threshold(1.0, 1.0) == pytest.approx(0.5)
    assert optimal_threshold(0.0, 2.0) == 1.0  # free drafting: never stop on risk
    assert optimal_threshold(2.0, 0.0, 0.0) == 0.0  # free verification: stop at once
    with pytest.raises(InputError):
        optimal_threshold(-1.0, 1.0)


def test_theorem_threshold_from_given_costs(probe_head):
    pol = SpecDecPPPolicy(head=probe_head, threshold="theorem", c1=0.05, c2=0.15, delta=0.05)
    assert pol.current_threshold == pytest.approx(0.2 / 0.25)
    # h = 0.8: 1 - 0.8^7 = 0.79, 1 - 0.8^8 = 0.83 -> 8 tokens
    assert run_round(pol, [0.8] * 20) == 8


def test_auto_threshold_from_costs_and_throughput(probe_head):
    from policies.specdecpp.policy import auto_threshold

    assert auto_threshold(0.05, 4.0) == pytest.approx(0.8)
    pol = SpecDecPPPolicy(head=probe_head, threshold="auto", c1=0.05, c2=0.15, delta=0.05)
    # no rounds timed yet: T = plain decoding's rate 1 / (c2 + delta) = 5 tok/s -> h = 1 - 0.05 * 5
    assert pol.current_threshold == pytest.approx(0.75)
    for _ in range(6):  # speculation runs at 4 tokens per 0.5 s = 8 tok/s -> h = 1 - 0.05 * 8 = 0.6
        pol._rate.add_round(4, 0.5)
    assert pol.current_threshold == pytest.approx(0.6)
    assert run_round(pol, [0.9] * 20) == 9  # 1 - 0.9^8 = 0.57, 1 - 0.9^9 = 0.61


def test_auto_threshold_from_a_costs_file(probe_head, tmp_path):
    import json

    f = tmp_path / "costs.json"
    f.write_text(json.dumps({"c1": 0.1, "c2": 0.1, "delta": 0.0}))
    pol = SpecDecPPPolicy(head=probe_head, threshold="theorem", costs=str(f))
    assert pol.current_threshold == pytest.approx(0.5)


def test_cost_model_fits_verify_time():
    cm = CostModel()
    for k in [0, 2, 4, 6, 8, 3, 5] * 3:
        cm.add_verify(k, 0.1 + 0.01 * k)
        cm.add_draft_step(0.03)
        cm.add_gap(0.035)
    c1, c2, delta = cm.costs()
    assert c2 == pytest.approx(0.1, rel=1e-6) and c1 == pytest.approx(0.04, rel=1e-6)
    assert delta == pytest.approx(0.005, rel=1e-3)


def test_online_calibration_measures_this_process(probe_head):
    import time

    pol = SpecDecPPPolicy(head=probe_head, threshold="auto")
    for r in range(8):
        pol.max_draft()
        for i in range(3):
            time.sleep(0.002)
            pol.keep_drafting(DraftStep(index=i, token=5, token_prob=0.5, top_prob=0.5, hidden=hidden_for(0.99)))
        time.sleep(0.01)
        pol.observe(3, 3)
    est = pol.cost_estimates()
    assert est["rounds_timed"] == 7 and est["c_draft"] >= 0.002 and est["c2"] is not None
    assert 0.05 <= est["threshold_in_use"] <= 0.98


def test_k_is_the_longest_draft_and_the_guard_is_the_engines(probe_head):
    """-k reaches specdecpp as k_max (it was silently ignored); falling back to plain decoding is the engine's
    guard for every policy, so the policy has no guard option of its own."""
    from specdec.config import SpecConfig
    from specdec.spec_check import build_policy, check_spec

    opts = {"head": probe_head, "threshold": 0.5}
    assert build_policy(SpecConfig(drafter="draft-model", policy="specdecpp", policy_options=opts)).max_draft() == 20
    assert build_policy(SpecConfig(drafter="draft-model", policy="specdecpp", k=7, policy_options=opts)).max_draft() == 7
    same = dict(opts, k_max=7)
    assert build_policy(SpecConfig(drafter="draft-model", policy="specdecpp", k=7, policy_options=same)).k_max == 7
    with pytest.raises(InputError, match="disagree"):
        build_policy(SpecConfig(drafter="draft-model", policy="specdecpp", k=7, policy_options=dict(opts, k_max=9)))
    with pytest.raises(InputError, match="need 1 <= k_min <= k_max"):  # -k 1 under the default k_min 2
        build_policy(SpecConfig(drafter="draft-model", policy="specdecpp", k=1, policy_options=opts))
    with pytest.raises(InputError, match="has no option guard"):
        check_spec(SpecConfig(drafter="draft-model", policy="specdecpp", policy_options=dict(opts, guard=True)))
    pol = SpecDecPPPolicy(head=probe_head, threshold=0.5, c1=0.1, c2=0.1, delta=0.0)
    for _ in range(12):  # rounds that accept nothing never switch drafting off inside the policy
        assert pol.max_draft() == 20
        pol.observe(run_round(pol, [0.99] * 3), 0)


def test_refuses_a_head_for_another_draft(tmp_path, draft_model):
    path = str(make_head_file(tmp_path / "h.safetensors", draft_model, name="tiny-draft"))
    SpecDecPPPolicy(head=path, draft="tiny-draft")
    with pytest.raises(HeadMismatchError):
        SpecDecPPPolicy(head=path, draft="qwen2.5-coder-0.5b-instruct")
    pol = SpecDecPPPolicy(head=path, threshold=0.5)
    with pytest.raises(HeadMismatchError, match="hidden size"):  # a draft with another hidden size
        pol.keep_drafting(DraftStep(index=0, token=5, token_prob=0.5, top_prob=0.5, hidden=torch.zeros(1, 48)))
    with pytest.raises(InputError, match="no bundled acceptance head"):
        SpecDecPPPolicy(draft="some-other-draft")


def test_deweighting_undoes_the_reject_weight(tmp_path):
    from policies.specdecpp.head import deweight
    from specdecpp_helpers import probe_head_file

    y = torch.tensor([0.05, 0.5, 0.9, 0.99])
    p_w = y / (y + 6 * (1 - y))  # where the weighted loss puts its optimum
    assert torch.allclose(deweight(p_w, 6.0), y, atol=1e-6)
    assert deweight(0.3, None) == 0.3 and deweight(0.3, 1.0) == 0.3
    # the policy multiplies de-weighted probabilities when the head records its reject weight
    from policies.specdecpp.head import load_head, save_head

    path = probe_head_file(tmp_path / "p.safetensors")
    hf = load_head(path)
    save_head(tmp_path / "w.safetensors", hf.head, hf.identity, {"reject_weight": 6.0}, dtype=torch.float32)
    pol = SpecDecPPPolicy(head=str(tmp_path / "w.safetensors"), threshold=0.3)
    raw = 0.9 / (0.9 + 6 * 0.1)  # = 0.6 raw, 0.9 de-weighted: stops after 4 tokens like P = 0.9
    assert run_round(pol, [raw] * 10) == 4
    pol_raw = SpecDecPPPolicy(head=str(tmp_path / "w.safetensors"), threshold=0.3, calibrate=False)
    assert run_round(pol_raw, [raw] * 10) == 2  # 1 - 0.6 > 0.3 at once; k_min = 2


def test_conf_variant_feeds_the_drafts_confidence_to_the_head(tmp_path):
    # a 2-input probe head (hidden size 1 + the extra feature) whose logit is the extra feature, log max q
    from policies.specdecpp.head import AcceptanceHead, save_head
    from policies.specdecpp.policy import SpecDecPPConfPolicy

    head = AcceptanceHead(2, 0)
    with torch.no_grad():
        head.out.weight.zero_()
        head.out.bias.zero_()
        head.out.weight[1, 1] = 1.0
    ident = {"name": "probe", "model_type": "qwen2", "hidden_size": 1, "num_hidden_layers": 2, "vocab_size": 64,
             "fingerprint": "0" * 16}
    path = save_head(tmp_path / "conf.safetensors", head, ident, {"eos_token_ids": [1], "extra_features": ["top_logprob"]},
                     dtype=torch.float32)
    pol = SpecDecPPConfPolicy(head=str(path), threshold=0.5)
    assert POLICIES.create("specdecpp-conf", head=str(path)).name == "specdecpp-conf"
    p_sure = pol.accept_prob(torch.zeros(1, 1), top_prob=0.999)  # sigmoid(log 0.999) ~ 0.4998
    p_doubt = pol.accept_prob(torch.zeros(1, 1), top_prob=0.01)  # sigmoid(log 0.01) ~ 0.0099
    assert p_sure == pytest.approx(0.999 / 1.999, rel=1e-4) and p_doubt == pytest.approx(0.01 / 1.01, rel=1e-4)


def test_max_draft_has_no_side_effects_and_observe_takes_the_loops_verify_time(probe_head):
    """The loop may call max_draft() any number of times; the verify cost comes from observe(..., verify_s)."""
    pol = SpecDecPPPolicy(head=probe_head, threshold=0.3)
    before = dict(vars(pol))
    for _ in range(3):
        pol.max_draft()
    assert vars(pol) == before
    pol.observe(0, 0, 0.5)  # the first round is never timed (warm-up)
    pol.observe(0, 0, 0.25)
    pol.observe(3, 2, 0.125)
    assert list(pol._costs.verifies) == [(0, 0.25), (3, 0.125)]
