"""specdec.backends.vllm_proposers without vLLM: a scheduler that calls `propose` as vLLM's model runner does
(one call per step for the whole batch, rows reused by new requests and moved when the batch is condensed), and a
greedy verifier. The proposals must be exactly the drafts this engine's drafter makes for the same request."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from specdec.budget import BudgetConfig
from specdec.backends.vllm_proposers import (OPTIONS_ENV, PROPOSER_ENV, AdedProposer, budget_config, PromptLookupProposer, SuffixProposer,
                                             class_path, drafter_options)
from specdec.errors import InputError

V = 50
K = 4


def target_next(seq: list[int]) -> int:
    """A deterministic 'greedy target' whose text repeats with variations (drafts are partly accepted)."""
    n = len(seq)
    return (seq[-1] + 1) % 7 + 7 * ((n // 11) % 3) if n % 5 else (seq[-2] * 3 + 1) % V


def plain(prompt: list[int], n: int) -> list[int]:
    seq = list(prompt)
    for _ in range(n):
        seq.append(target_next(seq))
    return seq[len(prompt):]


def serve(proposer, prompts: list[list[int]], new_tokens: int, rows: int, condense_at: int | None = None):
    """Run `prompts` through `rows` batch rows, vLLM-style. Returns (outputs, drafts made per request)."""
    width = max(map(len, prompts)) + new_tokens + K + 2
    token_ids = np.zeros((rows, width), dtype=np.int32)
    num = np.zeros(rows, dtype=np.int32)
    slot: list[int | None] = [None] * rows  # request index in each row
    sampled: list[list[int]] = [[] for _ in range(rows)]
    drafts: list[list[int]] = [[] for _ in range(rows)]
    out = {i: [] for i in range(len(prompts))}
    proposals = {i: [] for i in range(len(prompts))}
    waiting = list(range(len(prompts)))
    step = 0
    while waiting or any(s is not None for s in slot):
        for r in range(rows):  # admit: prefill writes the prompt and samples the first token
            if slot[r] is None and waiting:
                i = waiting.pop(0)
                p = prompts[i]
                token_ids[r, :len(p)] = p
                first = target_next(p)
                token_ids[r, len(p)] = first
                num[r], slot[r], sampled[r], drafts[r] = len(p) + 1, i, [first], []
                out[i] = [first]
        proposed = proposer.propose(sampled, num, token_ids)
        for r in range(rows):
            i = slot[r]
            if i is None:
                continue
            proposals[i].append(list(proposed[r]))
            seq = token_ids[r, :num[r]].tolist()
            committed = []
            for t in proposed[r]:  # greedy verification
                want = target_next(seq + committed)
                if t != want:
                    break
                committed.append(t)
            committed.append(target_next(seq + committed))
            committed = committed[: new_tokens - len(out[i])]
            token_ids[r, num[r]:num[r] + len(committed)] = committed
            num[r] += len(committed)
            out[i] += committed
            sampled[r] = committed
            if len(out[i]) >= new_tokens:
                slot[r], sampled[r] = None, []
        step += 1
        if condense_at is not None and step == condense_at:  # vLLM condenses: rows swap places
            order = list(range(rows))[::-1]
            token_ids, num = token_ids[order].copy(), num[order].copy()
            slot, sampled = [slot[o] for o in order], [sampled[o] for o in order]
    return out, proposals


def engine_drafts(drafter_name: str, prompt: list[int], n: int, **options) -> list[list[int]]:
    """The drafts this engine's drafter makes when the greedy verifier above runs one request alone."""
    from policies import POLICIES
    from specdec.config import SamplingConfig
    from specdec.drafters import DRAFTERS, DrafterEnv
    from specdec.drafters.base import DraftContext, VerifyResult

    env = DrafterEnv(target_tokenizer=None, target_runner=type("R", (), {"vocab_size": V})(), load_model=None)
    d = DRAFTERS.create(drafter_name, env=env, **options)
    seq = list(prompt) + [target_next(prompt)]
    d.start(torch.tensor([seq]))
    made = []
    while len(seq) - len(prompt) < n:
        ctx = DraftContext(tokens=torch.tensor([seq]), prompt_len=len(prompt), max_draft=K,
                           policy=POLICIES.create("constant", k=K), sampling=SamplingConfig(), policy_k=K)
        draft = d.propose(ctx).tokens[0, :K].tolist()
        made.append(draft)
        committed = []
        for t in draft:
            if t != target_next(seq + committed):
                break
            committed.append(t)
        committed.append(target_next(seq + committed))
        committed = committed[: n - (len(seq) - len(prompt))]
        seq += committed
        d.observe(VerifyResult(tokens=torch.tensor([committed]), num_accepted=len(committed) - 1,
                               draft_length=len(draft), accepted_nodes=list(range(len(committed) - 1)), bonus=True))
    return made


