"""Losslessness, the invariant every drafter must pass: speculative output == plain output.

Greedy: token for token, for many prompts, every built-in drafter x policy. Sampling: the distribution of the
first two generated tokens equals the target's exact distribution (chi-square), for a draft model and a
deterministic drafter.
"""
from __future__ import annotations

import pytest
import torch

from spec_helpers import chi2_pvalue, close_draft, hf_greedy, make_model, make_tokenizer, random_prompts
from specdec.api import SpecDecoder
from specdec.config import SamplingConfig, SpecConfig, StopConfig
from specdec.sampling import process_logits
from specdec.stats import GenerationStats

N_PROMPTS = 30
MAX_NEW = 24
STOP = StopConfig(max_new_tokens=MAX_NEW)


@pytest.fixture(scope="module")
def close(target_model):
    return close_draft(target_model, eps=0.15)


@pytest.fixture(scope="module")
def decoder(target_model, close, tokenizer):
    return SpecDecoder(target_model, tokenizer, model_loader=lambda name: (close, tokenizer), draft="d")


@pytest.fixture(scope="module")
def prompts():
    return random_prompts(N_PROMPTS, seed=0)


def run(dec, prompt, spec, sampling=SamplingConfig(), stop=STOP, stats=None):
    return [t for rnd in dec.stream_ids(prompt, sampling=sampling, stop=stop, spec=spec, stats=stats) for t in rnd.tokens]


@pytest.fixture(scope="module")
def plain(decoder, prompts):
    return [run(decoder, p, SpecConfig()) for p in prompts]


def test_plain_decoding_equals_hf_greedy(target_model, decoder, prompts, plain):
    """The reference itself: the engine's plain decoding == HF's full-recompute argmax loop."""
    for p, out in list(zip(prompts, plain))[:8]:
        eos = decoder.eos_ids()
        ref = hf_greedy(target_model, p, len(out))
        assert out == ref
        assert len(out) == MAX_NEW or out[-1] in eos


CONFIGS = [("constant", 1), ("constant", 3), ("constant", 6), ("heuristic", 2), ("confidence", 6)]


@pytest.mark.parametrize("drafter", ["draft-model", "prompt-lookup"])
@pytest.mark.parametrize("policy,k", CONFIGS, ids=[f"{p}-{k}" for p, k in CONFIGS])
def test_greedy_speculation_equals_plain(decoder, prompts, plain, drafter, policy, k):
    spec = SpecConfig(drafter=drafter, policy=policy, k=k)
    total = GenerationStats()
    for i, (p, ref) in enumerate(zip(prompts, plain)):
        st = GenerationStats()
        out = run(decoder, p, spec, stats=st)
        assert out == ref, f"prompt {i}: speculative output differs from plain decoding"
        total.drafted += st.drafted
        total.accepted += st.accepted
        total.rounds += st.rounds
    # not vacuous: drafts were made, many were accepted, and some were rejected
    assert total.drafted > 0 and 0 < total.accepted < total.drafted
    assert total.rounds < N_PROMPTS * MAX_NEW  # fewer target calls than plain decoding


@pytest.mark.parametrize("drafter,sync", [("draft-model", True), ("draft-model", False), ("hybrid", True)])
def test_guessed_draft_passes_are_lossless(decoder, prompts, plain, drafter, sync):
    """guess=N (draft passes that also run tokens copied from the context; guess_sync: the round's first pass
    too): same outputs as plain decoding, and the copies saved draft passes (fewer than one per drafted token)."""
    opts = {"guess": 4, "guess_sync": sync}
    spec = SpecConfig(drafter=drafter, policy="constant", k=6,
                      drafter_options={**opts, "min_match": 3} if drafter == "hybrid" else opts)
    passes = drafted = 0
    for i, (p, ref) in enumerate(zip(prompts, plain)):
        st = GenerationStats()
        assert run(decoder, p, spec, stats=st) == ref, f"prompt {i}"
        passes += sum(st.extra.get("draft_passes", []))
        drafted += st.drafted
    # without guesses a chain of n tokens takes n passes (the sync's, then one a further token); the hybrid's
    # lookup rounds draft without any
    assert 0 < passes < drafted


def test_a_poor_draft_model_is_still_lossless(target_model, draft_model, tokenizer, prompts, plain):
    dec = SpecDecoder(target_model, tokenizer, model_loader=lambda name: (draft_model, tokenizer), draft="d")
    for p, ref in list(zip(prompts, plain))[:10]:
        assert run(dec, p, SpecConfig(drafter="draft-model", k=4)) == ref


