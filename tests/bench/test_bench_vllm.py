"""`specdec bench --vllm ...` (specdec.bench.vllm) with a fake vLLM worker: no vLLM, no real model."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from spec_helpers import install_tiny_zoo
import specdec.bench.vllm as BV
import specdec.zoo
from specdec.backends import vllm_client as V
from specdec.bench import run_bench
from specdec.bench.report import render_table
from specdec.bench.runner import add_baseline_speedups
from specdec.cli.main import app
from specdec.config import SamplingConfig, StopConfig
from specdec.errors import InputError

runner = CliRunner()
PROMPTS = ["w5 w6 w7 w8 w5 w6", "w10 w11 w12", "w3 w9 w3 w9 w3"]


@pytest.fixture
def tiny_zoo(monkeypatch, target_model, draft_model, tokenizer):
    """Tiny random models behind `specdec.api._load_hf` (as in tests/bench/test_bench.py)."""
    models = {"tiny-target": target_model, "tiny-draft": draft_model}
    return install_tiny_zoo(monkeypatch, models, tokenizer)


@pytest.fixture
def venv(vllm_venv):
    """A stand-in .venv-vllm (tests/conftest.py)."""
    return vllm_venv


@pytest.fixture(autouse=True)
def bf16_cpu(monkeypatch):
    """A CPU with bf16 matrix instructions, whatever this machine is (V.worker_dtype keeps bfloat16 there)."""
    monkeypatch.setattr(V.cpuinfo, "flags", lambda: ["avx2", "avx512f", "avx512_bf16", "amx_bf16"])
    monkeypatch.delenv("VLLM_TARGET_DEVICE", raising=False)


@pytest.fixture
def models(monkeypatch):
    """Zoo names -> fake local folders (what specdec.zoo.resolve returns for pulled zoo models)."""
    monkeypatch.setattr(specdec.zoo, "resolve", lambda name, cache_dir=None: f"/zoo/{name}")


class FakeWorker:
    """Replaces `specdec.bench.vllm.run_worker`: records each request, answers every prompt with
    `answer(prompt_ids, speculative_config) -> (token_ids, gen_s, spec counters)`."""

    def __init__(self, answer=None):
        self.requests = []
        self.answer = answer or (lambda ids, spec: ([7, 8, 9], 0.5, {}))

    def __call__(self, req, venv=None, log_path=None, threads_bind=None):
        self.requests.append(req)
        yield {"event": "ready", "startup_s": 42.0, "vllm": "0.99.0"}
        for r in req.requests:
            ids, gen_s, spec = self.answer(r["prompt_ids"], req.speculative_config)
            yield {"event": "item", "id": r["id"], "token_ids": ids, "text": "", "gen_s": gen_s,
                   "finish_reason": "length", "spec": {"drafts": 0, "draft_tokens": 0, "accepted_tokens": 0, **spec}}
        yield {"event": "done", "total_s": 1.0}


def backends(setups, **kw):
    args = dict(target="tiny-target", draft=None, k=5, sampling=SamplingConfig(), stop=StopConfig(max_new_tokens=16),
                max_context=1024)
    return BV.vllm_backends(setups, **{**args, **kw})


def test_one_worker_for_all_prompts_seconds_from_gen_s(venv, models, monkeypatch):
    A, B, C = [3, 4, 5], [6, 7], [8, 9, 10, 11]
    gen_s = {(3, 4, 5): 0.5, (6, 7): 0.25, (8, 9, 10, 11): 2.0}
    fake = FakeWorker(lambda ids, spec: ([1] * 10, gen_s.get(tuple(ids), 99.0), {}))
    monkeypatch.setattr(BV, "run_worker", fake)
    b = backends(["plain"])["vllm_plain"]
    b.prepare([A, B, C])
    assert fake.requests == []  # nothing starts before the first call
    out, st = b(A)
    assert len(fake.requests) == 1
    req = fake.requests[0]
    assert req.model == "/zoo/tiny-target" and req.dtype == "bfloat16" and req.max_model_len == 1024
    assert req.max_tokens == 16 and req.batch is False and req.speculative_config is None
    # an untimed warm-up from prompt 0 reversed (no shared prefix for vLLM's prefix cache), then every prompt
    assert [r["prompt_ids"] for r in req.requests] == [A[::-1], A, B, C]
    assert out == [1] * 10 and st["seconds"] == 0.5 and st["tokens_per_s"] == pytest.approx(20.0)
    assert st["tokens"] == 10 and st["mean_accepted_length"] == 1.0 and st["acceptance_rate"] is None
    assert st["stop_reason"] == "max_new_tokens"
    for ids in (B, C, A, B):
        b(ids)
    assert len(fake.requests) == 1  # all answered from the cache
    assert b(C)[1]["seconds"] == 2.0
    assert b.info["worker_starts"] == 1 and b.info["startup_s"] == 42.0 and b.info["vllm_version"] == "0.99.0"
    b([42, 43])  # a prompt `prepare` never named: one more (small) worker run
    assert len(fake.requests) == 2 and [r["prompt_ids"] for r in fake.requests[1].requests] == [[43, 42], [42, 43]]


def test_a_cpu_without_bf16_matmul_runs_vllm_in_float32_and_says_so(venv, models, monkeypatch):
    monkeypatch.setattr(V.cpuinfo, "flags", lambda: ["avx2", "fma", "f16c"])
    fake = FakeWorker()
    monkeypatch.setattr(BV, "run_worker", fake)
    said = []
    b = backends(["plain"], say=said.append)["vllm_plain"]
    b.prepare([[3, 4]])
    b([3, 4])
    assert fake.requests[0].dtype == "float32" and b.info["dtype"] == "float32"
    assert len([m for m in said if "float32" in m]) == 1
    b2 = backends(["plain"], dtype="float32", say=said.append)["vllm_plain"]  # asked for: nothing to say
    assert b2.request.dtype == "float32" and len([m for m in said if "float32" in m]) == 1


def test_acceptance_and_tau_counted_like_the_engine(venv, models, monkeypatch):
    counters = {(3,): ([1] * 10, {"drafts": 3, "draft_tokens": 12, "accepted_tokens": 6}),
                (4,): ([2] * 8, {"drafts": 2, "draft_tokens": 8, "accepted_tokens": 2})}

    def answer(ids, spec):  # ngram: 1 s per prompt with the counters above; plain: 2 s, nothing drafted
        out, c = counters.get(tuple(ids), ([0], {}))
        return (out, 1.0, c) if spec else (out, 2.0, {})

    fake = FakeWorker(answer)
    monkeypatch.setattr(BV, "run_worker", fake)
    setups = backends(["plain", "ngram"], threads=2)
    for b in setups.values():
        b.prepare([[3], [4]])
    engine_out = {(3,): [1] * 10, (4,): [5] * 8}

    def plain(ids):  # this engine's plain decoding, faked: 2 tok/s
        out = engine_out[tuple(ids)]
        return out, {"tokens": len(out), "seconds": len(out) / 2.0, "tokens_per_s": 2.0, "drafted": 0,
                     "accepted": 0, "rounds": len(out)}

    res = run_bench({"plain": plain, **setups}, [[3], [4]])
    ng = res["vllm_ngram"]
    p0, p1 = ng["per_prompt"]
    # prompt 0: 10 tokens, 6 accepted of 12 drafted -> 4 target steps, tau 2.5 (bonus included), alpha 0.5
    assert (p0["drafted"], p0["accepted"], p0["rounds"]) == (12, 6, 4)
    assert p0["acceptance_rate"] == 0.5 and p0["mean_accepted_length"] == 2.5
    assert p1["rounds"] == 6 and p1["acceptance_rate"] == 0.25
    assert ng["acceptance_rate"] == pytest.approx(8 / 20) and ng["mean_accepted_length"] == pytest.approx(18 / 10)
    assert ng["identical"] is False and ng["identical_prompts"] == 1  # compared with this engine's plain output
    assert ng["speedup"] == pytest.approx(4.5)  # median(10, 8) tok/s vs the engine's plain 2 tok/s
    vp = res["vllm_plain"]
    assert vp["acceptance_rate"] is None and vp["mean_accepted_length"] == 1.0 and vp["speedup"] == 2.25
    assert [p["seconds"] for p in vp["per_prompt"]] == [2.0, 2.0]
    assert len(fake.requests) == 2  # one worker per setup
    spec = fake.requests[1].speculative_config
    assert spec == {"method": "ngram", "num_speculative_tokens": 5, "prompt_lookup_max": 3, "prompt_lookup_min": 1}
    info = {n: b.info for n, b in setups.items()}
    add_baseline_speedups(res, info)
    assert "speedup_vs_vllm_plain" not in res["vllm_plain"]
    assert res["vllm_ngram"]["speedup_vs_vllm_plain"] == pytest.approx(2.0)
    failed = {"vllm_plain": {"failed": True, "error": "worker failed"}, "vllm_ngram": dict(res["vllm_ngram"])}
    add_baseline_speedups(failed, info)  # a failed baseline (kept going) is skipped, not a KeyError traceback
    failed["vllm_plain"], failed["vllm_ngram"] = res["vllm_ngram"], {"failed": True, "error": "x"}
    add_baseline_speedups(failed, info)


def test_refusals(venv, models, monkeypatch, tmp_path):
    with pytest.raises(InputError, match="known: plain, ngram, draft"):
        backends(["plain", "eagle"])
    with pytest.raises(InputError, match="--draft"):
        backends(["draft"])
    with pytest.raises(InputError, match="no vLLM counterpart|known"):
        backends(["plain", "hybrid"])
    monkeypatch.setenv(V.VENV_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(V.VLLMBackendError, match="bash eval/setup_vllm.sh"):
        backends(["plain"])
    assert backends([]) == {}  # nothing asked, nothing checked


def test_sampling_and_the_aded_proposer_reach_the_worker(venv, models, monkeypatch):
    fake = FakeWorker()
    monkeypatch.setattr(BV, "run_worker", fake)
    s = SamplingConfig(temperature=0.7, top_p=0.9, top_k=20, seed=3)
    b = backends(["aded"], k=5, sampling=s, drafter_options={"store": "empty"})["vllm_aded"]
    b([5, 6])
    req = fake.requests[0]
    assert (req.temperature, req.top_p, req.top_k, req.seed) == (0.7, 0.9, 20, 3)
    assert req.speculative_config == {"method": "custom_class", "num_speculative_tokens": 5,
                                      "model": "specdec.backends.vllm_proposers.AdedProposer"}
    assert req.drafter_options == {"store": "empty"} and b.info["sampling"]["temperature"] == 0.7
    assert req.proposer_options == {}  # the batch budget's default (auto)
    off = backends(["aded-nobudget"], k=5, sampling=s, drafter_options={"store": "empty"})["vllm_aded-nobudget"]
    off([5, 6])
    assert fake.requests[1].proposer_options == {"budget": "off"}
    assert fake.requests[1].speculative_config == req.speculative_config and fake.requests[1].drafter_options


def test_vllms_own_suffix_method_needs_its_suffix_tree_in_the_venv(venv, models, monkeypatch):
    fake = FakeWorker()
    monkeypatch.setattr(BV, "run_worker", fake)
    asked = []
    monkeypatch.setattr(V, "has_module", lambda module, venv=None: asked.append(module) or False)
    with pytest.raises(V.VLLMBackendError, match="eval/setup_vllm_suffix.sh"):
        backends(["plain", "suffixdecoding"])
    assert asked == ["arctic_inference.suffix_decoding"]
    monkeypatch.setattr(V, "has_module", lambda module, venv=None: True)
    b = backends(["suffixdecoding"], k=6)["vllm_suffixdecoding"]
    b([5, 6])
    assert fake.requests[0].speculative_config == {"method": "suffix", "num_speculative_tokens": 6}
    assert fake.requests[0].drafter_options == {}  # vLLM's method takes none of this project's options
    assert backends(["plain"])  # the other setups never ask for it


def test_draft_setup_uses_the_draft_folder(venv, models, monkeypatch):
    fake = FakeWorker()
    monkeypatch.setattr(BV, "run_worker", fake)
    b = backends(["draft"], draft="tiny-draft", k=3)["vllm_draft"]
    b([5, 6])
    assert fake.requests[0].speculative_config == {"model": "/zoo/tiny-draft", "num_speculative_tokens": 3}
    assert b.info["draft"] == "/zoo/tiny-draft" and b.info["speedup_baseline"] == "vllm_plain"


def bench(tmp_path, *extra):
    prompt_file = tmp_path / "prompts.txt"
    prompt_file.write_text("\n".join(PROMPTS) + "\n")
    out = tmp_path / "out" / "bench.json"
    args = ["bench", "--target", "tiny-target", "--prompts", str(prompt_file), "--max-new-tokens", "8", "--no-hf",
            "--json", str(out), *extra]
    return runner.invoke(app, args, env={"COLUMNS": "200"}), out


def test_cli_vllm_setups_in_report(tiny_zoo, venv, models, monkeypatch, tmp_path):
    fake = FakeWorker(lambda ids, spec: ([5] * 8, 0.1 if spec else 0.2,
                                         {"drafts": 2, "draft_tokens": 10, "accepted_tokens": 4} if spec else {}))
    monkeypatch.setattr(BV, "run_worker", fake)
    res, out = bench(tmp_path, "--vllm", "plain", "--vllm", "ngram", "-k", "5")
    assert res.exit_code == 0, res.output
    assert len(fake.requests) == 2 and all(len(r.requests) == 1 + len(PROMPTS) for r in fake.requests)
    rep = json.loads(out.read_text())
    # the KV cache is sized to the prompts (at least 512), and vLLM gets the same length
    assert fake.requests[0].max_model_len == rep["config"]["engine"]["max_context"] == 512
    assert fake.requests[0].model == "/zoo/tiny-target"
    setups = rep["setups"]
    assert list(setups) == ["plain", "prompt-lookup", "vllm_plain", "vllm_ngram"]
    vp, vn = setups["vllm_plain"], setups["vllm_ngram"]
    assert vp["backend"] == "vllm" and vp["startup_s"] == 42.0 and vp["vllm_version"] == "0.99.0"
    assert [p["seconds"] for p in vp["per_prompt"]] == [0.2] * 3 and vp["median_tokens_per_s"] == pytest.approx(40.0)
    assert isinstance(vn["identical"], bool) and vn["speedup"] > 0
    assert vn["acceptance_rate"] == pytest.approx(0.4) and vn["mean_accepted_length"] == pytest.approx(2.0)
    assert vn["speedup_vs_vllm_plain"] == pytest.approx(2.0) and "speedup_vs_vllm_plain" not in vp
    assert vn["speculative_config"]["method"] == "ngram" and vn["k"] == 5
    assert rep["config"]["vllm"] == ["plain", "ngram"]
    assert "vllm_ngram" in res.stdout and "vs vllm_plain" in res.stdout and "2.00x" in res.stdout


def test_cli_vllm_refusals_before_loading(tiny_zoo, venv, models, monkeypatch, tmp_path):
    for extra, needle in [(["--vllm", "eagle"], "known: plain, ngram, draft, aded"), (["--vllm", "draft"], "--draft")]:
        res, out = bench(tmp_path, *extra)
        assert res.exit_code == 1 and needle in res.stderr, res.output
        assert not out.exists()
    monkeypatch.setenv(V.VENV_ENV, str(tmp_path / "nowhere"))
    res, out = bench(tmp_path, "--vllm", "plain")
    assert res.exit_code == 1 and "bash eval/setup_vllm.sh" in res.stderr, res.output
    assert tiny_zoo == [], "--vllm is checked before any model is loaded"


def test_table_shows_vllm_rows():
    from rich.console import Console

    row = {"median_tokens_per_s": 10.0, "speedup": 1.0, "acceptance_rate": None, "mean_accepted_length": 1.0,
           "identical": True, "per_prompt": [{}]}
    rep = {"setups": {"plain": row, "vllm_plain": {**row, "backend": "vllm"},
                      "vllm_ngram": {**row, "backend": "vllm", "speedup": 1.5, "speedup_vs_vllm_plain": 1.25}},
           "config": {}}
    con = Console(width=200, record=True)
    con.print(render_table(rep))
    text = con.export_text()
    assert "vllm_plain" in text and "vllm_ngram" in text and "vs vllm_plain" in text and "1.25x" in text
