"""Slow: the real bundled pair (Qwen2.5-Coder 1.5B target, 0.5B draft) from the model zoo."""
from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.slow

PROMPTS = [
    "Write a Python function that returns the n-th Fibonacci number.",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "Explain what a hash map is in two sentences.",
]


@pytest.fixture(scope="module")
def decoder():
    import specdec

    torch.set_num_threads(2)
    # float32: in bf16 a (K+1)-token verify pass rounds differently from a 1-token step and near-ties can flip
    return specdec.load("qwen2.5-coder-1.5b-instruct", draft="qwen2.5-coder-0.5b-instruct", dtype="float32")


@pytest.mark.parametrize("drafter", ["draft-model", "prompt-lookup"])
def test_greedy_speculative_equals_plain_on_real_pair(decoder, drafter):
    for prompt in PROMPTS[:2]:
        plain = decoder.generate(prompt, max_new_tokens=32, drafter=None)
        spec = decoder.generate(prompt, max_new_tokens=32, drafter=drafter, k=4)
        assert spec.token_ids == plain.token_ids, prompt
        assert plain.stats.rounds == plain.stats.new_tokens  # plain: one target call per token
    assert spec.stats.drafted > 0


def test_real_draft_accepts_most_tokens(decoder):
    res = decoder.generate(PROMPTS[0], max_new_tokens=32, drafter="draft-model", k=4)
    # the 0.5B drafts for the 1.5B of the same family: most of its tokens are accepted
    assert res.stats.acceptance_rate > 0.4, res.stats.summary()
    assert res.stats.mean_accepted_length > 1.5


def test_bf16_exact_mode_is_bit_identical_on_real_pair():
    """bf16, the speed setting: with one query shape for every target pass (exact mode), greedy chain
    speculation equals plain decoding token for token. (Tree drafts are not covered: a node's ancestors sit
    at other cache slots than in plain decoding, and the attention kernel's vectorised sums then round
    differently -- see README, exact mode.)"""
    import specdec

    torch.set_num_threads(2)
    dec = specdec.load("qwen2.5-coder-1.5b-instruct", draft="qwen2.5-coder-0.5b-instruct", exact_query_len=8)
    for prompt in PROMPTS[1:]:
        plain = dec.generate(prompt, max_new_tokens=48, drafter=None)
        for drafter, k, opts in [("draft-model", 7, {}), ("prompt-lookup", 4, {})]:
            spec = dec.generate(prompt, max_new_tokens=48, drafter=drafter, k=k, drafter_options=opts)
            assert spec.token_ids == plain.token_ids, (drafter, prompt)
            if drafter == "draft-model":  # speculation really ran (prompt lookup may find no match in 48 tokens)
                assert spec.stats.accepted > 0


@pytest.mark.parametrize("backend,weights", [("torch", "int4"), ("llamacpp", "auto")])
def test_greedy_speculation_on_the_fast_runners(backend, weights):
    """The speed setting of each runner on the real pair: int4 weights on specdec's kernel (each row's
    arithmetic does not depend on the rows beside it, and exact mode pads every pass to 8 rows so attention
    rounds alike too) and the GGUF through llama.cpp. Greedy speculation must equal the same runner's plain
    decoding token for token."""
    import importlib.util

    import specdec
    from specdec.weights import kernels

    if backend == "llamacpp" and importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install 'specdec[llamacpp]')")
    torch.set_num_threads(2)
    exact = 8  # torch: every pass padded to 8 rows; llamacpp: unrepacked (batch-invariant) kernels
    dec = specdec.load("qwen2.5-coder-1.5b-instruct", draft="qwen2.5-coder-0.5b-instruct", backend=backend,
                       weights=weights, exact_query_len=exact)
    assert dec.target.name == backend
    if backend == "llamacpp":
        assert dec.target.exact and not dec.target.repack
    if backend == "torch":
        assert dec.target.weights == "int4"
        assert any(m.kernel == kernels.mode()
                   for m in dec.target.hf_model.modules() if hasattr(m, "kernel"))
    for prompt in PROMPTS[:2]:
        plain = dec.generate(prompt, max_new_tokens=40, drafter=None)
        for drafter, k, opts in [("draft-model", 4, {}), ("prompt-lookup", 4, {}), ("aded", 4, {"chain": True})]:
            spec = dec.generate(prompt, max_new_tokens=40, drafter=drafter, k=k, guard=False, drafter_options=opts)
            assert spec.token_ids == plain.token_ids, (backend, drafter, prompt)
    assert "def" in dec.generate(PROMPTS[0], max_new_tokens=40).text  # it still writes code
