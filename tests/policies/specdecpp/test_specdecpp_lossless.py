"""Losslessness: the specdecpp policy only changes draft lengths, never the output."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats as sps

from spec_helpers import close_draft
from specdecpp_helpers import make_head_file, random_prompts

from specdec.api import SpecDecoder
from specdec.config import SamplingConfig, SpecConfig, StopConfig
from specdec.stats import GenerationStats


@pytest.fixture(scope="module")
def close(target_model):
    """A draft agreeing with the target's greedy choice ~75% of the time (the shared draft_model fixture
    is much farther away)."""
    return close_draft(target_model, eps=0.15)


def _decoders(target_model, draft_model, tokenizer, head, **opts):
    spec = SpecConfig(drafter="draft-model", policy="specdecpp", policy_options={"head": head, **opts})
    sd = SpecDecoder(target_model, tokenizer, spec=spec, draft="tiny-draft",
                     model_loader=lambda name: (draft_model, tokenizer))
    plain = SpecDecoder(target_model, tokenizer, spec=SpecConfig(drafter=None))
    return sd, plain


def _run(dec, prompt, sampling, n, spec=None):
    stats = GenerationStats()
    out = []
    for rnd in dec.stream_ids(prompt, sampling=sampling, stop=StopConfig(max_new_tokens=n), spec=spec, stats=stats):
        out += rnd.tokens
    return out, stats


@pytest.mark.parametrize("opts", [dict(threshold=0.3), dict(threshold=0.9, k_min=1, k_max=7), dict(threshold="auto")])
def test_greedy_equals_plain_greedy(tmp_path, target_model, close, tokenizer, opts):
    head = str(make_head_file(tmp_path / "h.safetensors", close, seed=3))
    sd, plain = _decoders(target_model, close, tokenizer, head, **opts)
    greedy = SamplingConfig()
    lengths, accepted = set(), 0
    for prompt in random_prompts(20, seed=7):
        want, _ = _run(plain, prompt, greedy, 24)
        got, st = _run(sd, prompt, greedy, 24)
        assert got == want
        assert st.drafted > 0
        accepted += st.accepted
        lengths.add(st.drafted / max(1, st.draft_calls))
    assert accepted > 0 and len(lengths) > 1  # drafts were accepted, and the head really varies the lengths


def test_greedy_with_eos_and_stop_at_eos(tmp_path, target_model, close, tokenizer):
    """EOS (id 1) in the draft ends the round; the output still equals plain decoding's (EOS kept)."""
    head = str(make_head_file(tmp_path / "h.safetensors", close, seed=4))
    sd, plain = _decoders(target_model, close, tokenizer, head, threshold=0.95, eos_ids=[1, 9, 17, 33])
    for prompt in random_prompts(15, seed=8):
        stop = StopConfig(max_new_tokens=20, eos_token_ids=(1,))
        want = [t for r in plain.stream_ids(prompt, stop=stop) for t in r.tokens]
        got = [t for r in sd.stream_ids(prompt, stop=stop) for t in r.tokens]
        assert got == want


def test_sampling_is_distributed_as_the_target(tmp_path, target_model, close, tokenizer):
    """Temperature 1: the first two tokens of many seeded generations follow the target's exact
    distribution (chi-square), with draft lengths varied by the head."""
    head = str(make_head_file(tmp_path / "h.safetensors", close, seed=5))
    sd, _ = _decoders(target_model, close, tokenizer, head, threshold=0.5, k_min=2, k_max=4)
    with torch.no_grad():  # a prompt whose first token is fairly predictable, so the second can be tested too
        prompt = max(random_prompts(30, seed=9), key=lambda x: float(target_model(x).logits[0, -1].softmax(-1).max()))
        p0 = target_model(prompt).logits[0, -1].softmax(-1)
    top = int(p0.argmax())
    with torch.no_grad():
        p1 = target_model(torch.cat([prompt, torch.tensor([[top]])], 1)).logits[0, -1].softmax(-1)
    n = 800
    first, second = [], []
    for s in range(n):
        toks, _ = _run(sd, prompt, SamplingConfig(temperature=1.0, seed=s), 4)
        first.append(toks[0])
        if toks[0] == top:
            second.append(toks[1])

    def pval(counts, probs):
        probs = probs.double().numpy()
        exp = probs / probs.sum() * counts.sum()
        big = exp >= 5
        obs = list(counts[big]) + [counts[~big].sum()]
        ex = list(exp[big]) + [exp[~big].sum()]
        return sps.chisquare(obs, ex).pvalue

    c1 = np.bincount(first, minlength=p0.numel()).astype(float)
    c2 = np.bincount(second, minlength=p1.numel()).astype(float)
    assert len(second) > 150
    assert pval(c1, p0) > 1e-3
    assert pval(c2, p1) > 1e-3
