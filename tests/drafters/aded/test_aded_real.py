"""`aded` on the real target (from the zoo cache): greedy output identical to plain decoding.

float32: in bf16 a multi-token verify pass can round differently from a one-token pass and flip a
near-tied argmax (seen for prompt-lookup chains as well as ADED trees, see docs/aded.md), which is a
property of the runner's numerics, not of the drafter; float32 checks the drafter's logic exactly."""
from __future__ import annotations

import pytest
import torch

from specdec.config import DEFAULT_TARGET, SpecConfig

PROMPTS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "Write a Python function that returns the n-th Fibonacci number, with a docstring.",
]


@pytest.mark.slow
def test_real_target_greedy_identical(tmp_path):
    from specdec.api import SpecDecoder
    from specdec.drafters.aded.store import TrigramStore, tokenizer_fingerprint
    from specdec.zoo import load_causal_lm, model_path

    if model_path(DEFAULT_TARGET) is None:
        pytest.skip(f"{DEFAULT_TARGET} is not pulled (specdec models pull {DEFAULT_TARGET})")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, tok = load_causal_lm(DEFAULT_TARGET, dtype="float32")
        dec = SpecDecoder(model, tok)
        # a small corpus store (so trees branch and get accepted) next to the empty-store default
        texts = ["The answer is 72. Natalia sold 48/2 = 24 clips in May. Natalia sold 48+24 = 72 clips altogether.",
                 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n    a, b = 0, 1\n    for _ in range(n):\n'
                 "        a, b = b, a + b\n    return a\n"]
        streams = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
        path = tmp_path / "store.safetensors"
        TrigramStore.build(streams, len(tok), meta={"tokenizer": DEFAULT_TARGET,
                                                    "tokenizer_fingerprint": tokenizer_fingerprint(tok)}).save(path)
        for prompt, opts in zip(PROMPTS, [{"store": str(path), "nodes": 11}, {"nodes": 7}]):
            plain = dec.generate(prompt, max_new_tokens=48, drafter=None)
            spec = SpecConfig(drafter="aded", k=64, drafter_options=opts)
            out = dec.generate(prompt, max_new_tokens=48, spec=spec)
            assert out.token_ids == plain.token_ids, (out.text, plain.text)
            assert out.stats.rounds <= plain.stats.rounds
    finally:
        torch.set_num_threads(before)
