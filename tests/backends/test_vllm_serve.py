"""`specdec serve`: the vllm serve command it builds (always), and one real server answering an OpenAI
completion request with the ADED proposer (only where .venv-vllm exists; `pytest -m slow`)."""
from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request

import pytest
import torch
from typer.testing import CliRunner

from specdec.backends import vllm_client as V
from specdec.backends.vllm_serve import ServeConfig, serve_command, shell_line
from specdec.cli.main import app
from specdec.config import EngineConfig, RunConfig, SpecConfig
from specdec.errors import InputError

from evalhelpers import byte_tokenizer, tiny_model

runner = CliRunner()


def fake_resolve(name, cache_dir=None):
    return f"/zoo/{name}"


def test_the_command_carries_the_drafter_its_options_and_the_environment():
    run = RunConfig(target="m", spec=SpecConfig(drafter="aded", k=5, drafter_options={"store": "empty"}),
                    engine=EngineConfig(threads=2))
    argv, env = serve_command(run, ServeConfig(port=9001, max_num_seqs=8), resolve=fake_resolve)
    assert argv[1:5] == ["-m", "vllm.entrypoints.openai.api_server", "--model", "/zoo/m"] and argv[argv.index("--port") + 1] == "9001"
    assert argv[argv.index("--max-num-seqs") + 1] == "8" and argv[argv.index("--served-model-name") + 1] == "m"
    cfg = json.loads(argv[argv.index("--speculative-config") + 1])
    assert cfg == {"method": "custom_class", "model": "specdec.backends.vllm_proposers.AdedProposer",
                   "num_speculative_tokens": 5}
    assert env["PYTHONPATH"] == str(V.REPO_ROOT) and json.loads(env["SPECDEC_DRAFTER_OPTIONS"]) == {"store": "empty"}
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "0-1"
    plain, penv = serve_command(RunConfig(target="m"), resolve=fake_resolve)
    assert "--speculative-config" not in plain and "PYTHONPATH" not in penv
    ngram, _ = serve_command(RunConfig(target="m", spec=SpecConfig(drafter="prompt-lookup", k=3)), resolve=fake_resolve)
    assert json.loads(ngram[ngram.index("--speculative-config") + 1])["method"] == "ngram"
    line = shell_line(argv, env)
    assert line.startswith("LD_PRELOAD=") or "PYTHONPATH=" in line


@pytest.mark.parametrize("args, phrase", [
    (["--port", "0"], "--port must be 1..65535"),
    (["--drafter", "hybrid"], "no vLLM counterpart"),
    (["--drafter", "draft-model"], "needs --draft"),
    (["--drafter", "aded", "--drafter-opt", "nodes=abc"], "nodes"),
    (["--max-num-seqs", "0"], "--max-num-seqs >= 1"),
])
def test_bad_options_are_one_line_before_anything_starts(args, phrase):
    res = runner.invoke(app, ["serve", *args, "--print"])
    assert res.exit_code == 1 and phrase in res.stderr and "Traceback" not in res.output, res.output


def test_the_command_asks_for_float32_where_the_cpu_has_no_bf16_matmul(monkeypatch):
    monkeypatch.delenv("VLLM_TARGET_DEVICE", raising=False)
    dtype = lambda argv: argv[argv.index("--dtype") + 1]  # noqa: E731
    monkeypatch.setattr(V.cpuinfo, "flags", lambda: ["avx2", "fma"])
    assert dtype(serve_command(RunConfig(target="m"), resolve=fake_resolve)[0]) == "float32"
    monkeypatch.setattr(V.cpuinfo, "flags", lambda: ["avx512f", "avx512_bf16"])
    assert dtype(serve_command(RunConfig(target="m"), resolve=fake_resolve)[0]) == "bfloat16"


def test_print_shows_the_command(monkeypatch):
    monkeypatch.setattr("specdec.zoo.resolve", fake_resolve)
    res = runner.invoke(app, ["serve", "--target", "m", "--drafter", "aded", "-k", "3", "--print"])
    assert res.exit_code == 0, res.output
    assert "vllm.entrypoints.openai.api_server --model /zoo/m" in res.stdout and "AdedProposer" in res.stdout


def test_serve_without_vllm_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr("specdec.zoo.resolve", fake_resolve)
    res = runner.invoke(app, ["serve", "--target", "m", "--venv", str(tmp_path / "none")])
    assert res.exit_code == 1 and "bash eval/setup_vllm.sh" in res.stderr, res.output


needs_vllm = pytest.mark.skipif(not V.available(), reason=f"no vLLM venv at {V.venv_path()}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@needs_vllm
def test_real_server_answers_with_the_engines_greedy_tokens(tmp_path):
    tok = byte_tokenizer()
    model = tiny_model(len(tok), hidden=128, heads=2, kv_heads=1)
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    port = _free_port()
    run = RunConfig(target=str(tmp_path / "m"), spec=SpecConfig(drafter="aded", k=3, drafter_options={"store": "empty"}),
                    engine=EngineConfig(dtype="float32"))
    argv, env = serve_command(run, ServeConfig(port=port, max_model_len=512, max_num_seqs=4, name="tiny"),
                              resolve=lambda name, cache=None: name)
    proc = subprocess.Popen(argv + ["--enforce-eager"], env=env, stdout=open(tmp_path / "log", "w"),
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 300
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, (tmp_path / "log").read_text()[-3000:]
                time.sleep(2)
        ids = tok("abc abc abc abc")["input_ids"]
        body = json.dumps({"model": "tiny", "prompt": ids, "max_tokens": 12, "temperature": 0,
                           "return_token_ids": True}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", body,
                                     {"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(req, timeout=120).read())
    finally:
        proc.terminate()
        proc.wait(60)
    from specdec.api import SpecDecoder
    from specdec.config import StopConfig

    dec = SpecDecoder(model, tok, engine=EngineConfig(dtype="float32"))
    ours = [t for r in dec.stream_ids(torch.tensor([ids]), stop=StopConfig(max_new_tokens=12)) for t in r.tokens]
    choice = answer["choices"][0]
    got = choice.get("token_ids") or tok(choice["text"], add_special_tokens=False)["input_ids"]
    assert got == ours
