"""Benchmark prompts: Spec-Bench, GSM8K or a file of your own.

    load_prompts("spec_bench:8")                      # the first 8 Spec-Bench questions (first turn)
    load_prompts("spec_bench:2", per_category=True)   # the first 2 of each Spec-Bench category
    load_prompts("gsm8k:20")                          # the first 20 GSM8K test questions
    load_prompts("my_prompts.txt")                    # one prompt per line (.txt) or {"prompt": ...} per line (.jsonl)

The data folder: specdec.datadir.resolve_data_dir (`data_dir` > $SPECDEC_DATA > <project>/../shared/data).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from specdec.datadir import DATA_ENV, resolve_data_dir
from specdec.errors import DataError, InputError

DATASETS = {"spec_bench": Path("spec_bench") / "question.jsonl", "gsm8k": Path("gsm8k") / "test.jsonl"}


@dataclass(frozen=True)
class BenchPrompt:
    text: str
    source: str  # "spec_bench", "gsm8k" or the file name
    category: str = ""
    id: str = ""


def _read_jsonl(path: Path) -> list[dict]:
    from specdec.jsonl import read_jsonl

    rows = []
    for n, row in read_jsonl(path):
        if not isinstance(row, dict):
            raise DataError(f"{path}:{n}: expected a JSON object per line")
        rows.append(row)
    return rows


def _dataset_file(name: str, data_dir: str | os.PathLike | None) -> Path:
    root = resolve_data_dir(data_dir)
    path = root / DATASETS[name]
    if not path.is_file():
        raise DataError(
            f"{name}: {path} not found; pass --data-dir DIR (or set ${DATA_ENV}) to the folder holding {DATASETS[name]}"
        )
    return path


def _take(rows: list[BenchPrompt], n: int | None, per_category: bool) -> list[BenchPrompt]:
    if n is None:
        return rows
    if not per_category:
        return rows[:n]
    seen: dict[str, int] = {}
    out = []
    for r in rows:
        if seen.get(r.category, 0) < n:
            seen[r.category] = seen.get(r.category, 0) + 1
            out.append(r)
    return out


def _spec_bench(path: Path) -> list[BenchPrompt]:
    out = []
    for i, row in enumerate(_read_jsonl(path)):
        turns = row.get("turns")
        if not turns or not isinstance(turns[0], str):
            raise DataError(f"{path}: row {i + 1} has no 'turns' list")
        out.append(BenchPrompt(turns[0], "spec_bench", str(row.get("category", "")), str(row.get("question_id", i))))
    return out


def _gsm8k(path: Path) -> list[BenchPrompt]:
    out = []
    for i, row in enumerate(_read_jsonl(path)):
        if not isinstance(row.get("question"), str):
            raise DataError(f"{path}: row {i + 1} has no 'question'")
        out.append(BenchPrompt(row["question"], "gsm8k", "gsm8k", str(i)))
    return out


def _user_file(path: Path) -> list[BenchPrompt]:
    if path.suffix == ".jsonl":
        out = []
        for i, row in enumerate(_read_jsonl(path)):
            if not isinstance(row.get("prompt"), str):
                raise DataError(f"{path}: row {i + 1} has no string 'prompt'")
            out.append(BenchPrompt(row["prompt"], path.name, str(row.get("category", "")), str(row.get("id", i))))
        return out
    from specdec.validate import read_utf8

    lines = read_utf8(path, f"--prompts {path}").splitlines()
    return [BenchPrompt(line, path.name, "", str(i)) for i, line in enumerate(lines) if line.strip()]


def load_prompts(spec: str, data_dir: str | os.PathLike | None = None, per_category: bool = False) -> list[BenchPrompt]:
    """`spec` is `spec_bench[:N]`, `gsm8k[:N]` or a path to a .txt / .jsonl file (optionally `FILE:N`);
    several joined by "+" are concatenated (`spec_bench:2+gsm8k:8`; `per_category` applies to spec_bench)."""
    if "+" in spec and not Path(spec).is_file():
        parts = [p for p in spec.split("+") if p.strip()]
        if not parts:
            raise InputError(f"--prompts {spec!r}: no prompt source; e.g. spec_bench:2+gsm8k:8")
        if not any(p.partition(":")[0] == "spec_bench" for p in parts) and per_category:
            raise InputError("--per-category only applies to spec_bench prompts")
        return [r for p in parts
                for r in load_prompts(p.strip(), data_dir, per_category and p.partition(":")[0] == "spec_bench")]
    name, _, count = spec.partition(":")
    n: int | None = None
    if count:
        if not count.isdigit() or int(count) < 1:
            if name in DATASETS:
                raise InputError(f"--prompts {spec!r}: N must be a positive integer, e.g. {name}:10")
            name, count = spec, ""  # a path that happens to contain ':'
        else:
            n = int(count)
    if name in DATASETS:
        path = _dataset_file(name, data_dir)
        rows = _spec_bench(path) if name == "spec_bench" else _gsm8k(path)
    else:
        path = Path(name)
        if not path.is_file():
            raise DataError(
                f"--prompts {spec!r}: no such file; use spec_bench:N, gsm8k:N or a .txt/.jsonl file of prompts"
            )
        rows = _user_file(path)
    if per_category and name != "spec_bench":
        raise InputError("--per-category only applies to spec_bench prompts")
    rows = _take(rows, n, per_category)
    if not rows:
        raise DataError(f"--prompts {spec!r}: no prompts found")
    return rows


def auto_max_context(tokenizer, prompts: list[BenchPrompt], max_new_tokens: int, chat: bool | None = None,
                     room: int = 64) -> int:
    """The KV-cache length a bench needs: its longest prompt + max_new_tokens + `room` (draft tokens past the
    end), rounded up to 256, at least 512. Attention reads the whole static cache in compiled steps, so a
    cache longer than needed only costs time (2048 slots cost the 1.5B ~7 ms a step here, 512 ~2 ms)."""
    from specdec.prompt import encode_prompt

    need = max(len(encode_prompt(tokenizer, p.text, chat)) for p in prompts) + max_new_tokens + room
    return max(512, -(-need // 256) * 256)
