"""Exact mode (EngineConfig.exact_query_len): every target pass has one query shape, so in bf16 a token's
logits do not depend on how many tokens shared its pass, and greedy speculation is bit-identical to plain."""
from __future__ import annotations

import copy

import pytest
import torch
import transformers

from spec_helpers import close_draft, random_prompts
from specdec.api import SpecDecoder
from specdec.config import EngineConfig, SpecConfig, StopConfig
from specdec.runners.torch_runner import TorchRunner
from specdec.errors import InputError


@pytest.fixture(scope="module")
def bf16_target():
    """A wide MLP (K = 4096 in down_proj): on x86 CPUs, bf16 GEMMs of this size already round differently for
    1 row than for several (measured: logits differ by 6e-5 without exact mode), as the real 1.5B's do."""
    torch.manual_seed(3)
    cfg = transformers.Qwen2Config(vocab_size=64, hidden_size=256, intermediate_size=4096, num_hidden_layers=2,
                                   num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                                   tie_word_embeddings=False, eos_token_id=1, pad_token_id=2)
    return transformers.Qwen2ForCausalLM(cfg).eval().to(torch.bfloat16)


def test_logits_and_cache_do_not_depend_on_the_pass_size(bf16_target):
    r = TorchRunner(bf16_target, max_context=64, query_len=8)
    prompt = torch.tensor([[5, 9, 13, 4, 22, 7]])  # (1, 6)
    new = torch.tensor([[11, 3, 40, 17, 8, 29]])  # (1, 6): scored together, then one per pass
    r.prefill(prompt)
    together, _ = r.forward(new)  # (1, 6, V)
    kv_together = r.k_cache[:, :, :, 6:12].clone()
    r.commit(6)
    r.rollback(6)
    alone = []
    for t in range(new.shape[1]):
        logits, _ = r.forward(new[:, t : t + 1])  # (1, 1, V)
        alone.append(logits)
        r.commit(1)
    alone = torch.cat(alone, 1)  # (1, 6, V)
    assert torch.equal(together, alone)  # bit for bit, in bf16
    assert torch.equal(kv_together, r.k_cache[:, :, :, 6:12])


def test_pass_longer_than_the_exact_length_is_refused(bf16_target):
    r = TorchRunner(bf16_target, max_context=64, query_len=4)
    r.prefill(torch.tensor([[5, 9, 13]]))
    with pytest.raises(InputError, match="exact"):
        r.forward(torch.tensor([[1, 2, 3, 4, 5]]))
    with pytest.raises(InputError, match="query_len"):
        TorchRunner(bf16_target, query_len=0)


def test_prefill_is_not_padded(bf16_target):
    # the prompt may be longer than the exact length: prefill runs in its own (chunked) shapes
    r = TorchRunner(bf16_target, max_context=64, query_len=2)
    r.prefill(torch.arange(3, 20)[None])  # (1, 17)
    assert r.length == 17


@pytest.mark.parametrize("drafter,policy,k", [("draft-model", "constant", 4), ("draft-model", "heuristic", 2),
                                              ("prompt-lookup", "constant", 4)])
def test_bf16_greedy_speculation_is_bit_identical_to_plain(bf16_target, tokenizer, drafter, policy, k):
    draft = close_draft(copy.deepcopy(bf16_target).float(), eps=0.15).to(torch.bfloat16)
    dec = SpecDecoder(bf16_target, tokenizer, model_loader=lambda name: (draft, tokenizer), draft="d",
                      engine=EngineConfig(exact_query_len=5))
    stop = StopConfig(max_new_tokens=20)
    spec = SpecConfig(drafter=drafter, policy=policy, k=k)
    accepted = 0
    for p in random_prompts(12, seed=5):
        plain = [t for rnd in dec.stream_ids(p, stop=stop, spec=SpecConfig()) for t in rnd.tokens]
        rounds = list(dec.stream_ids(p, stop=stop, spec=spec))
        assert [t for rnd in rounds for t in rnd.tokens] == plain
        accepted += sum(rnd.num_accepted for rnd in rounds)
    assert accepted > 0  # speculation really happened


def test_exact_mode_checks_itself_when_built(bf16_target, monkeypatch):
    r = TorchRunner(bf16_target, max_context=64, query_len=8)
    assert r.exact_mismatches() == [] and r.length == 0  # exact here, and the check leaves the cache empty
    # a kernel that rounds some rows of an N-row pass differently (seen: attention splitting 7x5 query rows
    # of Qwen2.5-0.5B into 32 + 3) is refused with the rows named, not silently "exact"
    monkeypatch.setattr(TorchRunner, "exact_mismatches", lambda self: [2, 4])
    with pytest.raises(InputError, match=r"rows \[2, 4\] of a 5-row pass"):
        TorchRunner(bf16_target, max_context=64, query_len=5)
    TorchRunner(bf16_target, max_context=64)  # fast mode: no check
