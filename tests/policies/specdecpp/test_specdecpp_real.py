"""Slow: the bundled head on the real bundled pair (Qwen2.5-Coder 0.5B drafting for 1.5B)."""
from __future__ import annotations

import pytest
import torch

import specdec  # noqa: F401  (import before `policies`)

pytestmark = pytest.mark.slow

PROMPTS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "Write a Python function that returns the n-th Fibonacci number.",
]


@pytest.fixture(scope="module")
def decoder():
    import specdec

    torch.set_num_threads(2)
    # float32: in bf16 the target's logits depend on how many tokens one forward verifies (kernel shapes), so
    # near-ties can flip against plain decoding for ANY policy drafting other lengths (constant K too)
    return specdec.load("qwen2.5-coder-1.5b-instruct", draft="qwen2.5-coder-0.5b-instruct", dtype="float32")


def test_bundled_head_matches_the_bundled_draft(decoder):
    from policies.specdecpp.head import BUNDLED, load_head

    drafter = decoder.drafter_for(decoder.spec.__class__(drafter="draft-model"))
    load_head(BUNDLED["qwen2.5-coder-0.5b-instruct"], draft=drafter.runner.hf_model,
              draft_name="qwen2.5-coder-0.5b-instruct")  # full identity check, weights fingerprint included


@pytest.mark.parametrize("threshold", ["auto", 0.5])
def test_specdecpp_greedy_equals_plain_on_real_pair(decoder, threshold):
    for prompt in PROMPTS:
        plain = decoder.generate(prompt, max_new_tokens=40, drafter=None)
        spec = decoder.generate(prompt, max_new_tokens=40, drafter="draft-model", policy="specdecpp",
                                policy_options={"threshold": threshold})
        assert spec.token_ids == plain.token_ids, prompt
        assert spec.stats.drafted > 0 and spec.stats.accepted > 0