PROMPTS = [[1, 2, 3, 1, 2, 3, 4], [5, 6, 7, 8, 5, 6], [9, 1, 9, 1, 9], [2, 4, 6, 8, 2, 4, 6, 8, 3]]


@pytest.mark.parametrize("cls,name,options", [(AdedProposer, "aded", {"store": "empty"}),
                                              (PromptLookupProposer, "prompt-lookup", {}),
                                              (SuffixProposer, "suffix", {})])
@pytest.mark.parametrize("rows,condense", [(1, None), (2, None), (3, 4)])
def test_proposals_are_this_engines_drafts_per_request_whatever_the_batch(cls, name, options, rows, condense):
    prop = cls(k=K, tokenizer=None, vocab_size=V, options=options, budget=BudgetConfig(budget="off"))
    out, proposals = serve(prop, PROMPTS, 24, rows, condense_at=condense)
    for i, p in enumerate(PROMPTS):
        assert out[i] == plain(p, 24)  # greedy: vLLM's verification keeps the target's output
        engine_opts = {**prop.default_options, **options, **prop.fixed_options}
        assert proposals[i] == engine_drafts(name, p, 24, **engine_opts), (name, i)
    assert prop.requests == len(PROMPTS)  # rows reused and moved: no request mistaken for another
    assert any(len(x) for per in proposals.values() for x in per)  # it did draft


def test_aded_adapts_per_request_over_one_shared_base():
    prop = AdedProposer(k=K, tokenizer=None, vocab_size=V, options={"store": "empty"})
    serve(prop, PROMPTS[:2], 16, 2)
    stores = [s.drafter.store for s in prop._states.values()]
    assert len(stores) == 2 and stores[0].live is not stores[1].live  # each request its own overlay
    assert stores[0].keys is stores[1].keys  # the base arrays are shared, not copied
    assert prop._prototype.store.live == {}  # the shared base never adapts


def test_options_from_the_environment_checked_before_anything_runs(monkeypatch):
    assert drafter_options({}) == {}
    assert drafter_options({OPTIONS_ENV: '{"max_ngram": 4}'}) == {"max_ngram": 4}
    with pytest.raises(InputError, match="is not JSON"):
        drafter_options({OPTIONS_ENV: "max_ngram=4"})
    with pytest.raises(InputError, match="JSON object"):
        drafter_options({OPTIONS_ENV: "[1]"})
    monkeypatch.setenv(OPTIONS_ENV, '{"max_ngram": 0}')
    with pytest.raises(InputError, match="min_ngram <= max_ngram"):
        PromptLookupProposer(k=K, tokenizer=None, vocab_size=V)
    monkeypatch.setenv(OPTIONS_ENV, '{"nodes": "many"}')
    with pytest.raises(InputError):
        AdedProposer(k=K, tokenizer=None, vocab_size=V)
    with pytest.raises(InputError, match="num_speculative_tokens"):
        PromptLookupProposer(k=0, tokenizer=None, vocab_size=V, options={})


def test_class_paths_name_importable_proposers():
    import importlib

    for drafter in ("aded", "prompt-lookup", "suffix"):
        mod, _, cls = class_path(drafter).rpartition(".")
        assert hasattr(importlib.import_module(mod), cls)
    with pytest.raises(InputError, match="has no vLLM proposer"):
        class_path("draft-model")


def test_drafters_with_per_generation_model_state_refuse_to_fork():
    from specdec.drafters.base import DrafterBase

    with pytest.raises(InputError, match="one generation at a time"):
        DrafterBase().fork()


class StepClock:
    """A clock that a step of `rows` rows moves by base + per_row * rows (the proposer times its own steps)."""

    def __init__(self, base: float, per_row: float) -> None:
        self.now, self.base, self.per_row = 0.0, base, per_row

    def __call__(self) -> float:
        return self.now


def timed_serve(prop, clock: StepClock, prompts, new_tokens: int, rows: int):
    """serve(), with the clock moved before each call by the cost of the pass the previous proposals made."""
    last: list[list[int]] = []
    inner = prop.propose

    def propose(sampled, num, token_ids):
        clock.now += clock.base + clock.per_row * sum(1 + len(x) for x, s in zip(last, sampled) if s)
        last[:] = inner(sampled, num, token_ids)
        return last

    prop.propose = propose
    return serve(prop, prompts, new_tokens, rows)


def kept_per_step(prop, drafted_at: dict[int, int] | None = None) -> dict[int, int]:
    """Tokens `prop` keeps at each step (filled as it runs; `drafted_at`: the tokens its drafters drafted)."""
    kept_at: dict[int, int] = {}
    inner = prop.propose

    def propose(sampled, num, token_ids):
        before, drafted, step = prop.kept, prop.drafted, prop.steps
        out = inner(sampled, num, token_ids)
        kept_at[step] = prop.kept - before
        if drafted_at is not None:
            drafted_at[step] = prop.drafted - drafted
        return out

    prop.propose = propose
    return kept_at


