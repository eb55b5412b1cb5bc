"""specdec.stats.GenerationStats as filled by the loop: counts on a scripted drafter with known acceptances."""
from __future__ import annotations

import pytest
import torch

from spec_helpers import ScriptedDrafter, hf_greedy, oracle_script  # isort: skip
from policies.simple import ConstantPolicy
from specdec.config import SamplingConfig
from specdec.engine.loop import decode
from specdec.runners.torch_runner import TorchRunner
from specdec.engine.stopping import StopChecker
from specdec.stats import GenerationStats

PROMPT = torch.tensor([[12, 40, 7, 33, 21]])
# (correct tokens, drafted tokens) per round; the rest of each draft is wrong
SCRIPT = [(3, 3), (1, 3), (0, 2), (0, 0), (2, 2)]
MAX_NEW = 4 + 2 + 1 + 1 + 3  # each round commits correct + 1


@pytest.fixture(scope="module")
def scripted(target_model):
    truth = hf_greedy(target_model, PROMPT, MAX_NEW)
    d = ScriptedDrafter(oracle_script(truth, PROMPT.shape[1], wrong_after=SCRIPT))
    st = GenerationStats()
    rounds = list(decode(TorchRunner(target_model, max_context=64), PROMPT, StopChecker(MAX_NEW, set()),
                         SamplingConfig(), d, ConstantPolicy(k=3), st))
    return truth, rounds, st


def test_scripted_rounds_commit_what_was_scripted(scripted):
    truth, rounds, st = scripted
    assert [t for r in rounds for t in r.tokens] == truth
    assert [r.num_accepted for r in rounds] == [3, 1, 0, 0, 2]
    assert [len(r.tokens) for r in rounds] == [4, 2, 1, 1, 3]


def test_counts(scripted):
    _, _, st = scripted
    assert st.prompt_tokens == 5
    assert st.new_tokens == 11
    assert st.rounds == 5
    assert st.target_calls == 6  # prefill + one verification per round
    assert st.draft_calls == 5  # one proposal per round (the empty one included)
    assert st.drafted == 3 + 3 + 2 + 0 + 2
    assert st.accepted == 3 + 1 + 0 + 0 + 2
    assert st.stop_reason == "max_new_tokens"


def test_rates(scripted):
    _, _, st = scripted
    assert st.acceptance_rate == pytest.approx(6 / 10)  # alpha
    assert st.mean_accepted_length == pytest.approx(11 / 5)  # tau counts the bonus / recovered token
    assert st.mean_accepted_drafts == pytest.approx(6 / 5)


def test_per_position(scripted):
    _, _, st = scripted
    # depth 0 reached in the 4 non-empty rounds, accepted in rounds 1, 2, 5; depth 1 reached in 1, 2, 5,
    # accepted in 1, 5; depth 2 reached and accepted in round 1 only
    assert st.per_position == [[4, 3], [3, 2], [1, 1]]
    assert st.to_dict()["per_position_acceptance"] == pytest.approx([3 / 4, 2 / 3, 1.0])
    assert st.draft_lengths == {3: 2, 2: 2, 0: 1}  # where each round stopped drafting


def test_to_dict_and_summary(scripted):
    _, _, st = scripted
    d = st.to_dict()
    assert d["mean_accepted_length_counts_bonus"] is True
    assert d["acceptance_rate"] == pytest.approx(0.6) and d["mean_accepted_length"] == pytest.approx(2.2)
    assert d["drafted"] == 10 and d["new_tokens"] == 11
    s = st.summary()
    assert "11 tokens" in s and "alpha 0.60" in s and "tau 2.20" in s
    assert st.total_s >= st.verify_s > 0 and st.compile_s == 0.0


def test_plain_decoding_has_tau_one(target_model):
    st = GenerationStats()
    list(decode(TorchRunner(target_model, max_context=64), PROMPT, StopChecker(9, set()), SamplingConfig(), None,
                ConstantPolicy(k=3), st))
    assert st.new_tokens == st.rounds == 9
    assert st.mean_accepted_length == 1.0
    assert st.acceptance_rate == 0.0 and st.drafted == 0 and st.draft_calls == 0
    assert st.per_position == []
    assert st.target_calls == 10
    assert "alpha" not in st.summary()


def test_record_round_by_hand():
    st = GenerationStats()
    st.record_round(4, 4)  # chain, all accepted
    st.record_round(4, 1)  # chain, depth 1 rejected
    st.record_round(7, 2, depth=3)  # tree of 7 nodes and depth 3, 2 levels accepted, then rejected
    st.record_round(0, 0)  # empty draft
    assert st.per_position == [[3, 3], [3, 2], [2, 1], [1, 1]]
    assert st.draft_lengths == {4: 2, 7: 1, 0: 1}
    assert (st.rounds, st.target_calls, st.drafted, st.accepted) == (4, 4, 15, 7)
    st.new_tokens = 10  # set by the loop after stop conditions: tau uses the tokens kept
    assert st.mean_accepted_length == pytest.approx(10 / 4)
    assert st.mean_accepted_drafts == pytest.approx(7 / 4)


def test_empty_stats_do_not_divide_by_zero():
    st = GenerationStats()
    assert st.acceptance_rate == st.mean_accepted_length == st.mean_accepted_drafts == st.tokens_per_s == 0.0
    assert st.draft_share == 0.0


def test_prompt_row_is_the_one_bench_row_for_every_backend():
    from specdec.stats import prompt_row

    st = GenerationStats(new_tokens=12, total_s=2.5, compile_s=0.5, drafted=10, accepted=6, rounds=6, target_calls=7,
                         stop_reason="max_new_tokens")
    st.draft_lengths = {4: 2, 2: 1}
    row = prompt_row(st)
    assert (row["tokens"], row["seconds"], row["tokens_per_s"]) == (12, 2.0, 6.0)  # compile excluded
    assert row["acceptance_rate"] == 0.6 and row["mean_accepted_length"] == 2.0 and row["rounds"] == 6
    assert row["draft_lengths"] == {"2": 1, "4": 2}
    assert row["draft_passes"] is None  # no draft model: nothing to count
    st.extra["draft_passes"] = [3, 1, 4]  # per round, from the draft-model drafter's Draft.info
    assert prompt_row(st)["draft_passes"] == 8
    hf = prompt_row(GenerationStats(new_tokens=8, total_s=1.0, target_calls=4), counted=False, extra_key=1)
    assert hf["drafted"] is None and hf["rounds"] is None and hf["acceptance_rate"] is None
    assert hf["mean_accepted_length"] == 2.0 and hf["extra_key"] == 1  # tokens per target forward
    assert prompt_row(GenerationStats(new_tokens=3))["tokens_per_s"] == 0.0  # no time measured: no speed
