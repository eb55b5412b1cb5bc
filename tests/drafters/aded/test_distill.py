"""specdec.drafters.aded.distill and `specdec aded distill --engine`: the target's own greedy answers through this
engine, appended as they come, resumed by a rerun, and a file of other prompts refused in one line."""
from __future__ import annotations

import json

import pytest
from spec_helpers import install_tiny_zoo
from typer.testing import CliRunner

from specdec.api import load
from specdec.cli.aded import aded_app
from specdec.drafters.aded.distill import resume
from specdec.errors import DataError

PROMPTS = ["w1 w2 w3", "w4 w5", "w6 w7 w8 w9", "w2 w2 w2", "w9 w1"]


@pytest.fixture
def tiny(monkeypatch, target_model, tokenizer):
    return install_tiny_zoo(monkeypatch, {"tiny-target": target_model}, tokenizer)


def _distill(tmp_path, limit):
    (tmp_path / "p.txt").write_text("\n".join(PROMPTS) + "\n")
    return CliRunner().invoke(aded_app, ["distill", "--engine", "--model", "tiny-target", "--prompts",
                                         str(tmp_path / "p.txt"), "--limit", str(limit), "--max-new-tokens", "6",
                                         "--out", str(tmp_path / "out.jsonl")])


def test_engine_answers_are_the_plain_greedy_text_and_a_rerun_resumes(tmp_path, tiny):
    res = _distill(tmp_path, 3)
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    plain = load("tiny-target", drafter="none")
    assert [r["prompt"] for r in rows] == PROMPTS[:3]
    assert [r["answer"] for r in rows] == [plain.generate(p, chat=True, max_new_tokens=6).text for p in PROMPTS[:3]]
    before = (tmp_path / "out.jsonl").read_text()
    res = _distill(tmp_path, 5)
    assert res.exit_code == 0, res.output
    assert "3 of 5 answers already there" in " ".join(res.output.split())  # rich wraps lines
    after = (tmp_path / "out.jsonl").read_text()
    assert after.startswith(before) and len(after.splitlines()) == 5  # the first three kept, two appended


def test_a_corpus_of_other_prompts_is_refused_in_one_line(tmp_path, tiny):
    (tmp_path / "out.jsonl").write_text(json.dumps({"prompt": "something else", "answer": "x"}) + "\n")
    res = _distill(tmp_path, 3)
    assert res.exit_code == 1 and "other prompts" in res.output and "Traceback" not in res.output
    assert (tmp_path / "out.jsonl").read_text().count("\n") == 1  # untouched


def test_resume_counts_the_answered_prefix(tmp_path):
    path = tmp_path / "c.jsonl"
    assert resume(path, PROMPTS) == 0
    path.write_text("".join(json.dumps({"prompt": p, "answer": "a"}) + "\n" for p in PROMPTS[:2]))
    assert resume(path, PROMPTS) == 2
    with pytest.raises(DataError, match="other prompts"):
        resume(path, PROMPTS[1:])
    with pytest.raises(DataError, match="other prompts"):
        resume(path, PROMPTS[:1])  # more answers than prompts asked for
