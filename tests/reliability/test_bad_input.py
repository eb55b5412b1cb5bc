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
    (tmp_path / "binary.dat").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "bad.jsonl").write_text("{bad\n")
    (tmp_path / "ok.txt").write_text("hello world\n")
    (tmp_path / "train.tsv").write_text("good movie\t1\n")
    from evalhelpers import write_gsm8k

    write_gsm8k(tmp_path / "data")
    for name, text in (("damaged", "{bad"), ("a_list", "[1, 2]")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(text)
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
    (["eval", "run", "gsm8k", "--model", "tiny-target", "--out", "{tmp}/a_file/o", "--data-dir", "{tmp}/data"], None,
     "is a file", False),
    (["eval", "run", "gsm8k", "--model", "tiny-target", "--out", "{tmp}/o", "--policy", "nope"], None,
     "unknown policy 'nope'", False),
    # check lossless
    (["check", "lossless", *T, "--prompts", "0"], None, "--prompts must be >= 1", False),
    (["check", "lossless", *T, "--json", "{tmp}/folder"], None, "is a folder", False),
    # mlm
    (["mlm", "fill", "a [MASK] b", "--top-k", "0"], None, "--top-k and --iterations must be >= 1", False),
    (["mlm", "classify", "  ", "--labels", "neg,pos"], None, "empty text", False),
    # reliability, second pass: silent wrong output, tracebacks, checks before any load
    (["aded", "build", "--from", "{tmp}/binary.dat", "--out", "{tmp}/s.safetensors"], None, "is not UTF-8 text", False),
    (["aded", "build", "--from", "{tmp}/empty.txt", "--out", "{tmp}/s.safetensors"], None, "no text to count", False),
    (["aded", "build", "--from", "{tmp}/ok.txt", "--out", "{tmp}/s.txt"], None, "must end in .safetensors", False),
    (["aded", "build", "--from", "{tmp}/bad.jsonl", "--out", "{tmp}/s.safetensors"], None, "bad.jsonl:1: not valid JSON",
     False),
    (["aded", "build", "--from", "{tmp}/nope", "--out", "{tmp}/s.safetensors"], None, "not a file, folder or dataset",
     False),
    (["aded", "build", "--from", "{tmp}/ok.txt", "--out", "{tmp}/folder"], None, "is a folder", False),
    (["aded", "build", "--from", "{tmp}/ok.txt", "--out", "{tmp}/s.safetensors", "--top-k", "0"], None,
     "--top-k and --min-count must be >= 1", False),
    (["aded", "cost", "--model", "tiny-target", "--stat", "foo"], None, "--stat must be min or median", False),
    (["aded", "cost", "--model", "tiny-target", "--budgets", "abc"], None, "expected NODES:DEPTH pairs", False),
    (["aded", "cost", "--model", "tiny-target", "--ns", "0,-1"], None, "comma-separated whole numbers >= 1", False),
    (["mlm", "classify", "good", "--labels", "a,a"], None, "a given twice", False),
    (["mlm", "classify", "good", "--labels", "pos"], None, "at least two comma-separated labels", False),
    (["mlm", "finetune", "--train", "{tmp}/binary.dat"], None, "is not UTF-8 text", False),
    (["mlm", "finetune", "--train", "{tmp}/train.tsv", "--out", "{tmp}/a_file"], None, "is a file", False),
    (["models", "list", "--cache-dir", "{tmp}/a_file"], None, "is a file, not a folder", False),
    (["bench", *T, "--prompts", "+"], None, "no prompt source", False),
    (["bench", *T, "--prompts", "{tmp}/prompts.txt", "--json", "/dev/null"], None, "is not a regular file", False),
    (["eval", "report", "{tmp}/damaged"], None, "is damaged", False),
    (["eval", "run", "gsm8k", "--model", "nope", "--out", "{tmp}/o", "--data-dir", "{tmp}/data"], None,
     "target: no tiny model 'nope'", False),  # check_run's model-name check (faked by this suite's tiny zoo)
    (["eval", "report", "{tmp}/a_list"], None, "is not a summary", False),
    (["eval", "run", "gsm8k_cot", "--model", "tiny-target", "--out", "{tmp}/o", "--fewshot-file", "{tmp}/binary.dat"],
     None, "is not UTF-8 text", False),
    (["eval", "run", "gsm8k_cot", "--model", "tiny-target", "--out", "{tmp}/o", "--fewshot-file", "{tmp}/folder"],
     None, "is a folder", False),
    (["generate", "hi", *T, "--drafter", "prompt-lookup", "--policy", "specdecpp", "--policy-opt",
      "head={tmp}/ok.txt"], None, "is not a readable safetensors file", False),
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


@pytest.mark.parametrize("var,value,phrase", [("SPECDEC_SUPERBLOCKS", "maybe", "SPECDEC_SUPERBLOCKS must be 1 or 0"),
                                               ("SPECDEC_QKERNEL", "fast", "SPECDEC_QKERNEL must be one of")])
def test_a_bad_kernel_switch_is_one_red_line_before_any_load(env, monkeypatch, var, value, phrase):
    tmp, loaded = env
    monkeypatch.setenv(var, value)
    res = runner.invoke(app, ["generate", "hi", *T])
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error:") and phrase in lines[0], res.stderr
    assert loaded == [], f"a model was loaded before the input was refused: {loaded}"


@pytest.mark.parametrize("argv", [["generate", "hi", "-n", "1.5"], ["generate", "hi", "-k", "2.5"],
                                  ["generate", "hi", "-k", "inf"], ["bench", "--prompts", "x", "--max-context", "y"]])
def test_a_usage_error_is_one_red_line_too(env, argv):
    """click's boxed usage message before: the same one red line as every other error, click's exit code 2."""
    tmp, loaded = env
    res = runner.invoke(app, argv)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: Invalid value for"), res.stderr
    assert "--help" in lines[0] and loaded == []


def test_bad_input_leaves_nothing_new_on_disk(env):
    """Every refused case writes nothing: the test folder holds what the fixture made, nothing more."""
    tmp, _ = env
    before = sorted(p.relative_to(tmp) for p in tmp.rglob("*"))
    for argv, stdin, _, loads in CASES:
        if not loads:
            runner.invoke(app, [a.replace("{tmp}", str(tmp)) for a in argv], input=stdin)
    after = sorted(p.relative_to(tmp) for p in tmp.rglob("*") if not p.is_relative_to(tmp / "cache"))
    assert [p for p in after if p not in before] == []
