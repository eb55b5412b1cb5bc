"""`specdec head build-data | train | eval | calibrate` end to end on tiny model folders."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from spec_helpers import close_draft

from specdec.cli.head import head_app


@pytest.fixture
def folders(tmp_path_factory, target_model, tokenizer, monkeypatch):
    """Model loading by name is replaced by the tiny in-memory models ("target", "draft")."""
    root = tmp_path_factory.mktemp("models")
    models = {"target": target_model, "draft": close_draft(target_model, eps=0.15)}
    monkeypatch.setattr("specdec.head.jobs.load_model", lambda name, dtype, cache_dir: (models[str(name)], tokenizer))
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"question": " ".join(f"w{(7 * i + j) % 50}" for j in range(5 + i % 4))}) + "\n"
                               for i in range(12)))
    return root


def invoke(*args):
    import sys

    args = [str(a) for a in args]
    sys.argv, saved = ["specdec", "head", *args], sys.argv  # what the shell would give the installed script
    try:
        res = CliRunner().invoke(head_app, args)
    finally:
        sys.argv = saved
    assert res.exit_code == 0, res.output
    return res.output


def test_build_train_eval_calibrate(folders, tmp_path):
    common = ["--target", "target", "--draft", "draft", "--dtype", "float32"]
    data = tmp_path / "data"
    out = invoke("build-data", "--out", data, "--prompts", folders / "prompts.jsonl", "--count", 10,
                 "--max-new-tokens", 12, "--shard-size", 4, "--batch-size", 4, "--no-chat", "--no-progress",
                 "--json", "-", *common)
    summary = json.loads(out[out.index("{"):])
    assert summary["shards"] == 3 and summary["prompts"] == 10 and summary["estimate"]["seconds_per_prompt"] > 0
    man = json.loads((data / "manifest.json").read_text())
    assert man["config"]["responder"] == "hf-batch" and man["eos_token_ids"]
    assert man["commands"][0].startswith("specdec head build-data")
    # resume: nothing left to do
    out = invoke("build-data", "--out", data, "--prompts", folders / "prompts.jsonl", "--count", 10,
                 "--max-new-tokens", 12, "--shard-size", 4, "--batch-size", 4, "--no-chat", "--no-progress", *common)
    assert "3 already done, 0 to go" in out
    head = tmp_path / "head.safetensors"
    out = invoke("train", "--data", data, "--out", head, "--epochs", 2, "--batch-size", 16, "--no-progress",
                 "--val-fraction", 0.3, "--json", "-")
    rep = json.loads(out[out.index("{"):])
    assert head.is_file() and rep["train"]["positions"] > 0 and rep["reject_weight"] == 6.0
    out = invoke("eval", "--head", head, "--data", data, "--json", "-")
    m = json.loads(out[out.index("{"):])
    assert 0 <= m["auc"] <= 1 and len(m["reliability"]) == 10 and m["deweighted"]
    assert "reliability" in invoke("eval", "--head", head, "--data", data)
    out = invoke("calibrate", "--context", 16, "--k", 4, "--repeats", 1, "--json", "-", *common)
    c = json.loads(out[out.index("{"):])
    assert 0 < c["threshold"] < 1 and c["c2"] > 0


def test_refuses_evaluation_prompts(folders, tmp_path):
    f = tmp_path / "spec_bench" / "question.jsonl"
    f.parent.mkdir()
    f.write_text('{"turns": ["hello"]}\n')
    res = CliRunner().invoke(head_app, ["build-data", "--out", str(tmp_path / "d"), "--prompts", str(f)])
    assert res.exit_code == 1 and "evaluation prompts" in res.output


def _run(*args):
    res = CliRunner().invoke(head_app, [str(a) for a in args])
    return res


def test_build_data_refuses_a_draft_of_another_vocabulary_and_a_zero_count(folders, tmp_path, target_model,
                                                                           tokenizer, monkeypatch):
    class OtherVocab:
        def get_vocab(self):
            return {**tokenizer.get_vocab(), "<extra>": 10**6}

    draft = close_draft(target_model, eps=0.15)
    monkeypatch.setattr("specdec.head.jobs.load_model",
                        lambda name, dtype, cache_dir: (target_model, tokenizer) if name == "target" else (draft, OtherVocab()))
    common = ["--out", tmp_path / "d", "--prompts", folders / "prompts.jsonl", "--max-new-tokens", 8, "--no-chat",
              "--no-progress", "--target", "target", "--draft", "draft", "--dtype", "float32"]
    res = _run("build-data", "--count", 4, *common)
    assert res.exit_code == 1 and "differs from the target's" in res.output and not (tmp_path / "d").exists()
    res = _run("build-data", "--count", 0, *common)
    assert res.exit_code == 1 and "--count must be >= 1" in res.output
