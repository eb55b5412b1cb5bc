from __future__ import annotations

import pytest
import torch

from mlm_generate.nar import (GenerationConfig, block_fill, fill_text, generate, iterative_fill,
                              pseudo_log_likelihood, refine)
from specdec.errors import InputError

from mlm_fixtures import any_mlm, bert_mlm, bert_tok, modernbert_mlm, roberta_tok  # noqa: F401  (pytest fixtures)


def _bias_towards_specials(mlm):
    """Make the mask / pad / sep tokens the argmax everywhere: a fill that does not forbid them leaves masks."""
    head = mlm.model.get_output_embeddings()
    with torch.no_grad():
        for i in mlm.special_ids():
            head.bias[i] += 100.0


def test_mask_predict_never_leaves_masks_and_respects_length_candidates(any_mlm):
    _bias_towards_specials(any_mlm)
    cfg = GenerationConfig(lengths=(3, 5, 8), iterations=4)
    res = generate(any_mlm, "the movie was", cfg)
    assert [c.length for c in res.candidates] == [3, 5, 8]
    for c in res.candidates:
        assert len(c.tokens) == c.length
        assert not set(c.tokens) & set(any_mlm.special_ids())
    assert res.length in (3, 5, 8) and len(res.tokens) == res.length
    assert res.avg_logprob == max(c.avg_logprob for c in res.candidates)
    assert res.forward_passes == 4 and res.tokens_per_second > 0


def test_mask_predict_remasks_the_least_confident(bert_mlm):
    tok = bert_mlm.tokenizer
    ids = torch.tensor([tok("the movie was good and fun")["input_ids"]])
    fill = torch.zeros_like(ids, dtype=torch.bool)
    fill[0, 1:6] = True
    calls = []
    orig = bert_mlm.logits_at

    def spy(i, a, where):
        calls.append(int(where.sum()))
        return orig(i, a, where)

    bert_mlm.logits_at = spy
    out, conf, passes = iterative_fill(bert_mlm, ids, torch.ones_like(ids), fill, iterations=5)
    assert passes == 5
    assert calls == [5, 4, 3, 2, 1]  # n = N (T - t) / T re-masked at iteration t
    assert not (out == bert_mlm.mask_id).any()
    assert (conf[fill] <= 0).all() and (conf[~fill] == 0).all()
    assert torch.equal(out[~fill], ids[~fill])


def test_one_iteration_is_the_parallel_argmax(bert_mlm):
    r1 = generate(bert_mlm, "a great", GenerationConfig(lengths=(6,), iterations=1))
    tok = bert_mlm.tokenizer
    enc = tok("a great" + tok.mask_token * 6, return_tensors="pt")
    with torch.no_grad():
        logits = bert_mlm.model(**enc).logits[0]
    pos = (enc["input_ids"][0] == bert_mlm.mask_id).nonzero()[:, 0]
    logits[:, bert_mlm.special_ids()] = float("-inf")
    assert r1.forward_passes == 1 and r1.tokens == logits[pos].argmax(-1).tolist()


def test_block_unmasking_fills_blocks_left_to_right(any_mlm):
    _bias_towards_specials(any_mlm)
    res = generate(any_mlm, "the plot", GenerationConfig(method="block", lengths=(7,), block_size=3, steps_per_block=2))
    assert len(res.tokens) == 7 and not set(res.tokens) & set(any_mlm.special_ids())
    assert res.forward_passes == 5  # ceil(7/3) = 3 blocks of 2 steps, but the last block (1 token) needs 1
    tok = any_mlm.tokenizer
    ids = torch.tensor([tok("a b c d e f")["input_ids"]])
    fill = torch.zeros_like(ids, dtype=torch.bool)
    fill[0, 1:7] = True
    seen = []
    orig = any_mlm.logits_at

    def spy(i, a, where):
        seen.append(where[0].nonzero()[:, 0].tolist())
        return orig(i, a, where)

    any_mlm.logits_at = spy
    block_fill(any_mlm, ids, torch.ones_like(ids), fill, block_size=3, steps_per_block=3)
    assert seen[0] == [1, 2, 3]  # only the first block is predicted first
    assert all(max(s) <= 3 for s in seen[:3]) and all(min(s) >= 4 for s in seen[3:])


def test_fill_text_accepts_both_mask_spellings(any_mlm):
    out = fill_text(any_mlm, "the [MASK] was <mask> .", iterations=2, top_k=3)
    assert len(out["masks"]) == 2 and len(out["filled_ids"]) == 2
    assert all(len(m["top"]) == 3 for m in out["masks"])
    assert any_mlm.tokenizer.mask_token not in out["text"]
    with pytest.raises(InputError, match="no mask"):
        fill_text(any_mlm, "no blanks here")
    with pytest.raises(InputError, match="--top-k must be >= 1"):
        fill_text(any_mlm, "the [MASK] .", top_k=0)
    long = " ".join(["the"] * (any_mlm.max_length + 5)) + " [MASK] ."
    with pytest.raises(InputError, match="every mask lies past the cut"):  # truncation removed it
        fill_text(any_mlm, long)


def test_refine_starts_from_a_draft(bert_mlm):
    res = refine(bert_mlm, "the movie", "was very good", iterations=3)
    assert res.length == 3 and res.forward_passes == 3
    one = refine(bert_mlm, "the movie", "was very good", iterations=1)
    assert one.tokens == bert_mlm.tokenizer("was very good", add_special_tokens=False)["input_ids"]


def test_pseudo_log_likelihood(bert_mlm):
    total, n = pseudo_log_likelihood(bert_mlm, "the movie was good")
    assert n == 4 and total < 0


def test_generation_config_validation():
    with pytest.raises(InputError):
        GenerationConfig(lengths=())
    with pytest.raises(InputError):
        GenerationConfig(method="beam")