def test_a_draft_with_a_padded_vocabulary_is_lossless(target_model, tokenizer, prompts, plain):
    """Draft models often have a larger embedding matrix than the tokenizer: the extra rows are dropped."""
    big = make_model("qwen2", seed=0, vocab=72, sharp=8.0)
    with torch.no_grad():  # the target's weights on the first 64 rows, junk (very likely tokens) on the rest
        for (name, pb), pt in zip(big.named_parameters(), target_model.parameters()):
            if pb.shape == pt.shape:
                pb.copy_(pt)
            else:
                pb[: pt.shape[0]] = pt
                pb[pt.shape[0]:] = 5 * pt.abs().max()
    dec = SpecDecoder(target_model, tokenizer, model_loader=lambda name: (big, tokenizer), draft="d")
    st = GenerationStats()
    for p, ref in list(zip(prompts, plain))[:5]:
        assert run(dec, p, SpecConfig(drafter="draft-model", k=3), stats=st) == ref
    assert st.accepted > 0


# ------------------------------------------------------------------ sampling, end to end
V_SMALL = 8


@pytest.fixture(scope="module")
def small():
    """A tiny-vocabulary target, a drafter that partly agrees with it, and a word-level tokenizer."""
    target = make_model("qwen2", seed=3, vocab=V_SMALL, layers=1, sharp=2.0)
    draft = close_draft(target, eps=0.6, seed=4)
    return target, draft, make_tokenizer(V_SMALL)


@torch.no_grad()
def exact_first_two(target, prompt, cfg):
    """p(x1, x2) = p(x1 | prompt) p(x2 | prompt, x1) computed from HF's forward, after sampling processing."""
    p1 = process_logits(target(prompt).logits[0, -1], cfg)  # (V,)
    seqs = torch.cat([prompt.expand(V_SMALL, -1), torch.arange(V_SMALL)[:, None]], dim=1)  # (V, T+1)
    p2 = process_logits(target(seqs).logits[:, -1], cfg)  # (V, V)
    return p1[:, None] * p2  # (V, V)


SHORT = [3, 4, 5, 3, 4]  # prompt-lookup drafts [5, 3, 4] after the repeated [3, 4]
TWO_WAYS = [3, 4, 5, 3, 4, 6, 3, 4]  # "3 4" went on with 5 once and 6 once: suffix drafts a tree, 5 and 6 as siblings


@pytest.mark.parametrize(
    "drafter,opts,cfg,n,prompt_ids",
    [("draft-model", {}, SamplingConfig(temperature=1.0), 2000, SHORT),
     ("draft-model", {}, SamplingConfig(temperature=0.8, top_k=6, top_p=0.95), 1500, SHORT),
     ("draft-model", {"guess": 2}, SamplingConfig(temperature=1.0), 1500, SHORT),
     ("draft-model", {"guess": 2, "guess_sync": False}, SamplingConfig(temperature=1.0), 1500, SHORT),
     ("prompt-lookup", {}, SamplingConfig(temperature=1.0), 1500, SHORT),
     ("suffix", {}, SamplingConfig(temperature=1.0), 1500, TWO_WAYS)],
    ids=["draft-model", "draft-model-topk-topp", "draft-model-guess", "draft-model-guess-no-sync", "prompt-lookup",
         "suffix-tree"],
)
def test_speculative_sampling_matches_the_target_distribution(small, drafter, opts, cfg, n, prompt_ids):
    target, draft, tok = small
    dec = SpecDecoder(target, tok, model_loader=lambda name: (draft, tok), draft="d")
    prompt = torch.tensor([prompt_ids])
    stop = StopConfig(max_new_tokens=3, eos_token_ids=())  # the first round drafts 2 tokens (budget 3 - 1)
    spec = SpecConfig(drafter=drafter, k=3, drafter_options=opts)
    joint = torch.zeros(V_SMALL, V_SMALL)
    st = GenerationStats()
    for seed in range(n):
        out = run(dec, prompt, spec, sampling=SamplingConfig(**{**cfg.__dict__, "seed": seed}), stop=stop, stats=st)
        assert len(out) == 3
        joint[out[0], out[1]] += 1
    exact = exact_first_two(target, prompt, cfg)
    assert st.accepted > n // 10  # drafts were really accepted (and rejected) along the way
    assert st.accepted < st.drafted
    assert chi2_pvalue(joint.flatten(), exact.flatten()) > 1e-3
    # power: the same samples are told apart from the draft's own distribution
    wrong = exact_first_two(draft, prompt, cfg)
    assert chi2_pvalue(joint.flatten(), wrong.flatten()) < 1e-6


def test_plain_sampling_is_reproducible_and_seed_dependent(small):
    target, draft, tok = small
    dec = SpecDecoder(target, tok)
    prompt = torch.tensor([[3, 4, 5]])
    stop = StopConfig(max_new_tokens=12, eos_token_ids=())
    a = run(dec, prompt, SpecConfig(), SamplingConfig(temperature=1.0, seed=1), stop)
    b = run(dec, prompt, SpecConfig(), SamplingConfig(temperature=1.0, seed=1), stop)
    c = run(dec, prompt, SpecConfig(), SamplingConfig(temperature=1.0, seed=2), stop)
    assert a == b and a != c
