"""The real bundled 0.5B: pulled (or taken from the cache) and run once. Minutes on a cold cache."""
from __future__ import annotations

import pytest


@pytest.mark.slow
def test_real_qwen_05b_pull_and_forward():
    import torch

    from specdec.zoo import load_causal_lm, pull

    path = pull("qwen2.5-coder-0.5b-instruct", progress=False)  # the default cache; no-op once pulled
    model, tok = load_causal_lm(str(path))
    assert tok.chat_template and tok.eos_token == "<|im_end|>" and tok.eos_token_id == 151645
    assert model.generation_config.eos_token_id == [151645, 151643]
    text = tok.apply_chat_template([{"role": "user", "content": "Say hi."}], add_generation_prompt=True,
                                   tokenize=False)
    ids = tok(text, return_tensors="pt").input_ids  # [1, T]
    with torch.no_grad():
        logits = model(ids).logits  # [1, T, V]
    assert logits.shape == (1, ids.shape[1], model.config.vocab_size) and torch.isfinite(logits).all()
