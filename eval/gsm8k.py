"""GSM8K: prompts (lm-eval 5-shot, 8-shot chain of thought, zero-shot chat), answer extraction, and
generation through the engine (any drafter / policy) with accuracy and speed per question.

Extraction filters (all return a string, "[invalid]" when nothing is found):
  strict     lm-eval gsm8k "strict-match": the first ``#### N``           regex ``#### (\\-?[0-9\\.\\,]+)``
  flexible   lm-eval "flexible-extract": the last number                   regex ``(-?[$0-9.,]{2,})|(-?[0-9]+)``
  answer_is  lm-eval gsm8k-cot "strict-match": ``The answer is N.``         regex ``The answer is (\\-?[0-9\\.\\,]+).``
  boxed      the content of the last ``\\boxed{...}`` (nested braces kept)
  auto       boxed, else a lenient "the (final) answer is N", else strict, else flexible
Matching: "exact" is lm-eval's exact_match for gsm8k (ignore case; delete ',', '$', everything up to
'#### ' and a final '.'; then string equality), used by gsm8k / gsm8k_cot so results agree with lm-eval;
"numeric" (gsm8k_chat) compares the extracted value as a number (also reads 1/2, \\frac{1}{2}, 50%).
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from specdec.errors import DataError, InputError

from eval.data import GSM8KItem
from eval.lm import cut_at_stop  # noqa: F401  (re-exported: the task's post-processing)
from eval.tasks import TaskSpec

INVALID = "[invalid]"
_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
_ANSWER_IS = re.compile(r"The answer is (\-?[0-9\.\,]+).")
_ANSWER_IS_LENIENT = re.compile(
    r"(?i)the\s+(?:final\s+)?answer\s+is\s*:?\s*(?:\*\*)?\s*\\?\$?\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?)")
_IGNORE = (",", r"\$", r"(?s).*#### ", r"\.$")  # lm-eval gsm8k regexes_to_ignore, in order
CALC = re.compile(r"<<[^>]*>>")  # GSM8K calculator annotations


def _regex(pattern: re.Pattern, text: str, group_select: int) -> str:
    """lm-eval's RegexFilter: findall, pick a match, the first non-empty group of a tuple, strip."""
    found = pattern.findall(text or "")
    if not found:
        return INVALID
    m = found[group_select]
    if isinstance(m, tuple):
        m = next((g for g in m if g), None)
        if m is None:
            return INVALID
    return m.strip()


def extract_strict(text: str) -> str:
    return _regex(_STRICT, text, 0)


def extract_flexible(text: str) -> str:
    return _regex(_FLEXIBLE, text, -1)


def extract_answer_is(text: str) -> str:
    return _regex(_ANSWER_IS, text, 0)


def extract_boxed(text: str) -> str:
    """The content of the last \\boxed{...} (or \\fbox{...}), braces balanced; INVALID when none closes."""
    text = text or ""
    starts = [m.end() for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)]
    for start in reversed(starts):
        depth = 1
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i].strip()
    return INVALID


def extract_auto(text: str) -> str:
    for f in (extract_boxed, lambda t: _regex(_ANSWER_IS_LENIENT, t, -1), extract_strict, extract_flexible):
        got = f(text)
        if got != INVALID:
            return got
    return INVALID


EXTRACTORS: dict[str, Callable[[str], str]] = {
    "strict": extract_strict, "flexible": extract_flexible, "answer_is": extract_answer_is,
    "boxed": extract_boxed, "auto": extract_auto,
}


def lm_eval_normalize(s: str) -> str:
    for pat in _IGNORE:
        s = re.sub(pat, "", s)
    return s.lower()


def exact_match(pred: str, reference: str) -> bool:
    """lm-eval's exact_match for gsm8k (reference = the full worked answer or just the number)."""
    return lm_eval_normalize(pred) == lm_eval_normalize(reference)


