from __future__ import annotations

import pytest
import torch

from mlm_generate.classifier import MLMClassifier
from mlm_generate.models import MLM
from mlm_generate.templates import SENTIMENT, Example, PromptTemplate, Verbalizer, VerbalizerError

from mlm_fixtures import make_bert, make_mlm_tokenizer
from mlm_fixtures import any_mlm, bert_mlm, bert_tok, modernbert_mlm, roberta_tok  # noqa: F401  (pytest fixtures)


def _mask_logits(mlm: MLM, prompt: str) -> torch.Tensor:
    enc = mlm.tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        logits = mlm.model(**enc).logits[0]
    pos = (enc["input_ids"][0] == mlm.mask_id).nonzero()[:, 0]
    return logits[pos]  # (n_masks, V)


def test_logits_at_matches_full_forward(any_mlm):
    tok = any_mlm.tokenizer
    enc = tok(["the movie was " + tok.mask_token, "a very good film it is"], padding=True, return_tensors="pt")
    where = torch.zeros_like(enc["input_ids"], dtype=torch.bool)
    where[0, 1] = where[0, 4] = where[1, 3] = True
    with torch.no_grad():
        full = any_mlm.model(**enc).logits[where]
        split = any_mlm.logits_at(enc["input_ids"], enc["attention_mask"], where)
    assert split.shape == (3, len(tok))
    torch.testing.assert_close(split, full, rtol=1e-5, atol=1e-5)


def test_multiple_choice_probs_sum_to_one_and_match_manual_softmax(any_mlm):
    clf = MLMClassifier(any_mlm)
    q, choices = "what is the capital of france ?", ["paris", "london", "the film", "plot"]
    probs = clf.score_choices(q, choices)
    assert len(probs) == 4 and abs(sum(probs) - 1) < 1e-5
    prompt = clf.template.render(any_mlm.tokenizer, q, choices)
    assert prompt.count(any_mlm.tokenizer.mask_token) == 1 and "- B: london" in prompt
    logits = _mask_logits(any_mlm, prompt)[0]
    ids = [any_mlm.tokenizer.convert_tokens_to_ids(x) for x in "ABCD"]  # "A" and " A" are one token here
    manual = torch.softmax(logits[ids], 0)
    torch.testing.assert_close(torch.tensor(probs), manual, rtol=1e-4, atol=1e-6)


def test_label_words_are_summed_per_label(bert_mlm):
    clf = MLMClassifier(bert_mlm, SENTIMENT)
    labels = {"neg": ["bad", "terrible", "dull"], "pos": ["good"]}
    probs = clf.classify("the plot was fun", labels)
    prompt = SENTIMENT.render(bert_mlm.tokenizer, "the plot was fun", ["bad", "good"])
    lp = torch.log_softmax(_mask_logits(bert_mlm, prompt)[0], 0)
    ids = lambda ws: [bert_mlm.tokenizer.convert_tokens_to_ids(w) for w in ws]  # noqa: E731
    s = torch.stack([lp[ids(labels["neg"])].logsumexp(0), lp[ids(labels["pos"])].logsumexp(0)])
    manual = torch.softmax(s, 0)
    assert probs["neg"] == pytest.approx(float(manual[0]), abs=1e-5)
    assert probs["neg"] + probs["pos"] == pytest.approx(1.0, abs=1e-6)


def test_multi_token_verbalizer_chain_scoring_matches_manual(any_mlm):
    tok = any_mlm.tokenizer
    clf = MLMClassifier(any_mlm, SENTIMENT, joint="chain")
    indep = MLMClassifier(any_mlm, SENTIMENT, joint="independent")
    labels = {"neg": ["not good"], "pos": ["very good"]}
    text = "the acting was fun"
    p_chain = clf.classify(text, labels)
    p_ind = indep.classify(text, labels)
    prompt = SENTIMENT.render(tok, text, ["not good", "very good"], n_masks=2)
    assert prompt.count(tok.mask_token) == 2
    first = torch.log_softmax(_mask_logits(any_mlm, prompt), -1)  # (2, V)
    tid = tok.convert_tokens_to_ids
    scores = []
    for w1, w2 in (("not", "good"), ("very", "good")):
        filled = prompt.replace(tok.mask_token, w1 + " ", 1)
        second = torch.log_softmax(_mask_logits(any_mlm, filled), -1)[0]
        scores.append(first[0, tid(w1)] + second[tid(w2)])
    manual = torch.softmax(torch.stack(scores), 0)
    assert p_chain["neg"] == pytest.approx(float(manual[0]), abs=1e-4)
    ind = torch.softmax(torch.stack([first[0, tid("not")] + first[1, tid("good")],
                                     first[0, tid("very")] + first[1, tid("good")]]), 0)
    assert p_ind["neg"] == pytest.approx(float(ind[0]), abs=1e-4)
    assert p_chain["neg"] != pytest.approx(p_ind["neg"], abs=1e-6)  # chain really conditions on the 1st token


