"""specdec.jsonl: the one JSON-lines reader, and the readers built on it."""
from __future__ import annotations

import pytest

from specdec.errors import DataError
from specdec.jsonl import read_jsonl


def test_rows_with_their_line_numbers_blank_lines_skipped(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text('{"a": 1}\n\n"s"\n[1]\n')
    assert read_jsonl(p) == [(1, {"a": 1}), (3, "s"), (4, [1])]


def test_bad_json_and_bad_bytes_are_one_line(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(DataError, match=r"a.jsonl:2: not valid JSON"):
        read_jsonl(p)
    p.write_bytes(b'{"a": "\xff"}\n')
    with pytest.raises(DataError, match="not UTF-8 text"):
        read_jsonl(p)


def test_head_prompts_refuse_a_row_that_is_not_an_object(tmp_path):
    from specdec.head.data import read_prompts

    p = tmp_path / "p.jsonl"
    p.write_text('{"question": "q1"}\n"q2"\n[1, 2]\n')
    with pytest.raises(DataError, match=r"p.jsonl:3: expected a JSON object .*got list"):
        read_prompts(p)
    p.write_text('{"question": "q1"}\n"q2"\n')
    assert read_prompts(p) == ["q1", "q2"]
