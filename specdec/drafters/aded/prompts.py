"""`broad`: a mixed set of training prompts for `specdec aded distill`, none from a benchmark.

Why: the bundled store holds one style (GSM8K-like answers of the 0.5B draft), and ADED's weak categories are prose
(writing, STEM and humanities explanations, role play, QA: 0.91-1.00x in run h). The target answers every kind of
request in a recognisable style ("Certainly! Here's ...", "### 1. ...", "In conclusion, ..."), so a store of its
answers to many kinds of request should be accepted more often than one kind. The prompts come from data that is
not measured (GSM8K train, MMLU val, SST-2 train), from code that lies on every machine (the Python standard
library's documented functions) and from fixed templates over MMLU's subject names; the sources are interleaved so
that any `--limit` takes a balanced mix. Deterministic: the same data folder and Python give the same list.
"""
from __future__ import annotations

import ast
import csv
from itertools import zip_longest
from math import gcd
from pathlib import Path

from specdec.errors import DataError

# templates over MMLU's subject names ("high school european history"): writing, role play, explanation, advice
TOPIC_TEMPLATES = (
    "Compose an engaging blog post about {t}, highlighting what makes it fascinating.",
    "Pretend to be a passionate teacher of {t}. Explain to a new student why the subject matters.",
    "What are the key ideas of {t}, and how do they relate to everyday life?",
    "Write a short persuasive essay on why everyone should learn some {t}.",
    "Provide insights into the main debates and open questions in {t}.",
    "Draft a professional email inviting colleagues to a one-day workshop on {t}.",
    "Write a short story about a character whose life changes after discovering {t}.",
    "List five questions a beginner might ask about {t}, each with a concise answer.",
)
REVIEW_TEMPLATES = (
    "Evaluate the following movie review on a scale of 1 to 5, with 1 being very negative and 5 being very "
    "positive, and explain your rating: {r}",
    "Rewrite the following movie review as a polished paragraph for a newspaper: {r}",
    "Summarize: {r}",
)
STDLIB_MODULES = ("textwrap", "statistics", "heapq", "bisect", "fractions", "shlex", "difflib", "calendar",
                  "string", "functools", "itertools", "colorsys", "fnmatch", "glob", "base64", "html", "ipaddress",
                  "json", "csv", "random", "datetime", "pathlib", "urllib.parse", "email.utils", "zipfile")


def _mmlu(data: Path, split: str) -> list[tuple[str, list[str]]]:
    """(subject, [question, A, B, C, D, answer]) rows of one MMLU split, files sorted."""
    folder = data / "mmlu" / split
    if not folder.is_dir():
        raise DataError(f"--prompts: {folder} not found (the data folder needs mmlu/{split}/)")
    rows = []
    for f in sorted(folder.glob("*.csv")):
        subject = f.stem.rsplit("_", 1)[0].replace("_", " ")
        with open(f, newline="", encoding="utf-8") as fh:
            rows += [(subject, r) for r in csv.reader(fh) if len(r) == 6]
    return rows


def _mmlu_prompts(data: Path) -> list[str]:
    out = []
    for _subject, (q, a, b, c, d, _ans) in _mmlu(data, "val"):
        out.append(f"{q}\nA. {a}\nB. {b}\nC. {c}\nD. {d}\nAnswer with the correct letter and explain why.")
    return out


def _topic_prompts(data: Path) -> list[str]:
    """Every (template, subject) pair once, in an order where any first N vary both: the i-th takes template
    i mod 8 and subject i mod 57 (coprime counts: all pairs in 456 steps)."""
    subjects = sorted({s for s, _r in _mmlu(data, "dev")})
    n, m = len(TOPIC_TEMPLATES), len(subjects)
    if gcd(n, m) != 1:  # the pairs would repeat before covering all; fall back to template-major order
        return [t.format(t=s) for t in TOPIC_TEMPLATES for s in subjects]
    return [TOPIC_TEMPLATES[i % n].format(t=subjects[i % m]) for i in range(n * m)]


def _review_prompts(data: Path) -> list[str]:
    path = data / "sst2" / "train.tsv"
    if not path.is_file():
        raise DataError(f"--prompts: {path} not found (the data folder needs sst2/train.tsv)")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)  # a review's quote marks are text
        reviews = [r[0].strip() for r in rows if len(r) == 2 and len(r[0].split()) >= 12]
    return [REVIEW_TEMPLATES[i % len(REVIEW_TEMPLATES)].format(r=r) for i, r in enumerate(reviews)]


def _code_prompts() -> list[str]:
    """'Write a Python function `name(args)` that <its docstring's first line>' for the documented public
    functions of a few standard-library modules (ast, no import)."""
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for mod in STDLIB_MODULES:
        path = root / (mod.replace(".", "/") + ".py")
        if not path.is_file():
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            doc = ast.get_docstring(node) if isinstance(node, ast.FunctionDef) else None
            if not doc or node.name.startswith("_"):
                continue
            first = doc.strip().splitlines()[0].strip().rstrip(".")
            if len(first.split()) < 4:
                continue
            args = ", ".join(a.arg for a in node.args.args)
            out.append(f"Write a Python function `{node.name}({args})`: {first[0].lower() + first[1:]}. "
                       f"Include a docstring and a short usage example.")
    return out


def gsm8k_train_questions(data: Path) -> list[str]:
    """GSM8K train's questions (`--prompts gsm8k`, and one of `broad`'s sources)."""
    from specdec.jsonl import read_jsonl

    path = data / "gsm8k" / "train.jsonl"
    if not path.is_file():
        raise DataError(f"--prompts: {path} not found (the data folder needs gsm8k/train.jsonl)")
    return [rec["question"] for _, rec in read_jsonl(path)]


def broad_prompts(data: Path) -> list[str]:
    """The sources interleaved one prompt each in turn (topics, code, GSM8K, MMLU val, SST-2), so the first N are
    a balanced mix."""
    sources = (_topic_prompts(data), _code_prompts(), gsm8k_train_questions(data), _mmlu_prompts(data),
               _review_prompts(data))
    return [p for group in zip_longest(*sources) for p in group if p is not None]

