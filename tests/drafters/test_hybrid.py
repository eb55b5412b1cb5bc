"""The hybrid drafter: context copies when an n-gram repeats, the draft model otherwise, lossless."""
from __future__ import annotations

import pytest
import torch

from spec_helpers import close_draft, random_prompts
from specdec.api import SpecDecoder
from specdec.config import SpecConfig, StopConfig
from specdec.drafters.base import DraftContext
from specdec.config import SamplingConfig
from policies.simple import ConstantPolicy
from specdec.stats import GenerationStats


def _dec(target_model, tokenizer, **opts):
    close = close_draft(target_model, eps=0.15)
    spec = SpecConfig(drafter="hybrid", k=4, guard=False, drafter_options=opts)
    return SpecDecoder(target_model, tokenizer, spec=spec, model_loader=lambda name: (close, tokenizer), draft="d")


def _ctx(tokens):
    return DraftContext(torch.tensor([tokens]), 2, 4, ConstantPolicy(k=4), SamplingConfig(), policy_k=4)


def test_copies_a_repeated_ngram_and_asks_the_model_otherwise(target_model, tokenizer):
    dec = _dec(target_model, tokenizer, min_match=3)
    d = dec.drafter_for(dec.spec)
    d.start(torch.tensor([[5, 6, 7, 8, 9, 5, 6, 7]]))
    copy = d.propose(_ctx([5, 6, 7, 8, 9, 5, 6, 7]))  # "5 6 7" occurred before: its continuation 8 9 5 6
    assert copy.info["source"] == "lookup" and copy.tokens[0].tolist() == [8, 9, 5, 6]
    model = d.propose(_ctx([5, 6, 7, 8, 9, 5, 6, 11]))  # no 3-gram match: the draft model drafts
    assert model.info["source"] == "model" and model.length == 4


def test_long_prompts_never_wake_the_draft_model(target_model, tokenizer):
    dec = _dec(target_model, tokenizer, model_prompt_max=10)
    d = dec.drafter_for(dec.spec)
    calls = []
    orig = d.model.propose
    d.model.propose = lambda ctx: calls.append(1) or orig(ctx)
    prompt = torch.randint(3, 64, (1, 12), generator=torch.Generator().manual_seed(0))
    list(dec.stream_ids(prompt, stop=StopConfig(max_new_tokens=12)))
    assert calls == []


def test_greedy_output_equals_plain_and_both_sources_ran(target_model, tokenizer):
    dec = _dec(target_model, tokenizer, min_match=2)
    plain = SpecDecoder(target_model, tokenizer)
    sources: set[str] = set()
    st = GenerationStats()
    for p in random_prompts(10, seed=3):
        want = [t for r in plain.stream_ids(p, stop=StopConfig(max_new_tokens=24)) for t in r.tokens]
        got = [t for r in dec.stream_ids(p, stop=StopConfig(max_new_tokens=24), stats=st) for t in r.tokens]
        assert got == want
        sources.update(st.extra.get("source", []))
    assert sources == {"lookup", "model"} and st.accepted > 0


def test_long_prompts_draft_from_aded_with_long_aded_and_stay_lossless(target_model, tokenizer):
    dec = _dec(target_model, tokenizer, model_prompt_max=10, long="aded", min_match=3)
    d = dec.drafter_for(dec.spec)
    calls = []
    orig = d.model.propose
    d.model.propose = lambda ctx: calls.append(1) or orig(ctx)
    plain = SpecDecoder(target_model, tokenizer)
    sources: set[str] = set()
    drafted = 0
    for p in random_prompts(6, seed=5, lo=12, hi=20):  # every prompt past model_prompt_max
        st = GenerationStats()
        want = [t for r in plain.stream_ids(p, stop=StopConfig(max_new_tokens=20)) for t in r.tokens]
        got = [t for r in dec.stream_ids(p, stop=StopConfig(max_new_tokens=20), stats=st) for t in r.tokens]
        assert got == want
        sources.update(st.extra.get("source", []))
        drafted += st.drafted
    assert calls == [] and "aded" in sources and drafted > 0


