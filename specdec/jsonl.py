"""JSON files: the one reader of JSON-lines files (prompts, datasets, training rows: UTF-8 checked, one clear
line per bad row) and the one atomic writer (bench reports, eval run files, check reports, training state)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from specdec.errors import DataError


def read_jsonl(path: str | os.PathLike, bad_line: str = "not valid JSON") -> list[tuple[int, Any]]:
    """(line number, parsed value) for every non-blank line of `path`. A line that is not JSON raises
    DataError "PATH:N: <bad_line> (why)"; bytes that are not UTF-8 raise DataError naming the offset."""
    from specdec.validate import read_utf8

    text = read_utf8(path)
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((n, json.loads(line)))
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{n}: {bad_line} ({e.msg})") from None
    return rows


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to a temporary file beside `path` (fsynced), then rename it over `path`: readers never see
    a half-written file, and a failure leaves the old file (or none) behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, obj: Any, default: Callable[[Any], Any] | None = None,
                      allow_nan: bool = False) -> Path:
    """`obj` as indented JSON through `write_text_atomic` (NaN refused unless `allow_nan`)."""
    return write_text_atomic(path, json.dumps(obj, indent=2, allow_nan=allow_nan, default=default) + "\n")
