"""`specdec generate` / `chat` / error handling, on tiny random models (the `tiny_zoo` fixture below)."""
from __future__ import annotations

import io
import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from spec_helpers import install_tiny_zoo
import specdec
from specdec.cli.main import app, chat_loop
from specdec.config import parse_kv
from specdec.errors import InputError

runner = CliRunner()
PROMPT = "w5 w6 w7 w8 w5 w6"
TINY = ["--target", "tiny-target", "--max-new-tokens", "24"]


@pytest.fixture
def tiny_zoo(monkeypatch, target_model, draft_model, tokenizer):
    """Tiny random models behind `specdec.api._load_hf` (the one place models get loaded), by name:
    tiny-target, tiny-draft (a noisy copy of the target), tiny-self (the target again).
    Returns the list of names loaded so far. (Not in a conftest.py: a second `conftest` module would shadow
    tests/conftest.py for the tests that `from conftest import ...`.)"""
    models = {"tiny-target": target_model, "tiny-draft": draft_model, "tiny-self": target_model}
    return install_tiny_zoo(monkeypatch, models, tokenizer)


def gen_json(*args: str, input: str | None = None) -> dict:
    res = runner.invoke(app, ["generate", *args, *TINY, "--json"], input=input)
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1, f"--json must print exactly one line to stdout, got {res.stdout!r}"
    return json.loads(lines[0])


def test_generate_json_equals_api(tiny_zoo):
    obj = gen_json(PROMPT)
    api = specdec.load("tiny-target").generate(PROMPT, max_new_tokens=24)
    assert obj["token_ids"] == api.token_ids
    assert obj["text"] == api.text
    assert obj["stats"]["new_tokens"] == len(api.token_ids) > 0
    assert obj["config"]["target"] == "tiny-target" and obj["config"]["chat"] is True  # the tokenizer has a template
    assert obj["config"]["spec"]["drafter"] is None
    assert obj["config"]["stop"]["max_new_tokens"] == 24


def test_generate_stdin_prompt(tiny_zoo):
    assert gen_json("-", input=PROMPT + "\n")["token_ids"] == gen_json(PROMPT)["token_ids"]


@pytest.mark.parametrize("extra", [
    ["--drafter", "prompt-lookup"],
    ["--drafter", "prompt-lookup", "-k", "2", "--drafter-opt", "max_ngram=2"],
    ["--draft", "tiny-draft"],
    ["--draft", "tiny-self", "--policy", "confidence", "--policy-opt", "threshold=0.5"],
    ["--draft", "tiny-draft", "--policy", "heuristic"],
])
def test_speculative_greedy_ids_identical_to_plain(tiny_zoo, extra):
    plain = gen_json(PROMPT, "--drafter", "none")
    spec = gen_json(PROMPT, *extra)
    assert plain["stats"]["drafted"] == 0
    assert spec["stats"]["drafted"] > 0, "the speculative run should have drafted something"
    assert spec["token_ids"] == plain["token_ids"]
    if "tiny-self" in extra:  # a draft identical to the target: every drafted token accepted
        assert spec["stats"]["acceptance_rate"] == 1.0
        assert spec["config"]["spec"]["policy_options"] == {"threshold": 0.5}


def test_generate_plain_text_output(tiny_zoo):
    res = runner.invoke(app, ["generate", PROMPT, *TINY, "--drafter", "prompt-lookup"])
    assert res.exit_code == 0, res.output
    api = specdec.load("tiny-target").generate(PROMPT, max_new_tokens=24)
    assert res.stdout.rstrip("\n") == api.text  # the text alone on stdout, no colour codes off a terminal
    assert "\x1b[" not in res.stdout
    assert "24 tokens in" in res.stderr and "target calls" in res.stderr


def _assert_one_line_error(res, *needles: str) -> None:
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert isinstance(res.exception, SystemExit)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_unknown_drafter_lists_known(tiny_zoo):
    res = runner.invoke(app, ["generate", PROMPT, *TINY, "--drafter", "nope"])
    _assert_one_line_error(res, "unknown drafter 'nope'", "draft-model", "prompt-lookup")
    assert tiny_zoo == [], "names are checked before any model is loaded"