def to_number(s: str) -> float | None:
    """A number from an extracted answer: '$1,234.50', '-7', '50%', '3/4', '\\frac{3}{4}', '\\text{18} dollars'."""
    if s is None or s == INVALID:
        return None
    t = s.strip()
    t = re.sub(r"\\text\{([^}]*)\}", r"\1", t)
    t = re.sub(r"\\(?:d|t)?frac\{([^}]*)\}\{([^}]*)\}", r"(\1)/(\2)", t)
    t = t.replace("\\$", "").replace("$", "").replace("\\%", "").replace("%", "").replace("\\!", "")
    t = t.replace("\\,", "").replace(",", "").replace("{", "").replace("}", "").strip()
    m = re.fullmatch(r"\(?(-?\d+(?:\.\d+)?)\)?\s*/\s*\(?(-?\d+(?:\.\d+)?)\)?", t)
    if m:
        den = float(m.group(2))
        return float(m.group(1)) / den if den else None
    m = re.match(r"^(-?\d+(?:\.\d+)?)\.?(?:\s|$|[a-zA-Z])", t + " ")
    if m:
        return float(m.group(1))
    nums = re.findall(r"-?\d+(?:\.\d+)?", t)
    return float(nums[-1]) if len(nums) == 1 else None


def numeric_match(pred: str, reference: str) -> bool:
    a, b = to_number(pred), to_number(reference.split("####")[-1])
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)


def is_correct(pred: str, reference: str, match: str) -> bool:
    return numeric_match(pred, reference) if match == "numeric" else exact_match(pred, reference)


# ------------------------------------------------------------------------------------------ prompts
@dataclass(frozen=True)
class Shot:
    question: str
    answer: str  # as shown after the question (full worked answer, or the CoT rationale)


def cot_answer(answer: str) -> str:
    """A GSM8K worked answer as a chain of thought: calculator annotations removed, lines joined by
    spaces, '#### N' written as 'The answer is N.'."""
    body, _, final = answer.rpartition("####")
    body = " ".join(line.strip() for line in CALC.sub("", body).strip().splitlines() if line.strip())
    return f"{body} The answer is {final.strip()}.".strip()


def read_fewshot_file(path: str) -> list[Shot]:
    """Few-shot exemplars from a file: lm-eval's gsm8k-cot.yaml (fewshot_config.samples: question/target)
    or JSON lines with {"question", "answer" | "target"}."""
    from pathlib import Path

    from specdec.validate import read_utf8

    p = Path(path).expanduser()
    if not p.is_file():
        what = "a folder" if p.is_dir() else "missing"
        raise DataError(f"few-shot file {p} is {what} (give lm_eval/tasks/gsm8k/gsm8k-cot.yaml or a JSONL file)")
    text = read_utf8(p, f"few-shot file {p}")
    rows: list[dict]
    if p.suffix in (".yaml", ".yml"):
        import yaml

        try:
            doc = yaml.safe_load(text)
            rows = doc["fewshot_config"]["samples"]
        except Exception as e:  # noqa: BLE001
            raise DataError(f"{p}: no fewshot_config.samples list ({type(e).__name__}: {e})") from None
    else:
        from specdec.jsonl import read_jsonl

        rows = [r for _, r in read_jsonl(p, "not JSON")]
    shots = []
    for i, r in enumerate(rows):
        ans = r.get("target", r.get("answer")) if isinstance(r, dict) else None
        if not isinstance(r, dict) or not isinstance(r.get("question"), str) or not isinstance(ans, str):
            raise DataError(f"{p}: exemplar {i + 1} needs string fields question and target (or answer)")
        shots.append(Shot(r["question"], ans))
    if not shots:
        raise DataError(f"{p}: no exemplars")
    return shots


