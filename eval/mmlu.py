"""MMLU: lm-eval prompts, log-likelihood scoring with the engine's target model, the MLM classifier,
and per-subject / per-category / micro / macro accuracy.

Scoring one question costs one prompt prefill plus ONE extra forward: every choice continuation is run
together as a tree (the last context token, then each continuation as its own branch; the engine's
runner takes a tree mask and per-node positions), so 4 choices cost about as much as 1. Consecutive
questions of one subject share their prompt head (description + few-shot examples): that KV cache is
kept and only the differing tail is prefilled again.

Tokenisation follows lm-eval's ``_encode_pair``: trailing spaces of the context move to the
continuation; whole = enc(context + continuation), continuation tokens = whole[len(enc(context)):].
"""
from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import torch

from eval.data import MMLUItem
from eval.lm import LoglikRequest, LoglikScorer, encode_pair  # noqa: F401  (re-exported: the engine's scorer)
from eval.tasks import LETTERS, MMLU_CATEGORIES, MMLU_SUBJECTS, TaskSpec


# ------------------------------------------------------------------------------------------ prompts
def sha256(text: str) -> str:
    """The prompt's digest, computed as lm-eval's samples' prompt_hash (so prompts can be compared)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def subject_name(subject: str) -> str:
    return subject.replace("_", " ")


def doc_text(task: TaskSpec, item: MMLUItem) -> str:
    c = item.choices
    return task.doc_to_text.format(question=item.question.strip(), A=c[0], B=c[1], C=c[2], D=c[3])


def continuations(task: TaskSpec, item: MMLUItem) -> list[str]:
    """What is scored after the context: ' A'..' D' (letter) or ' <answer text>' (cloze)."""
    if task.scoring == "letter":
        return [task.target_delimiter + L for L in LETTERS[: len(item.choices)]]
    return [task.target_delimiter + c for c in item.choices]


def context(task: TaskSpec, item: MMLUItem, shots: Sequence[MMLUItem] = ()) -> str:
    """lm-eval's plain-text prompt: description, then each shot as text + ' ' + answer + '\\n\\n', then the question."""
    parts = [task.description.format(subject=subject_name(item.subject))]
    for s in shots:
        ans = LETTERS[s.answer] if task.scoring == "letter" else s.choices[s.answer]
        parts.append(doc_text(task, s) + task.target_delimiter + ans + task.fewshot_delimiter)
    parts.append(doc_text(task, item))
    return "".join(parts)


# ------------------------------------------------------------------------------------------ scoring
def fewshot_for(task: TaskSpec, subject: str, dev: dict[str, list[MMLUItem]]) -> list[MMLUItem]:
    if not task.num_fewshot:
        return []
    pool = dev.get(subject, [])
    if len(pool) < task.num_fewshot:
        from specdec.errors import DataError

        raise DataError(f"{task.num_fewshot}-shot {subject} needs {task.num_fewshot} {task.fewshot_split} "
                        f"questions; the {task.fewshot_split} file has {len(pool)}")
    return pool[: task.num_fewshot]  # lm-eval's first_n sampler


def loglik_request(task: TaskSpec, item: MMLUItem, dev: dict[str, list[MMLUItem]], tokenizer):
    """(the LoglikRequest of one question, its prompt text): built once, whatever backend scores it."""
    ctx = context(task, item, fewshot_for(task, item.subject, dev))
    pairs = [encode_pair(tokenizer, ctx, c) for c in continuations(task, item)]
    return LoglikRequest(item.id, pairs[0][0], [b for _, b in pairs]), ctx


def loglik_record(task: TaskSpec, item: MMLUItem, ll: list[float], ctx: str) -> dict:
    """One question's record from its continuations' log-likelihoods (every backend's)."""
    pred = max(range(len(ll)), key=lambda i: ll[i])  # first max on ties, like numpy argmax
    rec = {"id": item.id, "subject": item.subject, "answer": item.answer, "pred": pred,
           "correct": pred == item.answer, "loglik": ll, "prompt_sha256": sha256(ctx)}
    if task.scoring == "cloze":  # lm-eval acc_norm: loglik per byte of the continuation
        norm = [v / len(c.encode("utf-8")) for v, c in zip(ll, continuations(task, item))]
        pred_n = max(range(len(norm)), key=lambda i: norm[i])
        rec.update(pred_norm=pred_n, correct_norm=pred_n == item.answer)
    return rec


def make_loglik_evaluator(task: TaskSpec, scorer: LoglikScorer,
                          dev: dict[str, list[MMLUItem]]) -> Callable[[MMLUItem], dict]:
    def evaluate(item: MMLUItem) -> dict:
        req, ctx = loglik_request(task, item, dev, scorer.tokenizer)
        ll = [r[0] for r in scorer.score_ids(req.context, req.continuations)]
        return loglik_record(task, item, ll, ctx)

    return evaluate


def make_mlm_evaluator(classifier) -> Callable[[MMLUItem], dict]:
    """The MLM generative classifier: probability of each choice letter given the question and choices."""

    def evaluate(item: MMLUItem) -> dict:
        probs = [float(p) for p in classifier.score_choices(item.question.strip(), list(item.choices))]
        pred = max(range(len(probs)), key=lambda i: probs[i])
        return {"id": item.id, "subject": item.subject, "answer": item.answer, "pred": pred,
                "correct": pred == item.answer, "probs": probs}

    return evaluate


# ------------------------------------------------------------------------------------------ summary
def aggregate(records: Sequence[dict], key: str = "correct") -> dict:
    """Per-subject accuracy; per-category and overall micro (weighted by questions, as lm-eval's groups)
    and macro (mean over subjects) averages."""
    by_subject: dict[str, list[bool]] = {}
    for r in records:
        by_subject.setdefault(r["subject"], []).append(bool(r[key]))
    subjects = {s: {"n": len(v), "correct": sum(v), "acc": sum(v) / len(v),
                    "category": MMLU_SUBJECTS.get(s, "other")} for s, v in sorted(by_subject.items())}

    def group(names: list[str]) -> dict:
        n = sum(subjects[s]["n"] for s in names)
        c = sum(subjects[s]["correct"] for s in names)
        return {"n": n, "subjects": len(names), "micro": c / n if n else 0.0,
                "macro": sum(subjects[s]["acc"] for s in names) / len(names) if names else 0.0}

    categories = {}
    for cat in MMLU_CATEGORIES:
        names = [s for s in subjects if subjects[s]["category"] == cat]
        if names:
            categories[cat] = group(names)
    overall = group(list(subjects))
    return {"subjects": subjects, "categories": categories, "micro": overall["micro"], "macro": overall["macro"],
            "n": overall["n"]}


def summarize(task: TaskSpec, records: Sequence[dict]) -> dict:
    agg = aggregate(records)
    out = {"task": task.name, "n": agg["n"], "acc": agg["micro"], "primary": "acc", **agg}
    if task.scoring == "cloze" and records and "correct_norm" in records[0]:
        norm = aggregate(records, "correct_norm")
        out["acc_norm"] = {"micro": norm["micro"], "macro": norm["macro"], "categories": norm["categories"]}
    return out
