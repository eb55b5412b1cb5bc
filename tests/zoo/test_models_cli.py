"""`specdec models ...`: list / pull / path / verify, and SpecDecErrors as one red line with exit code 1."""
from __future__ import annotations

from typer.testing import CliRunner

from specdec.cli.models import models_app

runner = CliRunner()


def test_list_shows_every_model_and_pulled_state(cache, fake_gguf):
    r = runner.invoke(models_app, ["list", "--cache-dir", str(cache)], env={"COLUMNS": "250"})
    assert r.exit_code == 0
    for name in ("qwen2.5-coder-1.5b-instruct", "bert-tiny-splade", "masked-lm", "fake-gguf"):
        assert name in r.output
    assert "yes" not in r.output
    assert runner.invoke(models_app, ["pull", "fake-gguf", "--cache-dir", str(cache)]).exit_code == 0
    r = runner.invoke(models_app, ["list", "--cache-dir", str(cache)], env={"COLUMNS": "250"})
    assert "yes" in r.output and str(cache / "fake-gguf") in r.output


def test_pull_path_verify(cache, fake_gguf):
    r = runner.invoke(models_app, ["pull", "fake-gguf"])  # cache from $SPECDEC_CACHE
    assert r.exit_code == 0, r.output
    r = runner.invoke(models_app, ["path", "fake-gguf"])
    assert r.exit_code == 0 and r.stdout.strip() == str(cache / "fake-gguf")
    r = runner.invoke(models_app, ["verify", "fake-gguf"])
    assert r.exit_code == 0 and "fake-gguf: ok" in r.stdout
    (cache / "fake-gguf" / "config.json").write_text("{ }")
    r = runner.invoke(models_app, ["verify", "fake-gguf"])
    assert r.exit_code == 1 and "BAD" in r.stdout and "--force" in r.stderr


def test_errors_are_one_line_exit_1(cache):
    r = runner.invoke(models_app, ["path", "smollm2-135m-instruct"])
    assert r.exit_code == 1 and r.stderr.strip().startswith("error:") and "not pulled" in r.stderr
    assert "Traceback" not in r.output and len(r.stderr.strip().splitlines()) == 1
    r = runner.invoke(models_app, ["pull", "nope"], env={"COLUMNS": "400"})
    assert r.exit_code == 1 and "known: qwen2.5-coder-1.5b-instruct" in r.stderr
    r = runner.invoke(models_app, ["pull"])
    assert r.exit_code == 1 and "give one model NAME or --all" in r.stderr