@pytest.mark.parametrize("cls,options", [(AdedProposer, {"store": "empty"}), (PromptLookupProposer, {})])
def test_the_batch_budget_cuts_drafts_only_where_rows_are_dear_and_output_stays_the_same(cls, options):
    prompts = PROMPTS * 3
    cheap, dear = StepClock(0.1, 0.0), StepClock(0.0, 0.01)  # rows free beside the step / a step is its rows
    for name, clock in (("cheap", cheap), ("dear", dear)):
        prop = cls(k=K, tokenizer=None, vocab_size=V, options=options, budget=BudgetConfig(warmup=4, explore=0),
                   clock=clock)
        drafted_at: dict[int, int] = {}
        kept_at = kept_per_step(prop, drafted_at)
        out, _ = timed_serve(prop, clock, prompts, 24, 4)
        assert all(out[i] == plain(p, 24) for i, p in enumerate(prompts))  # lossless whatever is cut
        assert prop.costs.known and prop.drafted > 0
        # the warm-up: every other step keeps max(2, rows // 8) = 2 tokens, the others none
        assert all(kept_at[s] <= (2 if s % 2 == 0 else 0) for s in range(4))
        late = [s for s in kept_at if s >= 12]  # past the warm-up (4 clean steps) and the first fit
        if name == "cheap":  # a flat cost curve: every drafted token is verified
            assert sum(kept_at[s] for s in late) == sum(drafted_at[s] for s in late) > 0
        else:  # a step that costs its rows: a draft token pays only if p > T' n / T = 1: none past the warm-up
            assert sum(kept_at.values()) > 0 and sum(kept_at[s] for s in late) == 0


def test_exploring_steps_keep_a_few_tokens_past_the_rule_so_the_slope_stays_measured():
    clock = StepClock(0.0, 0.01)  # a step costs its rows: nothing pays after the warm-up
    prop = PromptLookupProposer(k=K, tokenizer=None, vocab_size=V, budget=BudgetConfig(warmup=4, explore=4),
                                clock=clock)
    kept_at = kept_per_step(prop)
    out, _ = timed_serve(prop, clock, PROMPTS * 3, 24, 4)
    assert all(out[i] == plain(p, 24) for i, p in enumerate(PROMPTS * 3))
    late = {s: n for s, n in kept_at.items() if s >= 8}  # past the warm-up (and the first fit)
    assert any(late.values()) and all(n == 0 for s, n in late.items() if s % 4)  # only on exploring steps ...
    assert max(late.values()) <= 2  # ... and only max(2, rows // 8) of them
    assert prop.costs.line(4)[1] == pytest.approx(0.01)  # the slope is still the true one


def test_budget_options_from_the_environment():
    assert budget_config({}) == BudgetConfig()
    assert budget_config({PROPOSER_ENV: '{"budget": "off"}'}).budget == "off"
    for bad in ('{"budget": "sometimes"}', '{"bugdet": "off"}', "[1]", "{"):
        with pytest.raises(InputError):
            budget_config({PROPOSER_ENV: bad})


def test_no_search_at_all_while_no_token_can_pay():
    clock = StepClock(0.0, 0.01)  # a step costs its rows: a first node needs p >= 1
    prop = AdedProposer(k=K, tokenizer=None, vocab_size=V, options={"store": "empty"},
                        budget=BudgetConfig(warmup=4), clock=clock)
    searched = []
    inner = prop._draft
    prop._draft = lambda req, seq: searched.append(1) or inner(req, seq)
    out, proposals = timed_serve(prop, clock, PROMPTS * 2, 24, 4)
    assert all(out[i] == plain(p, 24) for i, p in enumerate(PROMPTS * 2))
    steps = sum(len(p) for p in proposals.values())
    assert prop.costs.known and 0 < len(searched) < steps / 2  # searches stop once the costs are known
    assert all(x == [] for p in proposals.values() for x in p[-5:])


def test_a_request_searches_only_when_its_drafters_bound_can_pay():
    prop = AdedProposer(k=K, tokenizer=None, vocab_size=V, options={"store": "empty"})
    prompt = [1, 2, 3, 1, 2, 4, 1, 2, 3]  # after (1, 2): 3 twice, 4 once -> bound 2/3 of the weight
    req, _ = prop._request_for(np.array(prompt + [1, 2]), [2])
    seq = np.array(prompt + [1, 2])
    bound = req.drafter.score_bound(torch.from_numpy(seq)[None])
    assert bound == pytest.approx(2 / 3, abs=0.05)
    assert prop._worth(req, seq, None)  # no threshold yet: search
    assert prop._worth(req, seq, 0.3) and not prop._worth(req, seq, 0.9)  # calibrated from the prior: about 2/3
    assert not prop._worth(req, np.array(prompt + [7, 8]), 0.01)  # nothing known after (7, 8): no search
