"""MMLU prompts (lm-eval's template), log-likelihood scoring against a manual computation, aggregation."""
import math

import pytest
import torch

from eval import mmlu as M
from eval.data import MMLUItem
from eval.tasks import get_task

ITEM = MMLUItem("high_school_us_history/0", "high_school_us_history", "  Who was first?\n", ("Washington", "Adams", "Lincoln", "Grant"), 0)
SHOT = MMLUItem("high_school_us_history/d0", "high_school_us_history", "Q1?", ("a", "b", "c", "d"), 2)


def test_letter_prompt_is_lm_evals():
    task = get_task("mmlu")
    assert M.context(task, ITEM) == (
        "The following are multiple choice questions (with answers) about high school us history.\n\n"
        "Who was first?\nA. Washington\nB. Adams\nC. Lincoln\nD. Grant\nAnswer:")
    assert M.continuations(task, ITEM) == [" A", " B", " C", " D"]
    two = M.context(get_task("mmlu", num_fewshot=2), ITEM, [SHOT, SHOT])
    shot = "Q1?\nA. a\nB. b\nC. c\nD. d\nAnswer: C\n\n"
    assert two == ("The following are multiple choice questions (with answers) about high school us history.\n\n"
                   + shot + shot + "Who was first?\nA. Washington\nB. Adams\nC. Lincoln\nD. Grant\nAnswer:")


def test_cloze_prompt_is_lm_evals():
    task = get_task("mmlu_cloze")
    assert M.context(task, ITEM, [SHOT]) == (
        "The following are questions (with answers) about high school us history.\n\n"
        "Question: Q1?\nAnswer: c\n\nQuestion: Who was first?\nAnswer:")
    assert M.continuations(task, ITEM) == [" Washington", " Adams", " Lincoln", " Grant"]


def test_encode_pair_moves_trailing_space(btok):
    ctx, cont = M.encode_pair(btok, "Answer: ", "A")
    assert btok.decode(ctx) == "Answer:" and btok.decode(cont) == " A"


def manual_loglik(model, ctx, cont):
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].float(), -1)
    return sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))


@pytest.mark.parametrize("task_name", ["mmlu", "mmlu_cloze"])
def test_scores_match_a_manual_computation_and_pick_the_argmax(decoder, bmodel, btok, task_name):
    task = get_task(task_name, num_fewshot=1)
    scorer = M.LoglikScorer(decoder.target, btok)
    evaluate = M.make_loglik_evaluator(task, scorer, {ITEM.subject: [SHOT], "anatomy": [SHOT]})
    for item in (ITEM, MMLUItem("anatomy/1", "anatomy", "Which?", ("xx", "y", "zzz zz", "w"), 3)):
        rec = evaluate(item)
        ctx = M.context(task, item, [SHOT])
        want = []
        for c in M.continuations(task, item):
            c_ids, k_ids = M.encode_pair(btok, ctx, c)
            want.append(manual_loglik(bmodel, c_ids, k_ids))
        assert rec["loglik"] == pytest.approx(want, abs=1e-4)
        assert rec["pred"] == max(range(4), key=lambda i: want[i])
        assert rec["correct"] == (rec["pred"] == item.answer)
        if task.scoring == "cloze":
            norm = [w / len(c.encode()) for w, c in zip(want, M.continuations(task, item))]
            assert rec["pred_norm"] == max(range(4), key=lambda i: norm[i])


def test_prefix_cache_reuse_gives_the_same_scores(decoder, btok):
    s1 = M.LoglikScorer(decoder.target, btok)
    a = s1.score("shared head. question one\nAnswer:", [" A", " B"])
    b = s1.score("shared head. question two\nAnswer:", [" A", " B"])  # reuses the cached head
    fresh = M.LoglikScorer(decoder.target, btok)
    decoder.target.reset()
    b2 = fresh.score("shared head. question two\nAnswer:", [" A", " B"])
    assert [x[0] for x in b] == pytest.approx([x[0] for x in b2], abs=1e-4)
    assert a != b


def test_long_context_is_left_truncated(decoder, btok):
    from specdec.api import SpecDecoder
    from specdec.config import EngineConfig

    small = SpecDecoder(decoder.target.hf_model, btok, engine=EngineConfig(dtype="float32", max_context=64))
    s = M.LoglikScorer(small.target, btok)
    out = s.score("x" * 200 + "\nAnswer:", [" A", " B"])
    assert len(out) == 2 and s.truncated == 1 and all(math.isfinite(o[0]) for o in out)


def test_aggregate_micro_macro_per_category():
    def recs(subject, correct, n):
        return [{"subject": subject, "correct": i < correct} for i in range(n)]

    records = recs("anatomy", 3, 4) + recs("astronomy", 1, 2) + recs("philosophy", 0, 4) + recs("marketing", 2, 2)
    agg = M.aggregate(records)
    assert agg["subjects"]["anatomy"] == {"n": 4, "correct": 3, "acc": 0.75, "category": "stem"}
    stem = agg["categories"]["stem"]
    assert stem["n"] == 6 and stem["micro"] == pytest.approx(4 / 6) and stem["macro"] == pytest.approx((0.75 + 0.5) / 2)
    assert agg["categories"]["humanities"]["micro"] == 0.0 and agg["categories"]["other"]["micro"] == 1.0
    assert "social_sciences" not in agg["categories"]
    assert agg["micro"] == pytest.approx(6 / 12)
    assert agg["macro"] == pytest.approx((0.75 + 0.5 + 0.0 + 1.0) / 4)
    assert agg["n"] == 12


def test_mlm_evaluator_uses_score_choices():
    class Fake:
        def score_choices(self, question, choices):
            assert question == "Who was first?" and len(choices) == 4
            return [0.1, 0.2, 0.6, 0.1]

    rec = M.make_mlm_evaluator(Fake())(ITEM)
    assert rec["pred"] == 2 and rec["correct"] is False and rec["probs"] == [0.1, 0.2, 0.6, 0.1]
