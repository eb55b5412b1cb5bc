from __future__ import annotations

import pytest
import torch

from mlm_generate.drafter import MLMDrafter
from mlm_generate.models import MLM
from specdec.config import SamplingConfig
from specdec.drafters import DRAFTERS, DrafterEnv
from specdec.drafters.base import DraftContext

from mlm_fixtures import make_bert, make_mlm_tokenizer
from mlm_fixtures import any_mlm, bert_mlm, bert_tok, modernbert_mlm, roberta_tok  # noqa: F401  (pytest fixtures)


def _ctx(ids: list[int], k: int) -> DraftContext:
    t = torch.tensor([ids])
    return DraftContext(tokens=t, prompt_len=t.shape[1], max_draft=k, policy=None, sampling=SamplingConfig())


def _force(mlm: MLM, word: str) -> None:
    """Make `word` the MLM's argmax at every mask."""
    with torch.no_grad():
        mlm.model.get_output_embeddings().bias[mlm.tokenizer.convert_tokens_to_ids(word)] += 100.0


@pytest.fixture()
def target_tok():
    # same words, other ids (no [unused0], RoBERTa-style specials): a different vocabulary
    return make_mlm_tokenizer("roberta", with_marker=False)


def test_translates_through_text_into_the_target_vocabulary(bert_mlm, target_tok):
    _force(bert_mlm, "good")
    d = MLMDrafter(bert_mlm, target_tok)
    assert not d.shared_vocab
    ids = target_tok("the movie was", add_special_tokens=False)["input_ids"]
    draft = d.propose(_ctx(ids, 3))
    assert draft.q is None and draft.tree is None
    assert draft.tokens.shape == (1, 3)
    assert draft.tokens[0].tolist() == [target_tok.convert_tokens_to_ids("good")] * 3
    assert target_tok.convert_tokens_to_ids("good") != bert_mlm.tokenizer.convert_tokens_to_ids("good")
    assert draft.info["translate_s"] >= 0 and draft.info["mlm_s"] > 0 and "good" in draft.info["draft_text"]


@pytest.mark.parametrize("k", [0, 1, 2, 5])
def test_returns_at_most_k_tokens_in_the_target_vocabulary(bert_mlm, target_tok, k):
    d = MLMDrafter(bert_mlm, target_tok, extra_masks=3)
    ids = target_tok("a very good film and", add_special_tokens=False)["input_ids"]
    draft = d.propose(_ctx(ids, k))
    assert draft.length <= k
    assert all(0 <= t < len(target_tok) for t in draft.tokens[0].tolist())


def test_shared_vocabulary_skips_translation(bert_mlm, bert_tok):
    _force(bert_mlm, "fun")
    d = MLMDrafter(bert_mlm, bert_tok, iterations=2)
    assert d.shared_vocab
    draft = d.propose(_ctx(bert_tok("it is", add_special_tokens=False)["input_ids"], 4))
    assert draft.tokens[0].tolist() == [bert_tok.convert_tokens_to_ids("fun")] * 4
    assert draft.info["translate_s"] == 0.0


def test_restore_case_uses_the_context():
    assert MLMDrafter._recase("paris is the capital", "We went to Paris. The") == "Paris is The capital"


def test_registered_and_lossless_in_the_engine(tmp_path):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from specdec.api import SpecDecoder
    from specdec.config import SpecConfig

    words = [f"w{i}" for i in range(40)]
    tok = make_mlm_tokenizer("bert", words=words)
    torch.manual_seed(0)
    target = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                          num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                          max_position_embeddings=256, eos_token_id=None, pad_token_id=0)).eval()
    target_tok = make_mlm_tokenizer("roberta", with_marker=False, words=words)
    mlm_dir = tmp_path / "mlm"
    make_bert(tok).save_pretrained(mlm_dir)
    tok.save_pretrained(mlm_dir)
    assert "mlm" in DRAFTERS.names()
    env = DrafterEnv(target_tokenizer=target_tok, target_runner=None, load_model=None)
    assert isinstance(DRAFTERS.create("mlm", env=env, mlm=str(mlm_dir)), MLMDrafter)
    prompt = "w1 w2 w3 w4 w1 w2"
    plain = SpecDecoder(target, target_tok, SpecConfig()).generate(prompt, chat=False, max_new_tokens=20,
                                                                  ignore_eos=True)
    spec = SpecDecoder(target, target_tok, SpecConfig(drafter="mlm", k=3, drafter_options={"mlm": str(mlm_dir)}))
    out = spec.generate(prompt, chat=False, max_new_tokens=20, ignore_eos=True)
    assert out.token_ids == plain.token_ids  # verified by the shared verify(): lossless
    assert out.stats.drafted > 0
    # the mask-predict initializer (refine) and a confidence policy reading the MLM's probabilities: still lossless
    refined = SpecConfig(drafter="mlm", k=4, policy="confidence", policy_options={"threshold": 0.05},
                         drafter_options={"mlm": str(mlm_dir), "refine": 2})
    out = spec.generate(prompt, chat=False, max_new_tokens=20, ignore_eos=True, spec=refined)
    assert out.token_ids == plain.token_ids and out.stats.drafted > 0


def test_refine_runs_mask_predict_over_the_fill(bert_mlm, bert_tok):
    """refine=N: the parallel fill refined by nar.refine (N more mask-predict passes) is the draft."""
    from mlm_generate.nar import refine

    ids = bert_tok("it is a very", add_special_tokens=False)["input_ids"]
    plain = MLMDrafter(bert_mlm, bert_tok)
    fill, lps = plain._fill(ids, 4)
    assert len(lps) == 4 and all(lp <= 0 for lp in lps)
    want = refine(bert_mlm, bert_tok.decode(ids), fill, iterations=3)
    d = MLMDrafter(bert_mlm, bert_tok, refine=2)
    assert d.propose(_ctx(ids, 4)).tokens[0].tolist() == want.tokens
    assert len(want.token_logprobs) == 4 and want.stats().target_calls == want.forward_passes


def test_the_policy_sees_the_mlm_confidence(bert_mlm, bert_tok):
    """A confidence policy cuts the MLM draft at the first token below its threshold (kept, then verified)."""
    from policies.simple import ConfidencePolicy

    ids = bert_tok("it is a very", add_special_tokens=False)["input_ids"]
    d = MLMDrafter(bert_mlm, bert_tok)
    ctx = _ctx(ids, 4)
    full = d.propose(ctx).tokens[0].tolist()
    ctx.policy = ConfidencePolicy(k=4, threshold=1.0)  # no MLM probability reaches 1: stop after the first
    assert d.propose(ctx).tokens[0].tolist() == full[:1]
    ctx.policy = ConfidencePolicy(k=4, threshold=0.0)
    assert d.propose(ctx).tokens[0].tolist() == full
