"""The bad-input sweep: every CLI case of the reliability issue (and its neighbours) gives exactly one
`error: ...` line and exit code 1 -- never a traceback -- and loads no model when the input alone is wrong.
Run on tiny random models (tiny-target / tiny-draft) with an empty model cache."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from spec_helpers import install_tiny_zoo
from specdec.cli.main import app

runner = CliRunner()
T = ["--target", "tiny-target"]


@pytest.fixture
def env(monkeypatch, tmp_path, target_model, draft_model, tokenizer):
    monkeypatch.setenv("SPECDEC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from specdec.zoo import load as store

    monkeypatch.setattr(store, "hub_reachable", lambda timeout=3.0: False)
    loaded = install_tiny_zoo(monkeypatch, {"tiny-target": target_model, "tiny-draft": draft_model}, tokenizer)
    (tmp_path / "prompts.txt").write_text("w1 w2 w3\n")
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "folder").mkdir()
    return tmp_path, loaded


# (argv with {tmp} for the test's folder, stdin, a phrase of the error line, loads a model first?)
CASES = [
    # generate
    (["generate", "", *T], None, "empty prompt", False),
    (["generate", "-", *T], b"hi \xff", "not UTF-8 text", False),
    (["generate", "hi", *T, "--temperature", "nan"], None, "temperature must be a finite number", False),
    (["generate", "hi", *T, "--top-p", "0"], None, "top_p", False),
    (["generate", "hi", *T, "--threads", "-2"], None, "threads must be >= 1", False),
    (["generate", "hi", *T, "--drafter", "nope"], None, "unknown drafter 'nope'; known:", False),
    (["generate", "hi", *T, "--policy", "nope"], None, "unknown policy 'nope'; known:", False),
    (["generate", "hi", *T, "-k", "0"], None, "-k (draft tokens per round) must be >= 1", False),
    (["generate", "hi", *T, "--drafter", "draft-model"], None, "needs a draft model", False),
    (["generate", "hi", *T, "--draft", "nope"], None, "draft: no tiny model 'nope'", False),
    (["generate", "hi", *T, "--policy-opt", "nokv"], None, "expected KEY=VALUE", False),
    (["generate", "hi", *T, "--drafter", "prompt-lookup", "--drafter-opt", "bogus=1"], None, "has no option bogus", False),
    (["generate", "hi", *T, "--drafter", "prompt-lookup", "--policy", "heuristic", "--policy-opt", "k_max=-1"],
     None, "k_max must be an integer >= k", False),
    (["generate", "hi", "--target", "nope"], None, "no tiny model 'nope'", False),
    # option values checked before any model loads (reliability, second pass)
    (["generate", "hi", *T, "--drafter", "prompt-lookup", "--drafter-opt", "max_ngram=abc"], None,
     "max_ngram='abc': drafter 'prompt-lookup' expects a whole number", False),
    (["generate", "hi", *T, "--drafter", "prompt-lookup", "--drafter-opt", "max_ngram=1e400"], None,
     "expects a whole number", False),
    (["generate", "hi", *T, "--drafter", "prompt-lookup", "--drafter-opt", "max_ngram=0"], None,
     "need 1 <= min_ngram <= max_ngram", False),
    (["generate", "hi", *T, "--drafter", "aded", "--drafter-opt", "store=/nonexistent/s.safetensors"], None,
     "no such file", False),
    (["generate", "hi", *T, "--drafter", "aded", "--drafter-opt", "max_ngram=0"], None, "aded: unknown option", False),
    (["generate", "hi", *T, "--drafter", "aded", "--drafter-opt", "nodes=0"], None, "max_nodes must be >= 1", False),
    (["generate", "hi", *T, "--drafter", "mlm", "--drafter-opt", "mlm={tmp}/folder"], None, "has no config.json", False),
    (["generate", "hi", *T, "--exact-len", "0"], None, "--exact-len (rows of every pass) must be >= 1", False),
    (["generate", "hi", *T, "--exact-len", "-3"], None, "--exact-len (rows of every pass) must be >= 1", False),
    (["generate", "hi", *T, "--exact-len", "1000"], None, "--exact-len (rows of every pass) must be <= 128", False),
    (["generate", "hi", *T, "--temperature", "1", "--seed", "99999999999999999999999"], None,
     "seed must be <= 18446744073709551615", False),
    (["generate", "hi", *T, "--drafter", "draft-model", "--draft", "tiny-draft", "--drafter-opt", "vocab=-1"], None,
     "vocab must be >= 0", False),
    (["generate", "hi", *T, "-n", "100000"], None, "context overflow", False),
    # chat
    (["chat", *T, "-k", "0"], "hi\n", "-k (draft tokens per round) must be >= 1", False),
    (["chat", *T, "--policy", "nope"], "hi\n", "unknown policy 'nope'", False),
    (["chat", *T, "--draft", "nope"], "hi\n", "draft: no tiny model 'nope'", False),
    # bench
    (["bench", *T, "--prompts", "{tmp}/missing.txt"], None, "missing.txt", False),
    (["bench", *T, "--prompts", "{tmp}/prompts.txt", "--json", "{tmp}/folder"], None, "folder", False),
    (["bench", *T, "--prompts", "{tmp}/prompts.txt", "--json", "{tmp}/a_file/out.json"], None, "is a file", False),
    (["bench", *T, "--prompts", "{tmp}/prompts.txt", "--plot", "{tmp}/a_file/p.png"], None, "is a file", False),
    (["bench", *T, "--prompts", "{tmp}/prompts.txt", "--setup", "bad"], None, "expected NAME=DRAFTER", False),
    # eval
    (["eval", "run", "nope", "--out", "{tmp}/o"], None, "unknown task 'nope'", False),
    (["eval", "run", "gsm8k", "--model", "tiny-target", "--out", "{tmp}/o", "--num-fewshot", "-1"], None,
     "num-fewshot", False),
    (["eval", "run", "gsm8k", "--model", "tiny-target", "--out", "{tmp}/o", "-k", "0", "--drafter", "prompt-lookup"],
     None, "-k", False),
    (["eval", "run", "gsm8k", "--model", "tiny-target", "--out", "{tmp}/a_file/o"], None, "is a file", False),
    (["eval", "run", "gsm8k", "--model", "tiny-target", "--out", "{tmp}/o", "--policy", "nope"], None,
     "unknown policy 'nope'", False),
    # check lossless
    (["check", "lossless", *T, "--prompts", "0"], None, "--prompts must be >= 1", False),
    (["check", "lossless", *T, "--json", "{tmp}/folder"], None, "is a folder", False),
    # mlm
    (["mlm", "fill", "a [MASK] b", "--top-k", "0"], None, "--top-k and --iterations must be >= 1", False),
    (["mlm", "classify", "  ", "--labels", "neg,pos"], None, "empty text", False),
    # models
    (["models", "pull", "nope"], None, "unknown zoo model 'nope'; known:", False),
    (["models", "path", "qwen2.5-coder-0.5b-instruct"], None, "not pulled", False),
]


@pytest.mark.parametrize("argv,stdin,phrase,loads", CASES, ids=[" ".join(c[0][:4]) for c in CASES])
def test_bad_input_is_one_red_line(env, argv, stdin, phrase, loads):
    tmp, loaded = env
    args = [a.replace("{tmp}", str(tmp)) for a in argv]
    res = runner.invoke(app, args, input=stdin)
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and not isinstance(res.exception, (TypeError, AttributeError, KeyError))
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert phrase in lines[0], lines[0]
    if not loads:
        assert loaded == [], f"a model was loaded before the input was refused: {loaded}"