class GSM8KPrompter:
    """Builds each test question's prompt text (or chat messages) for a task."""

    def __init__(self, task: TaskSpec, train: Sequence[GSM8KItem] = (), fewshot_file: str | None = None) -> None:
        self.task = task
        self.fixed: list[Shot] | None = None
        self.train = list(train)
        if task.num_fewshot and fewshot_file:
            self.fixed = read_fewshot_file(fewshot_file)[: task.num_fewshot]
        elif task.num_fewshot:
            if len(self.train) < task.num_fewshot + 1:
                raise DataError(f"{task.name} needs {task.num_fewshot} few-shot examples from the "
                                f"{task.fewshot_split} split; it has {len(self.train)}")
            if task.fewshot_sampler == "first_n":
                self.fixed = [self._shot(x) for x in self.train[: task.num_fewshot]]
        self._rnd = random.Random(task.fewshot_seed)
        self._draws: list[list[int]] = []

    def _shot(self, x: GSM8KItem) -> Shot:
        return Shot(x.question, cot_answer(x.answer) if self.task.fewshot_answer == "cot" else x.answer)

    def shots_for(self, index: int) -> list[Shot]:
        """lm-eval's default sampler: random.Random(seed), one rnd.sample(train, n) per test question, in
        test order (so question i gets the i-th draw, however the run was limited or resumed)."""
        if self.fixed is not None or not self.task.num_fewshot:
            return self.fixed or []
        while len(self._draws) <= index:  # the i-th draw belongs to test question i
            self._draws.append(self._rnd.sample(range(len(self.train)), self.task.num_fewshot))
        return [self._shot(self.train[j]) for j in self._draws[index]]

    def text(self, item: GSM8KItem) -> str:
        t = self.task
        parts = [t.description]
        for s in self.shots_for(item.index):
            parts.append(t.doc_to_text.format(question=s.question) + t.target_delimiter + s.answer
                         + t.fewshot_delimiter)
        parts.append(t.doc_to_text.format(question=item.question))
        return "".join(parts)

    def prompt(self, item: GSM8KItem) -> str | list[dict]:
        """Raw text, or (chat tasks) the user turn as a message list."""
        if self.task.chat:
            content = self.text(item)
            if self.task.chat_instruction:
                content = f"{content}\n{self.task.chat_instruction}"
            return [{"role": "user", "content": content}]
        return self.text(item)


def prompt_sha256(prompt: str | list[dict]) -> str:
    """sha256 of the prompt text (lm-eval's samples' prompt_hash); chat prompts: of their JSON."""
    import hashlib
    import json

    text = prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def score(task: TaskSpec, item: GSM8KItem, text: str) -> dict:
    match = "numeric" if task.chat else "exact"
    preds = {name: EXTRACTORS[name](text) for name in task.extractors}
    return {"target": item.target, "preds": preds,
            "correct": {name: is_correct(p, item.answer, match) for name, p in preds.items()}}


def check_chat_template(tokenizer, task: TaskSpec, model_name: str) -> None:
    if task.chat and not getattr(tokenizer, "chat_template", None):
        raise InputError(f"{task.name} is a chat task but the model {model_name!r} has no chat template; "
                         f"use gsm8k (5-shot) or gsm8k_cot (8-shot), which need none")


# ------------------------------------------------------------------------------------------ requests and records
def gen_request(task: TaskSpec, prompter: GSM8KPrompter, item: GSM8KItem, tokenizer, max_new_tokens: int | None = None):
    """(the GenRequest of one question, its prompt): token ids exactly as the engine sees them (raw text with
    the tokenizer's special tokens; chat turns through the template), built once for every backend."""
    from specdec.prompt import encode_prompt

    from eval.lm import GenRequest

    prompt = prompter.prompt(item)
    ids = encode_prompt(tokenizer, prompt, chat=isinstance(prompt, list))
    return GenRequest(item.id, ids, max_new_tokens or task.max_new_tokens, tuple(task.stop)), prompt


