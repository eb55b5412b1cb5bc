"""The one reader of JSON-lines files (prompts, datasets, training rows): UTF-8 checked, one clear line per
bad row."""
from __future__ import annotations

import json
import os
from typing import Any

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
