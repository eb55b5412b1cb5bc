"""Loading evaluation data: local files (the default) or, where the network allows, dataset names.

Local layout (``shared/data``, see its README): ``mmlu/{dev,val,test}/<subject>_<split>.csv`` (rows:
question, A, B, C, D, answer letter; no header) and ``gsm8k/{train,test}.jsonl`` (``{"question",
"answer"}``, the answer ending ``#### N``). The data dir is ``--data-dir`` > ``$SPECDEC_DATA`` >
``<repo>/../shared/data``. Every problem is a `DataError` naming the file (and line) and what to do.
"""
from __future__ import annotations

import csv
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from specdec.errors import DataError, UnknownNameError

from eval.tasks import LETTERS, MMLU_CATEGORIES, MMLU_SUBJECTS, TaskSpec

from specdec.datadir import DATA_ENV, REPO_ROOT, default_data_dir, resolve_data_dir  # noqa: F401  (re-exported)

HOW_TO_POINT = f"pass --data-dir DIR or set ${DATA_ENV}"


@dataclass(frozen=True)
class MMLUItem:
    id: str  # "<subject>/<row index>"
    subject: str
    question: str
    choices: tuple[str, str, str, str]
    answer: int  # 0..3

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GSM8KItem:
    id: str  # "<split>/<row index>"
    index: int
    question: str
    answer: str  # the worked solution, ending "#### N"

    @property
    def target(self) -> str:
        return self.answer.split("####")[-1].strip()

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------ subjects
def parse_subjects(spec: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """"a,b" / ["a", "b"] / None (all 57). A category name (stem, humanities, social_sciences, other)
    stands for its subjects. Unknown names raise UnknownNameError listing the valid ones."""
    if spec is None or spec == "" or spec == "all":
        return list(MMLU_SUBJECTS)
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    out: list[str] = []
    for name in names:
        key = name.lower().replace(" ", "_").replace("-", "_")
        key = key.removeprefix("mmlu_")
        if key in MMLU_CATEGORIES:
            out += [s for s, c in MMLU_SUBJECTS.items() if c == key]
        elif key in MMLU_SUBJECTS:
            out.append(key)
        else:
            import difflib

            close = difflib.get_close_matches(key, list(MMLU_SUBJECTS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UnknownNameError(
                f"unknown MMLU subject {name!r}{hint}; valid subjects: {', '.join(MMLU_SUBJECTS)}; "
                f"or a category: {', '.join(MMLU_CATEGORIES)}")
    return list(dict.fromkeys(out))


# ------------------------------------------------------------------------------------------ MMLU
def _mmlu_root(data_dir: Path) -> Path:
    """Accept the data dir (holding mmlu/) or the mmlu folder itself."""
    if (data_dir / "mmlu").is_dir():
        return data_dir / "mmlu"
    if any((data_dir / s).is_dir() for s in ("test", "dev", "val")):
        return data_dir
    return data_dir / "mmlu"


def mmlu_file(data_dir: Path, subject: str, split: str) -> Path:
    return _mmlu_root(data_dir) / split / f"{subject}_{split}.csv"


def require_file(path: Path, what: str, expected: str) -> None:
    """One line for a data file that is missing or not a file, saying where it was expected."""
    if not path.is_file():
        where = "missing" if not path.exists() else "not a file"
        raise DataError(f"{what} data file {path} is {where}; {HOW_TO_POINT} (expected {expected}, see "
                        f"shared/data/README.md)")


def read_mmlu_csv(path: Path, subject: str) -> list[MMLUItem]:
    require_file(path, "MMLU", "<dir>/mmlu/<split>/<subject>_<split>.csv")
    items: list[MMLUItem] = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != 6:
                    raise DataError(f"{path}:{line}: malformed MMLU row: expected 6 fields (question, A, B, C, "
                                    f"D, answer letter), got {len(row)}")
                ans = row[5].strip().upper()
                if ans not in LETTERS:
                    raise DataError(f"{path}:{line}: malformed MMLU row: the answer must be one of A, B, C, D, "
                                    f"got {row[5]!r}")
                if not row[0].strip():
                    raise DataError(f"{path}:{line}: malformed MMLU row: empty question")
                items.append(MMLUItem(f"{subject}/{len(items)}", subject, row[0], tuple(row[1:5]),
                                      LETTERS.index(ans)))
    except csv.Error as e:
        raise DataError(f"{path}: malformed CSV ({e})") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not items:
        raise DataError(f"{path}: no rows (an empty MMLU file)")
    return items


def _hf_load(name: str, config: str | None, split: str):
    try:
        import datasets  # noqa: F401
    except ImportError:
        raise DataError(f"--dataset {name} needs the `datasets` package (pip install datasets) and the network; "
                        f"or use the local files: {HOW_TO_POINT}") from None
    try:
        return datasets.load_dataset(name, config, split=split)
    except Exception as e:  # noqa: BLE001 - offline / unknown name: one actionable line
        raise DataError(f"could not load dataset {name!r} ({config or 'default'}, split {split}): "
                        f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}; "
                        f"without the network use the local files: {HOW_TO_POINT}") from None


def load_mmlu(data_dir: str | os.PathLike | None, split: str, subjects: list[str],
              hf_dataset: str | None = None) -> dict[str, list[MMLUItem]]:
    """{subject: items} in file order, for the given (already validated) subjects."""
    out: dict[str, list[MMLUItem]] = {}
    root = resolve_data_dir(data_dir)
    for subject in subjects:
        if hf_dataset:
            ds = _hf_load(hf_dataset, subject, split)
            out[subject] = [MMLUItem(f"{subject}/{i}", subject, r["question"], tuple(r["choices"]), int(r["answer"]))
                            for i, r in enumerate(ds)]
        else:
            out[subject] = read_mmlu_csv(mmlu_file(root, subject, split), subject)
    return out


def stratified(by_subject: dict[str, list], per_subject: int | None, seed: int) -> dict[str, list]:
    """Keep `per_subject` items of each subject: a seeded sample (random.Random(f"{seed}:{subject}")),
    kept in file order. None keeps everything. The same seed always gives the same subset."""
    if per_subject is None:
        return by_subject
    out = {}
    for subject, items in by_subject.items():
        if per_subject >= len(items):
            out[subject] = list(items)
        else:
            idx = sorted(random.Random(f"{seed}:{subject}").sample(range(len(items)), per_subject))
            out[subject] = [items[i] for i in idx]
    return out


# ------------------------------------------------------------------------------------------ GSM8K
def gsm8k_file(data_dir: Path, split: str) -> Path:
    if (data_dir / "gsm8k").is_dir() or not (data_dir / f"{split}.jsonl").exists():
        return data_dir / "gsm8k" / f"{split}.jsonl"
    return data_dir / f"{split}.jsonl"


def read_gsm8k_jsonl(path: Path, split: str) -> list[GSM8KItem]:
    require_file(path, "GSM8K", f"<dir>/gsm8k/{split}.jsonl")
    from specdec.jsonl import read_jsonl

    items: list[GSM8KItem] = []
    for line_no, row in read_jsonl(path, "malformed GSM8K line: not JSON"):
        if not isinstance(row, dict) or not isinstance(row.get("question"), str) \
                or not isinstance(row.get("answer"), str):
            raise DataError(f"{path}:{line_no}: malformed GSM8K line: expected an object with string "
                            f"fields \"question\" and \"answer\"")
        if "####" not in row["answer"]:
            raise DataError(f"{path}:{line_no}: malformed GSM8K line: the answer has no '#### N' final "
                            f"answer")
        items.append(GSM8KItem(f"{split}/{len(items)}", len(items), row["question"], row["answer"]))
    if not items:
        raise DataError(f"{path}: no rows (an empty GSM8K file)")
    return items


def load_gsm8k(data_dir: str | os.PathLike | None, split: str, hf_dataset: str | None = None) -> list[GSM8KItem]:
    if hf_dataset:
        name, _, config = hf_dataset.partition(":")
        ds = _hf_load(name, config or "main", split)
        return [GSM8KItem(f"{split}/{i}", i, r["question"], r["answer"]) for i, r in enumerate(ds)]
    return read_gsm8k_jsonl(gsm8k_file(resolve_data_dir(data_dir), split), split)


# ------------------------------------------------------------------------------------------ a run's items
def select_mmlu(task: TaskSpec, data_dir, dataset, subjects, per_subject, seed, limit):
    """(items, dev) for an MMLU task: every check (subjects, files, rows) happens here."""
    names = parse_subjects(subjects)
    hf = task.hf_dataset if dataset == "hf" else dataset
    test = load_mmlu(data_dir, task.split, names, hf)
    dev = load_mmlu(data_dir, task.fewshot_split, names, hf) if task.num_fewshot else {}
    picked = stratified(test, per_subject, seed)
    items = [x for s in names for x in picked[s]]
    return (items[:limit] if limit else items), dev


def select_gsm8k(task: TaskSpec, data_dir, dataset, limit):
    hf = task.hf_dataset if dataset == "hf" else dataset
    test = load_gsm8k(data_dir, task.split, hf)
    train = load_gsm8k(data_dir, task.fewshot_split, hf) if task.num_fewshot else []
    return (test[:limit] if limit else test), train