def gen_record(task: TaskSpec, item: GSM8KItem, gen, prompt, prompt_tokens: int, backend: str | None = None) -> dict:
    """One question's record from a Generation (every backend's)."""
    rec = {"id": item.id, "prompt_tokens": prompt_tokens, "prompt_sha256": prompt_sha256(prompt), "text": gen.text,
           **score(task, item, gen.text), "n_tokens": len(gen.token_ids), "speed": gen.speed}
    if gen.plain is not None:
        base = gen.plain
        rec["plain"] = {"text": base.text, **score(task, item, base.text), "n_tokens": len(base.token_ids),
                        "speed": base.speed, "identical": base.token_ids == gen.token_ids}
    if backend:
        rec["backend"] = backend
    return rec


def make_engine_evaluator(decoder, task: TaskSpec, prompter: GSM8KPrompter, spec=None, compare_plain: bool = False,
                          max_new_tokens: int | None = None) -> Callable[[GSM8KItem], dict]:
    """item -> record: {"id", "prompt_tokens", "text", "target", "preds", "correct", "speed", ["plain"]}.
    With compare_plain, the same question is also decoded without speculation (right after, on the same
    loaded model) to measure the wall-clock saving and check the outputs are identical."""
    from eval.lm import EngineLM

    lm = EngineLM(decoder, spec, compare_plain)

    def evaluate(item: GSM8KItem) -> dict:
        req, prompt = gen_request(task, prompter, item, decoder.tokenizer, max_new_tokens)
        (_, gen), = lm.generate_until([req])
        return gen_record(task, item, gen, prompt, len(req.prompt_ids))

    return evaluate


# ------------------------------------------------------------------------------------------ summary
def _speed(records: list[dict], key: str | None = None) -> dict:
    rows = [r[key]["speed"] if key else r["speed"] for r in records if (r.get(key) if key else r).get("speed")]
    tokens = sum(s["new_tokens"] for s in rows)
    secs = sum(s["decode_s"] for s in rows)
    drafted, accepted, rounds = (sum(s.get(k, 0) for s in rows) for k in ("drafted", "accepted", "rounds"))
    return {"new_tokens": tokens, "seconds": secs, "tokens_per_s": tokens / secs if secs else 0.0,
            "acceptance_rate": accepted / drafted if drafted else 0.0,
            "mean_accepted_length": tokens / rounds if rounds else 0.0,
            "compile_s": sum(s.get("compile_s", 0.0) for s in rows), "n": len(rows)}


def summarize(task: TaskSpec, records: list[dict]) -> dict:
    n = len(records)
    acc = {name: (sum(bool(r["correct"].get(name)) for r in records) / n if n else 0.0) for name in task.extractors}
    out = {"task": task.name, "n": n, "accuracy": acc, "primary": task.primary,
           "acc": acc.get(task.primary, 0.0), "speed": _speed(records)}
    plain = [r for r in records if "plain" in r]
    if plain:
        pacc = {name: sum(bool(r["plain"]["correct"].get(name)) for r in plain) / len(plain) for name in task.extractors}
        ps = _speed(plain, "plain")
        spec_s = sum(r["speed"]["decode_s"] for r in plain)
        out["plain"] = {"n": len(plain), "accuracy": pacc, "speed": ps,
                        "identical_outputs": sum(bool(r["plain"]["identical"]) for r in plain),
                        "accuracy_identical": all(pacc[k] == _acc_of(plain, k) for k in task.extractors),
                        "wall_saving": 1 - spec_s / ps["seconds"] if ps["seconds"] else 0.0,
                        "speedup": ps["seconds"] / spec_s if spec_s else 0.0,  # wall-clock ratio, same questions
                        "tokens_per_s_ratio": out["speed"]["tokens_per_s"] / ps["tokens_per_s"] if ps["tokens_per_s"] else 0.0}
    return out


def _acc_of(records: list[dict], name: str) -> float:
    return sum(bool(r["correct"].get(name)) for r in records) / len(records) if records else 0.0
