"""specdec.backends.vllm_replay: batched greedy decoding against reference outputs with a step-cost clock."""
from __future__ import annotations

import pytest

from specdec.backends.vllm_proposers import PromptLookupProposer
from specdec.backends.vllm_replay import StepModel, replay
from specdec.budget import BudgetConfig
from specdec.errors import InputError

PROMPTS = [[1, 2, 3, 4, 5, 6, 1, 2, 3], [7, 8, 9, 7, 8, 9, 7], [10, 11, 12, 13]]
REFS = [[4, 5, 6, 1, 2, 3, 4, 5, 6, 1], [8, 9, 7, 8, 9, 7, 8, 9], [14, 15, 16, 17, 18]]
QUIET = StepModel(base=0.1, per_row=0.01, per_context=0.0, noise=0.0, prefill=0.0)


class Oracle:
    """Proposes the reference's next k tokens: every drafted token is accepted."""

    def __init__(self, refs, prompts, k=3):
        self.refs, self.prompts, self.k = refs, prompts, k

    def propose(self, sampled, num, token_ids):
        out = []
        for r, s in enumerate(sampled):
            if not s:
                out.append([])
                continue
            row = token_ids[r, :num[r]].tolist()
            i = next(j for j, p in enumerate(self.prompts) if row[:len(p)] == p)
            done = len(row) - len(self.prompts[i])
            out.append(self.refs[i][done:done + self.k])
        return out


def test_plain_replay_commits_one_token_a_request_a_step():
    r = replay(None, PROMPTS, REFS, batch=1, model=QUIET)
    # each request's first token comes from its prefill, then one token a decoding step
    assert r.tokens == sum(map(len, REFS)) and r.steps == r.tokens - len(REFS) and r.drafted == 0
    assert r.seconds == pytest.approx(r.steps * 0.11)  # one row a step
    wide = replay(None, PROMPTS, REFS, batch=3, model=QUIET)
    assert wide.steps == max(map(len, REFS)) - 1 and wide.tokens_per_second > r.tokens_per_second


def test_accepted_tokens_follow_the_reference_and_cut_the_steps():
    r = replay(Oracle(REFS, PROMPTS), PROMPTS, REFS, batch=2, model=QUIET)
    assert r.accepted == r.drafted > 0 and r.steps < replay(None, PROMPTS, REFS, batch=2, model=QUIET).steps
    assert r.tokens == sum(map(len, REFS))


def test_a_proposer_learns_its_costs_on_the_replay_clock():
    steep = StepModel(base=0.0001, per_row=0.01, per_context=0.0, noise=0.0, prefill=0.0)  # a step costs its rows
    prompts = [[40 + i] + PROMPTS[i % 3] for i in range(36)]  # distinct requests (states are found by tokens)
    refs = [REFS[i % 3] for i in range(36)]
    runs = {}
    for budget in ("off", "auto"):
        prop = PromptLookupProposer(k=4, tokenizer=None, vocab_size=80, budget=BudgetConfig(budget=budget, warmup=4))
        runs[budget] = replay(prop, prompts, refs, batch=4, model=steep)
        assert runs[budget].accepted <= runs[budget].drafted
    assert prop.costs.known and runs["auto"].drafted < runs["off"].drafted  # the budget cut what does not pay


def test_bad_input_is_one_line():
    with pytest.raises(InputError, match="one reference per prompt"):
        replay(None, PROMPTS, REFS[:2], batch=2)
    with pytest.raises(InputError, match="at least one token"):
        replay(None, PROMPTS[:1], [[]], batch=1)
    with pytest.raises(InputError, match="base > 0"):
        StepModel(base=0)
