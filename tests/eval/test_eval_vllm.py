"""`execute(..., backend="vllm")` end to end through a fake vLLM worker (no vLLM, no real model): the request the
worker gets (dtype, speculative config, sampling), the run folder's config and records, resume."""
from __future__ import annotations

import json

import pytest

import specdec.zoo
import specdec.zoo.load
from eval.pipeline import execute
from specdec.backends import vllm_client as V
from specdec.config import RunConfig, SamplingConfig

from evalhelpers import byte_tokenizer

ANSWER = "3 + 4 = 7 pens.\n#### 7"  # right for the first GSM8K_TEST question only


class FakeWorker:
    """Stands in for vllm_client.run_worker: records each request and answers every prompt with ANSWER's tokens,
    `spec` as vLLM's per-request draft counters."""

    def __init__(self, tok, spec=None):
        self.tok, self.spec, self.requests = tok, spec or {}, []

    def __call__(self, req, venv=None, log_path=None, threads_bind=None, kv_cache_gb=None):
        self.requests.append(req)
        yield {"event": "ready", "startup_s": 3.0, "vllm": "0.99.0"}
        for r in req.requests:
            ids = self.tok.encode(ANSWER, add_special_tokens=False)
            yield {"event": "item", "id": r["id"], "token_ids": ids, "text": ANSWER, "gen_s": 0.5,
                   "finish_reason": "stop", "spec": {"drafts": 0, "draft_tokens": 0, "accepted_tokens": 0,
                                                     **self.spec}}
        yield {"event": "done", "total_s": 1.0}


@pytest.fixture
def vllm_side(vllm_venv, monkeypatch):
    """A stand-in .venv-vllm (tests/conftest.py), zoo names resolved to fake folders, the byte tokenizer for every
    model."""
    monkeypatch.setattr(specdec.zoo, "resolve", lambda name, cache_dir=None: f"/zoo/{name}")
    tok = byte_tokenizer()
    monkeypatch.setattr(specdec.zoo.load, "load_tokenizer", lambda name, *a, **k: tok)
    monkeypatch.delenv("VLLM_TARGET_DEVICE", raising=False)
    return tok


def run(tmp_path, data_dir, out="out", said=None, **kw):
    kw = {"limit": 3, "max_new_tokens": 16, **kw}
    return execute("gsm8k", kw.pop("run", None), backend="vllm", out=tmp_path / out, data_dir=str(data_dir), plots=False,
                   say=(said.append if said is not None else lambda m: None), **kw)


def config_of(folder):
    return json.loads((folder / "config.json").read_text())


@pytest.mark.parametrize("flags, dtype, recorded", [
    (["avx2", "fma"], "float32", True),  # no bf16 matrix instructions: float32, recorded and said
    (["avx2", "avx512f", "avx512_bf16"], "bfloat16", False),  # the engine's dtype; the config as before
])
def test_plain_run_asks_the_worker_once_and_records_the_dtype_where_it_differs(
        tmp_path, data_dir, vllm_side, monkeypatch, flags, dtype, recorded):
    monkeypatch.setattr(V.cpuinfo, "flags", lambda: flags)
    fake = FakeWorker(vllm_side)
    monkeypatch.setattr(V, "run_worker", fake)
    said = []
    summary = run(tmp_path, data_dir, said=said)
    assert len(fake.requests) == 1
    req = fake.requests[0]
    assert req.dtype == dtype and req.speculative_config is None and req.model.startswith("/zoo/")
    assert len(req.requests) == 3 and req.max_tokens == 16 and req.temperature == 0.0
    assert summary["n"] == 3 and summary["acc"] == pytest.approx(1 / 3)
    assert summary["run"]["backend"] == "vllm"
    assert ("vllm_dtype" in summary["run"]) is recorded
    assert (summary["run"].get("vllm_dtype") == "float32") is recorded
    assert sum("float32" in m for m in said) == (1 if recorded else 0)
    records = [json.loads(x) for x in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [r["backend"] for r in records] == ["vllm"] * 3
    assert all(r["n_tokens"] == len(vllm_side.encode(ANSWER, add_special_tokens=False)) for r in records)
    # resume: a second call finds every item written and starts no worker
    again = run(tmp_path, data_dir)
    assert len(fake.requests) == 1 and again["acc"] == pytest.approx(1 / 3)


def test_aded_goes_to_the_worker_as_a_proposer_with_its_options_and_its_counters_come_back(
        tmp_path, data_dir, vllm_side, monkeypatch):
    monkeypatch.setattr(V.cpuinfo, "flags", lambda: ["avx512_bf16"])
    monkeypatch.setattr(V, "has_module", lambda module, venv=None: True)
    # per request: 4 verification steps drafted, 6 of 10 draft tokens taken
    fake = FakeWorker(vllm_side, spec={"drafts": 4, "draft_tokens": 10, "accepted_tokens": 6})
    monkeypatch.setattr(V, "run_worker", fake)
    summary = run(tmp_path, data_dir, drafter="aded", k=5)
    req = fake.requests[0]
    assert V.uses_proposer(req.speculative_config)
    assert req.speculative_config["num_speculative_tokens"] == 5
    records = [json.loads(x) for x in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    n = records[0]["n_tokens"]
    assert all(r["speed"]["drafted"] == 10 and r["speed"]["accepted"] == 6 for r in records)
    assert all(r["speed"]["rounds"] == n - 6 for r in records)  # each step commits one token of its own
    assert summary["run"]["drafter"] == "aded"


def test_sampling_reaches_the_worker_and_makes_its_own_run(tmp_path, data_dir, vllm_side, monkeypatch):
    monkeypatch.setattr(V.cpuinfo, "flags", lambda: ["avx512_bf16"])
    fake = FakeWorker(vllm_side)
    monkeypatch.setattr(V, "run_worker", fake)
    sampled = RunConfig(sampling=SamplingConfig(temperature=0.7, top_p=0.9, seed=11), stop=None)
    summary = run(tmp_path, data_dir, run=sampled)
    req = fake.requests[0]
    assert (req.temperature, req.top_p, req.seed) == (0.7, 0.9, 11)
    assert summary["run"]["sampling"]["temperature"] == 0.7