def test_unknown_policy_lists_known(tiny_zoo):
    res = runner.invoke(app, ["generate", PROMPT, *TINY, "--drafter", "prompt-lookup", "--policy", "nope"])
    _assert_one_line_error(res, "unknown policy 'nope'", "constant", "confidence", "heuristic")


def test_unknown_policy_option_lists_options(tiny_zoo):
    res = runner.invoke(app, ["generate", PROMPT, *TINY, "--policy", "confidence", "--policy-opt", "thresh=0.3"])
    _assert_one_line_error(res, "thresh", "threshold")
    res = runner.invoke(app, ["generate", PROMPT, *TINY, "--policy-opt", "nokv"])
    _assert_one_line_error(res, "KEY=VALUE")


def test_unknown_model_and_missing_draft(tiny_zoo):
    _assert_one_line_error(runner.invoke(app, ["generate", PROMPT, "--target", "nope"]), "no tiny model 'nope'")
    res = runner.invoke(app, ["generate", PROMPT, *TINY, "--drafter", "draft-model"])
    _assert_one_line_error(res, "--draft")


def test_an_unknown_draft_fails_before_the_target_loads(tiny_zoo):
    for extra in (["--draft", "nope"], ["--drafter", "hybrid", "--drafter-opt", "draft=nope"]):
        res = runner.invoke(app, ["generate", PROMPT, *TINY, *extra])
        _assert_one_line_error(res, "draft: no tiny model 'nope'")
    assert tiny_zoo == [], "no model was loaded"


@pytest.mark.parametrize("cmd", ["generate", "chat"])
def test_a_bad_policy_option_fails_before_any_model_loads(tiny_zoo, cmd):
    args = [cmd, PROMPT] if cmd == "generate" else [cmd]
    res = runner.invoke(app, [*args, *TINY, "--drafter", "prompt-lookup", "--policy", "heuristic", "-k", "4",
                              "--policy-opt", "k_max=2"], input="w1 w2\n")
    _assert_one_line_error(res, "k_max must be an integer >= k (4)")
    assert tiny_zoo == []


def test_chat_without_a_chat_template_is_refused_before_the_session(tiny_zoo, tokenizer, monkeypatch):
    monkeypatch.setattr(tokenizer, "chat_template", None)
    res = runner.invoke(app, ["chat", *TINY], input="w1 w2\nw3\n")
    _assert_one_line_error(res, "no chat template, so it cannot chat", "specdec generate --no-chat")
    assert "target calls" not in res.stdout and "/reset" not in res.stdout  # no session was started


def test_chat_with_a_template_that_raises_is_refused_before_the_session(tiny_zoo, tokenizer, monkeypatch):
    monkeypatch.setattr(tokenizer, "chat_template", "{{ raise_exception('system turn required') }}")
    res = runner.invoke(app, ["chat", *TINY], input="w1 w2\n")
    _assert_one_line_error(res, "chat template fails on a user turn", "system turn required")


@pytest.mark.parametrize("prompt,stdin", [("", None), ("   ", None), ("-", "  \n")])
def test_empty_prompt(tiny_zoo, prompt, stdin):
    res = runner.invoke(app, ["generate", prompt, *TINY], input=stdin)
    _assert_one_line_error(res, "empty prompt")


def test_bad_sampling_and_context(tiny_zoo):
    _assert_one_line_error(runner.invoke(app, ["generate", PROMPT, *TINY, "--top-p", "0"]), "top_p")
    res = runner.invoke(app, ["generate", PROMPT, "--target", "tiny-target", "--max-new-tokens", "600"])
    _assert_one_line_error(res, "context overflow")


