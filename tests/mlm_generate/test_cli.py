from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mlm_generate.cli import mlm_app

from mlm_fixtures import make_bert, make_mlm_tokenizer
from mlm_fixtures import any_mlm, bert_mlm, bert_tok, modernbert_mlm, roberta_tok  # noqa: F401  (pytest fixtures)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny-mlm")
    tok = make_mlm_tokenizer("bert")
    make_bert(tok).save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    lines = [l for l in result.stdout.splitlines() if l.strip()]
    assert len(lines) == 1, result.stdout  # exactly one JSON object
    return json.loads(lines[0])


def test_fill_classify_generate_json(model_dir):
    r = CliRunner()
    out = _json(r.invoke(mlm_app, ["fill", "the [MASK] was good", "-m", model_dir, "--json", "--top-k", "2"]))
    assert len(out["masks"]) == 1 and len(out["masks"][0]["top"]) == 2
    out = _json(r.invoke(mlm_app, ["classify", "what is the capital ?", "--choice", "paris", "--choice", "london",
                                   "-m", model_dir, "--json"]))
    assert set(out["probs"]) == {"A", "B"} and abs(sum(out["probs"].values()) - 1) < 1e-5
    assert out["prompt"].endswith("ANSWER: [unused0] [MASK]")
    out = _json(r.invoke(mlm_app, ["classify", "a fun film", "--labels", "negative,positive", "-m", model_dir,
                                   "--template", "sentiment", "--json"]))
    assert out["prediction"] in ("negative", "positive")
    out = _json(r.invoke(mlm_app, ["generate", "the movie", "--lengths", "2,4", "-T", "3", "-m", model_dir, "--json"]))
    assert out["length"] in (2, 4) and out["forward_passes"] == 3 and len(out["candidates"]) == 2


def test_finetune_json_and_resume(model_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = ["a great film\t1", "a dull film\t0", "very good acting\t1", "very bad acting\t0"]
    (data / "train.tsv").write_text("\n".join(rows) + "\n")
    (data / "dev.tsv").write_text("\n".join(rows[:2]) + "\n")
    args = ["finetune", "--data", str(data), "-m", model_dir, "--max-steps", "3", "--batch-size", "2",
            "--out", str(tmp_path / "run"), "--json", "--no-progress"]
    out = _json(CliRunner().invoke(mlm_app, args))
    assert out["steps"] == 3 and "dev_accuracy" in out["metrics"] and out["final_dir"]
    again = _json(CliRunner().invoke(mlm_app, args))  # already finished: resumes at step 3, trains nothing
    assert again["resumed_from"] == 3 and again["metrics"] == out["metrics"]


def test_errors_are_one_json_line(model_dir):
    r = CliRunner().invoke(mlm_app, ["classify", "x", "--labels", "negative=zzz;positive=good", "-m", model_dir,
                                     "--json"])
    assert r.exit_code == 1
    err = json.loads(r.stdout.strip())
    assert err["type"] == "VerbalizerError" and "cannot be represented" in err["error"]
    r = CliRunner().invoke(mlm_app, ["classify", "x", "-m", model_dir])
    assert r.exit_code == 1 and "either --labels" in r.output