def test_mixed_length_verbalizers_score_on_their_own_number_of_masks(bert_mlm):
    clf = MLMClassifier(bert_mlm, SENTIMENT)
    p = clf.predict_proba(["it is dull", "a great film"], Verbalizer.of({"neg": ["bad", "not good"], "pos": ["good"]}))
    assert p.shape == (2, 2)
    torch.testing.assert_close(p.exp().sum(1), torch.ones(2))


def test_unrepresentable_verbalizers_raise_clear_errors(bert_mlm):
    clf = MLMClassifier(bert_mlm, SENTIMENT)
    with pytest.raises(VerbalizerError, match="cannot be represented.*unknown token"):
        clf.classify("a film", {"neg": ["awful"], "pos": ["good"]})  # "awful" is not in the vocabulary
    with pytest.raises(VerbalizerError, match="same tokens"):
        clf.classify("a film", {"neg": ["good"], "pos": ["good"]})
    with pytest.raises(VerbalizerError, match="max_tokens=2"):
        MLMClassifier(bert_mlm, SENTIMENT, max_verbalizer_tokens=2).classify(
            "a film", {"neg": ["not very good"], "pos": ["good"]})
    with pytest.raises(VerbalizerError, match="no tokens"):
        clf.classify("a film", {"neg": [" "], "pos": ["good"]})


def test_k_shot_examples_enter_the_prompt_and_change_the_answer(bert_mlm):
    clf = MLMClassifier(bert_mlm, SENTIMENT)
    labels = ["negative", "positive"]
    shots = [("the plot was dull", "negative"), ("a great film", "positive")]
    verb = Verbalizer.of(labels)
    prompt = SENTIMENT.render(bert_mlm.tokenizer, "it is fun", ["negative", "positive"],
                              examples=clf.examples_for(verb, shots))
    assert prompt.count("[MASK]") == 1 and "SENTENCE: a great film" in prompt and "ANSWER: [unused0] positive" in prompt
    zero, few = clf.classify("it is fun", labels), clf.classify("it is fun", labels, shots)
    assert sum(few.values()) == pytest.approx(1.0)
    assert zero["positive"] != pytest.approx(few["positive"], abs=1e-6)
    mc = clf.score_choices("what is the capital of france ?", ["paris", "london"],
                           [Example("the capital of france ?", "A", ("paris", "london"))])
    assert len(mc) == 2 and sum(mc) == pytest.approx(1.0)


def test_answer_marker_only_where_the_tokenizer_has_it(bert_tok):
    no_marker = make_mlm_tokenizer("bert", with_marker=False)
    t = PromptTemplate()
    assert t.render(bert_tok, "q", ["x", "y"]).endswith("ANSWER: [unused0] [MASK]")
    assert t.render(no_marker, "q", ["x", "y"]).endswith("ANSWER: [MASK]")


def test_roberta_style_mask_token_and_batches(modernbert_mlm):
    clf = MLMClassifier(modernbert_mlm, batch_size=2)
    out = clf.score_choices_batch(["q one ?", "q two ?", "q three ?"], [["a", "b"], ["a", "b", "c"], ["x", "y"]])
    assert [len(o) for o in out] == [2, 3, 2]
    assert all(abs(sum(o) - 1) < 1e-5 for o in out)
    assert "<mask>" in clf.template.render(modernbert_mlm.tokenizer, "q", ["a", "b"])
    single = clf.score_choices("q two ?", ["a", "b", "c"])
    assert single == pytest.approx(out[1], abs=1e-5)  # batching and padding do not change the answer


def test_mask_in_user_text_is_rejected(bert_mlm):
    from specdec.errors import InputError

    with pytest.raises(InputError, match="mask tokens"):
        MLMClassifier(bert_mlm).score_choices("the [MASK] was", ["a", "b"])


def test_over_long_prompts_keep_the_answer_slot(bert_tok):
    mlm = MLM(model=make_bert(bert_tok), tokenizer=bert_tok, name="t")
    clf = MLMClassifier(mlm, max_length=24)
    probs = clf.score_choices("the movie " * 50, ["good", "bad"])
    assert sum(probs) == pytest.approx(1.0)
