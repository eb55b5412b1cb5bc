"""The corpus an ADED store is counted from (`specdec aded build --from ...`): datasets by name (GSM8K train,
Spec-Bench, `stdlib`: this Python's standard library sources, code that lies on every machine), files (.jsonl: every string field of a record is a document; other files: the whole text, UTF-8
checked) and folders; the datasets folder and the tokenizer to count with."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from specdec.errors import DataError
from specdec.jsonl import read_jsonl
from specdec.validate import read_utf8

DATASETS = ("gsm8k", "spec_bench", "stdlib")
# left out of `stdlib`: tests (they would teach the store test boilerplate), IDLE, lib2to3, tkinter, turtledemo
STDLIB_SKIP = ("test", "tests", "idlelib", "lib2to3", "tkinter", "turtledemo", "site-packages")


def stdlib_files(root: Path | None = None) -> list[Path]:
    """The standard library's .py files (of the running Python, or under `root`), sorted, without STDLIB_SKIP's
    folders (at any depth) and the top-level test helpers (`test_*.py`, `__phello__`)."""
    import sysconfig

    root = Path(root or sysconfig.get_paths()["stdlib"])
    out = []
    for f in root.rglob("*.py"):
        rel = f.relative_to(root).parts
        if any(part in STDLIB_SKIP for part in rel[:-1]) or rel[0].startswith(("test", "__phello__")):
            continue
        out.append(f)
    return sorted(out)


def data_dir(explicit: str | None = None) -> Path:
    """The datasets folder (specdec.datadir), which must exist here."""
    from specdec.datadir import resolve_data_dir

    root = resolve_data_dir(explicit)
    if not root.is_dir():
        raise DataError(f"benchmark data not found at {root}; pass --data-dir (the folder holding gsm8k/ and "
                        f"spec_bench/) or set $SPECDEC_DATA")
    return root


def _strings(obj) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def iter_texts(source: str, data: Path | None) -> Iterator[str]:
    """Documents of one source: a dataset name, a file (.jsonl: every string field of a record is one
    document; other files: the whole text) or a folder (its files, recursively)."""
    if source == "stdlib":  # recorded as "stdlib" in the store, so a rebuild elsewhere gives the same file
        for f in stdlib_files():
            yield read_utf8(f, f"--from stdlib ({f})")
        return
    if source in DATASETS:
        base = data_dir(str(data) if data else None)
        if source == "gsm8k":
            for _, rec in read_jsonl(base / "gsm8k" / "train.jsonl"):
                answer = re.sub(r"<<[^>]*>>", "", rec["answer"])  # calculator annotations
                yield rec["question"] + "\n" + answer.replace("####", "The answer is")
        else:
            for _, rec in read_jsonl(base / "spec_bench" / "question.jsonl"):
                yield from rec["turns"]
        return
    path = Path(source).expanduser()
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            yield from iter_texts(str(f), data)
    elif path.is_file():
        if path.suffix == ".jsonl":
            for _, row in read_jsonl(path):
                yield "\n".join(_strings(row))
        else:
            yield read_utf8(path, f"--from {path}")  # a binary file is refused, not counted as garbage
    else:
        raise DataError(f"--from {source!r}: not a file, folder or dataset ({', '.join(DATASETS)})")


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    from specdec.zoo import resolve

    where = resolve(name, pull_if_missing=False)
    try:
        return AutoTokenizer.from_pretrained(where, local_files_only=True)
    except Exception as e:  # noqa: BLE001
        raise DataError(f"could not load the tokenizer {name!r} from {where} ({type(e).__name__}: {e})") from None