def test_long_option_is_checked_before_any_model_loads():
    from specdec.drafters.registry import DRAFTERS
    from specdec.errors import InputError

    with pytest.raises(InputError, match="long must be one of none, aded"):
        DRAFTERS.check("hybrid", long="suffix")


def test_target_topk_is_the_second_drafters_of_this_generation(target_model, tokenizer):
    """The loop computes the target's top tokens only for a drafter that reads them: the hybrid asks for them
    exactly when this generation's second drafter (ADED for long prompts with `long=aded`) does."""
    d = _dec(target_model, tokenizer, model_prompt_max=10, long="aded").drafter_for(SpecConfig(
        drafter="hybrid", k=4, guard=False, drafter_options={"model_prompt_max": 10, "long": "aded"}))
    d.long.config = d.long.config.with_options(recycle=3)
    d.start(torch.tensor([list(range(12))]))  # past model_prompt_max: ADED drafts
    assert d.target_topk == 3
    d.start(torch.tensor([list(range(5))]))  # short: the draft model, which reads none
    assert d.target_topk == 0


@pytest.mark.parametrize("first_min, want", [(0.01, {"aded-first", "model"}), (1e9, {"model"})])
def test_first_aded_is_taken_where_it_expects_enough_and_stays_lossless(target_model, tokenizer, first_min, want):
    """`first=aded`: ADED's sized tree is verified where it expects >= first_min accepted tokens, the draft model
    drafts the other rounds (ADED's tree withdrawn); greedy output equals plain either way."""
    dec = _dec(target_model, tokenizer, first="aded", first_min=first_min, min_match=6, max_ngram=6)
    plain = SpecDecoder(target_model, tokenizer)
    sources: list[str] = []
    for p in random_prompts(6, seed=7):
        st = GenerationStats()
        want_ids = [t for r in plain.stream_ids(p, stop=StopConfig(max_new_tokens=20)) for t in r.tokens]
        got = [t for r in dec.stream_ids(p, stop=StopConfig(max_new_tokens=20), stats=st) for t in r.tokens]
        assert got == want_ids
        sources += [s for s in st.extra.get("source", []) if s != "lookup"]
    assert set(sources) == want
    aded = dec.drafter_for(dec.spec).first
    assert aded is not None and aded.rounds  # asked on every round the draft model would have drafted
    withdrawn = [r for r in aded.rounds if r.get("withdrawn")]
    assert all("accepted" not in r for r in withdrawn)
    if first_min > 1:
        assert len(withdrawn) == len(aded.rounds)  # never taken


def test_a_withdrawn_aded_tree_is_not_learnt_as_verified(target_model, tokenizer):
    """After `withdraw`, the next verification (of another source's draft) recycles only the committed text's row
    and gives the withdrawn round no accepted depth."""
    from specdec.drafters.base import VerifyResult

    dec = _dec(target_model, tokenizer, first="aded")
    aded = dec.drafter_for(dec.spec).first
    prompt = [5, 6, 7, 5, 6, 7, 5, 6]
    aded.start(torch.tensor([prompt]))
    d = aded.propose(_ctx(prompt))
    assert d.length > 0 and "expected" in d.info
    aded.withdraw()
    seen = []
    aded.store.recycle = lambda a, c, succ, p, top_k, bigrams=True: seen.append((a, c))
    k = d.length  # another source's draft of the same length, none accepted
    res = VerifyResult(tokens=torch.tensor([[9]]), num_accepted=0, draft_length=k, accepted_nodes=[], bonus=False,
                       top_ids=torch.zeros(k + 1, 2, dtype=torch.long), top_probs=torch.zeros(k + 1, 2))
    aded.observe(res)
    assert seen == [(prompt[-2], prompt[-1])]  # row 0 only
    assert aded.rounds[-1]["withdrawn"] and "accepted" not in aded.rounds[-1]


def test_first_options_are_checked_before_any_model_loads():
    from specdec.drafters.registry import DRAFTERS
    from specdec.errors import InputError

    with pytest.raises(InputError, match="first must be one of none, aded"):
        DRAFTERS.check("hybrid", first="suffix")
    with pytest.raises(InputError, match="first_min"):
        DRAFTERS.check("hybrid", first="aded", first_min=0)