def test_parse_kv():
    assert parse_kv(["threshold=0.3", "k=8", "name=abc", "flag=true", "max-ngram=2"], "--x") == {
        "threshold": 0.3, "k": 8, "name": "abc", "flag": True, "max_ngram": 2}
    with pytest.raises(InputError):
        parse_kv(["=3"], "--x")


class Spy:
    """Wraps a SpecDecoder and records the prompts given to stream()."""

    def __init__(self, dec):
        self.dec, self.prompts = dec, []

    def stream(self, prompt, **kw):
        self.prompts.append([dict(m) for m in prompt])
        return self.dec.stream(prompt, **kw)


def scripted(lines):
    it = iter(lines)

    def read():
        try:
            return next(it)
        except StopIteration:
            raise EOFError from None

    return read, it


def test_chat_loop_history_reset_quit(tiny_zoo):
    spy = Spy(specdec.load("tiny-target", drafter="prompt-lookup"))
    buf = io.StringIO()
    read, rest = scripted(["w1 w2 w3", "", "w4 w5", "/reset", "w6", "/quit", "w7 never read"])
    history = chat_loop(spy, read, Console(file=buf, width=200), stop=specdec.StopConfig(max_new_tokens=8))
    assert [len(p) for p in spy.prompts] == [1, 3, 1]  # the 2nd turn sees the 1st exchange; /reset forgets it
    assert spy.prompts[1][0] == {"role": "user", "content": "w1 w2 w3"}
    assert spy.prompts[1][1]["role"] == "assistant" and spy.prompts[1][1]["content"]
    assert spy.prompts[2] == [{"role": "user", "content": "w6"}]
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert list(rest) == ["w7 never read"], "/quit stops reading"
    text = buf.getvalue()
    assert "history cleared" in text and text.count("target calls") == 3 and "τ" in text


def test_chat_loop_eof_and_errors(tiny_zoo):
    dec = specdec.load("tiny-target")
    buf = io.StringIO()
    read, _ = scripted(["/bogus", "w1 w2"])
    history = chat_loop(dec, read, Console(file=buf, width=200), stop=specdec.StopConfig(max_new_tokens=600))
    assert history == [], "a failed turn (context overflow) is dropped from the history"
    assert "context overflow" in buf.getvalue() and "unknown command /bogus" in buf.getvalue()


def test_chat_command_scripted_stdin(tiny_zoo):
    res = runner.invoke(app, ["chat", *TINY, "--drafter", "prompt-lookup"], input="w1 w2 w3\n/reset\nw4\n")
    assert res.exit_code == 0, res.output
    assert "history cleared" in res.stdout
    assert res.stdout.count("target calls") == 2


@pytest.mark.parametrize("args,stdin,match", [
    (["-"], b"hi \xff there", "not UTF-8 text (byte 0xff at offset 3)"),
    (["hi \udcff"], None, "the prompt is not UTF-8 text (byte 0xff"),  # argv bytes, surrogate-escaped
    ([PROMPT, "--temperature", "nan"], None, "temperature must be a finite number"),
    ([PROMPT, "--threads", "-2"], None, "threads must be >= 1"),
])
def test_bad_bytes_and_values_are_one_red_line(tiny_zoo, args, stdin, match):
    _assert_one_line_error(runner.invoke(app, ["generate", *args, *TINY], input=stdin), match)


def test_chat_survives_a_line_that_is_not_utf8(tiny_zoo):
    dec = specdec.load("tiny-target")
    buf = io.StringIO()
    read, _ = scripted(["w1 w2", "bad \udcff line", "w3"])
    history = chat_loop(dec, read, Console(file=buf, width=200), stop=specdec.StopConfig(max_new_tokens=4))
    assert "not UTF-8 text" in buf.getvalue()
    assert [m["content"] for m in history if m["role"] == "user"] == ["w1 w2", "w3"]  # history kept


def test_set_threads_is_checked():
    from specdec.validate import set_threads

    with pytest.raises(InputError, match="threads must be >= 1"):
        set_threads(0)
    set_threads(None)  # torch's default stays
