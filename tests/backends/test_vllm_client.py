"""--backend vllm: request/response plumbing and speculative-config mapping (always), and real vLLM runs on
a tiny random model saved to disk (only where .venv-vllm exists; `pytest -m slow`, about 1-3 minutes)."""
import json
import sys

import pytest
import torch

from specdec.backends import vllm_client as V
from specdec.backends.vllm_worker import MARK
from specdec.config import SpecConfig
from specdec.errors import InputError, SpecDecError

from evalhelpers import byte_tokenizer, tiny_model


@pytest.mark.parametrize("drafter, kw, want", [
    (None, {}, None),
    ("none", {}, None),
    ("prompt-lookup", {"k": 5}, {"method": "ngram", "num_speculative_tokens": 5, "prompt_lookup_max": 3,
                                 "prompt_lookup_min": 1}),
    ("prompt-lookup", {"drafter_options": {"max_ngram": 4, "min_ngram": 2}},
     {"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_max": 4, "prompt_lookup_min": 2}),
    ("ngram", {"k": 2}, {"method": "ngram", "num_speculative_tokens": 2, "prompt_lookup_max": 3, "prompt_lookup_min": 1}),
    ("draft-model", {"draft_path": "/m/draft", "k": 3}, {"model": "/m/draft", "num_speculative_tokens": 3}),
    ("aded", {"k": 6}, {"method": "custom_class", "model": "specdec.backends.vllm_proposers.AdedProposer",
                        "num_speculative_tokens": 6}),
    ("suffix", {"k": 5}, {"method": "custom_class", "model": "specdec.backends.vllm_proposers.SuffixProposer",
                          "num_speculative_tokens": 5}),
    ("suffixdecoding", {"k": 8}, {"method": "suffix", "num_speculative_tokens": 8}),  # vLLM's own
])
def test_speculative_config_mapping(drafter, kw, want):
    assert V.speculative_config(drafter, **kw) == want


@pytest.mark.parametrize("drafter, kw, match", [
    ("hybrid", {}, "no vLLM counterpart"),
    ("draft-model", {}, "needs --draft"),
    ("prompt-lookup", {"policy": "heuristic"}, "fixed number"),
    ("prompt-lookup", {"k": 0}, "-k must be >= 1"),
])
def test_speculative_config_refusals(drafter, kw, match):
    with pytest.raises(InputError, match=match):
        V.speculative_config(drafter, **kw)


def test_request_round_trip_and_event_parsing():
    req = V.WorkerRequest(model="/m", requests=[{"id": "test/0", "prompt_ids": [1, 2, 3]}], max_tokens=7,
                          stop=["Question:"], speculative_config={"method": "ngram", "num_speculative_tokens": 4})
    assert V.WorkerRequest.from_json(req.to_json()) == req
    assert json.loads(req.to_json())["max_model_len"] == 2048
    ev = {"event": "item", "id": "test/0", "token_ids": [5, 6], "gen_s": 0.5,
          "spec": {"drafts": 1, "draft_tokens": 4, "accepted_tokens": 1}, "finish_reason": "stop"}
    assert V.parse_line("(Worker) INFO noise\n") is None
    assert V.parse_line(MARK + json.dumps(ev) + "\n") == ev
    assert V.parse_line(MARK + "{torn") is None
    sp = V.item_speed(ev)
    assert sp["new_tokens"] == 2 and sp["drafted"] == 4 and sp["accepted"] == 1 and sp["rounds"] == 1
    sp = V.item_speed({"token_ids": list(range(32)), "gen_s": 1.0, "spec": {"drafts": 12, "draft_tokens": 48,
                                                                             "accepted_tokens": 4}})
    assert sp["rounds"] == 28  # 12 drafting steps + 16 steps where the ngram found nothing
    assert V.item_speed({"token_ids": [1, 2, 3], "gen_s": 1.0})["rounds"] == 3  # plain: one token per step


def test_worker_env_follows_the_notes(tmp_path):
    venv = tmp_path / "v"
    (venv / "lib").mkdir(parents=True)
    (venv / "lib" / "libiomp5.so").write_bytes(b"")
    tcm = venv / "tcmalloc/usr/lib/x86_64-linux-gnu"
    tcm.mkdir(parents=True)
    (tcm / "libtcmalloc_minimal.so.4").write_bytes(b"")
    env = V.worker_env(venv, base={"PATH": "/usr/bin"})
    assert env["LD_PRELOAD"].split(":") == [str(tcm / "libtcmalloc_minimal.so.4"), str(venv / "lib/libiomp5.so")]
    assert env["VLLM_TARGET_DEVICE"] == "cpu" and env["VLLM_CPU_KVCACHE_SPACE"] == "4"
    assert env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0" and env["VLLM_CPU_OMP_THREADS_BIND"].startswith("0-")
    assert "PYTHONPATH" not in env  # the worker runs by file path: nothing of this repository on its path


@pytest.mark.parametrize("flags, dtype, env, want", [
    (["avx2", "fma"], "bfloat16", {}, "float32"),  # no bf16 matrix instructions: float32, with the reason
    (["avx2", "avx512f", "avx512_bf16"], "bfloat16", {}, "bfloat16"),  # Zen 4
    (["avx512f", "amx_bf16", "amx_tile"], "bfloat16", {}, "bfloat16"),  # Sapphire Rapids
    (["avx2"], "float32", {}, "float32"),
    (["avx2"], "float16", {}, "float16"),  # asked for explicitly: kept
    (["avx2"], "bfloat16", {"VLLM_TARGET_DEVICE": "cuda"}, "bfloat16"),  # a GPU target: the CPU does not matter
    ([], "bfloat16", {}, "bfloat16"),  # flags unknown (not Linux): as asked
])
def test_worker_dtype_is_float32_only_where_the_cpu_lacks_bf16_matmul(monkeypatch, flags, dtype, env, want):
    monkeypatch.setattr(V.cpuinfo, "flags", lambda: flags)
    got, why = V.worker_dtype(dtype, env)
    assert got == want
    assert (why is not None) == (got != dtype)
    if why:
        assert "AVX512-BF16" in why and "\n" not in why


@pytest.mark.parametrize("spec, draft, match", [
    (SpecConfig(drafter="suffixdecoding", drafter_options={"max_depth": 8}), None, "takes no --drafter-opt"),
    (SpecConfig(drafter="suffixdecoding", policy="heuristic"), None, "fixed number"),
    (SpecConfig(drafter="hybrid"), None, "no vLLM counterpart"),
    (SpecConfig(drafter="draft-model"), None, "needs --draft"),
    (SpecConfig(drafter="aded", drafter_options={"nodes": "abc"}), None, "nodes"),
    (SpecConfig(drafter="nope"), None, "nope"),
])
def test_check_spec_refuses_what_vllm_cannot_run(spec, draft, match):
    with pytest.raises(SpecDecError, match=match):
        V.check_spec(spec, draft)


@pytest.mark.parametrize("spec, draft", [
    (SpecConfig(drafter="suffixdecoding", k=6), None),  # vLLM's own method: not in this engine's registry
    (SpecConfig(drafter="aded", drafter_options={"nodes": 8}), None),
    (SpecConfig(drafter="draft-model"), "qwen2.5-coder-0.5b-instruct"),
    (SpecConfig(), None),
])
def test_check_spec_passes_what_vllm_runs(spec, draft):
    V.check_spec(spec, draft)


def test_check_ready_names_the_setup_script(tmp_path, monkeypatch):
    with pytest.raises(V.VLLMBackendError, match="bash eval/setup_vllm.sh"):
        V.check_ready(None, tmp_path / "none")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    asked = []
    monkeypatch.setattr(V, "has_module", lambda module, v=None: asked.append(module) or False)
    V.check_ready("aded", venv)  # nothing more needed
    assert asked == []
    with pytest.raises(V.VLLMBackendError, match="eval/setup_vllm_suffix.sh"):
        V.check_ready("suffixdecoding", venv)
    assert asked == [V.SUFFIX_MODULE]


def test_missing_venv_is_a_clear_error(tmp_path):
    with pytest.raises(V.VLLMBackendError, match="setup_vllm.sh"):
        list(V.run_worker(V.WorkerRequest(model="/m"), venv=tmp_path / "none"))


def test_worker_protocol_with_a_fake_vllm(tmp_path, monkeypatch):
    """The worker script and run_worker end to end, with a stub `vllm` module and this interpreter."""
    stub = tmp_path / "stub" / "vllm"
    (stub / "inputs").mkdir(parents=True)
    (stub / "__init__.py").write_text(
        "__version__ = 'fake'\n"
        "class _C:\n    def __init__(self, ids): self.token_ids = ids; self.text = 'x'; self.finish_reason = 'length'\n"
        "class _O:\n    def __init__(self, ids): self.outputs = [_C(ids)]\n"
        "class SamplingParams:\n    def __init__(self, **kw): self.kw = kw\n"
        "class LLM:\n    def __init__(self, **kw): print('loading', kw['model'])\n"
        "    def get_metrics(self): return []\n"
        "    def generate(self, prompts, sp, use_tqdm=False):\n"
        "        return [_O(list(reversed(p['prompt_token_ids']))[: sp.kw['max_tokens']]) for p in prompts]\n")
    (stub / "inputs" / "__init__.py").write_text("def TokensPrompt(prompt_token_ids): return {'prompt_token_ids': prompt_token_ids}\n")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "stub"))
    orig = V.worker_env
    monkeypatch.setattr(V, "worker_env", lambda *a, **k: {**orig(*a, **k),
                                                          "PYTHONPATH": str(tmp_path / "stub")})
    req = V.WorkerRequest(model="/m", requests=[{"id": "a", "prompt_ids": [1, 2, 3]}, {"id": "b", "prompt_ids": [4]}],
                          max_tokens=2)
    log = tmp_path / "w.log"
    evs = list(V.run_worker(req, venv, log_path=log))
    assert [e["event"] for e in evs] == ["ready", "item", "item", "done"]
    assert evs[1]["token_ids"] == [3, 2] and evs[2]["token_ids"] == [4]
    assert "loading /m" in log.read_text()


# ------------------------------------------------------------------------------------------ real vLLM
needs_vllm = pytest.mark.skipif(not V.available(), reason=f"no vLLM venv at {V.venv_path()}: build it with "
                                                          f"`bash eval/setup_vllm.sh` to run the real vLLM tests")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tinyqwen")
    tok = byte_tokenizer()
    model = tiny_model(len(tok), hidden=128, heads=2, kv_heads=1)  # vLLM's CPU attention needs head_dim >= 32
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d, model, tok


@pytest.fixture(scope="module")
def real_run(tiny_dir):
    """One vLLM launch (fp32, eager, ngram k=3) answering two generation and one log-likelihood request."""
    from eval import mmlu as M
    from eval.data import MMLUItem
    from eval.tasks import get_task

    d, model, tok = tiny_dir
    prompts = [tok("Question: 2+2?\nAnswer:")["input_ids"], tok("abc abc abc")["input_ids"]]
    task = get_task("mmlu")
    item = MMLUItem("anatomy/0", "anatomy", "Which bone?", ("Femur", "Humerus", "Tibia", "Skull"), 1)
    ctx = M.context(task, item)
    pairs = [M.encode_pair(tok, ctx, c) for c in M.continuations(task, item)]
    reqs = [{"id": i, "prompt_ids": p} for i, p in enumerate(prompts)]
    reqs.append({"id": item.id, "seqs": [a + b for a, b in pairs], "n_cont": [len(b) for _, b in pairs]})
    req = V.WorkerRequest(model=str(d), dtype="float32", max_model_len=512, enforce_eager=True, max_tokens=16,
                          speculative_config=V.speculative_config("prompt-lookup", 3), requests=reqs)
    return {"events": list(V.run_worker(req)), "prompts": prompts, "item": item, "ctx": ctx, "task": task}


@pytest.mark.slow
@needs_vllm
def test_real_vllm_matches_the_engine_with_ngram_speculation(tiny_dir, real_run):
    from specdec.api import SpecDecoder
    from specdec.config import EngineConfig, StopConfig

    d, model, tok = tiny_dir
    dec = SpecDecoder(model, tok, engine=EngineConfig(dtype="float32"))
    ours = []
    for p in real_run["prompts"]:
        ours.append([t for r in dec.stream_ids(torch.tensor([p]), stop=StopConfig(max_new_tokens=16)) for t in r.tokens])
    evs = real_run["events"]
    items = [e for e in evs if e["event"] == "item" and "token_ids" in e]
    assert evs[0]["event"] == "ready" and evs[0]["startup_s"] > 0 and evs[-1]["event"] == "done"
    assert [e["token_ids"] for e in items] == ours  # greedy, fp32: token for token
    assert sum(e["spec"]["draft_tokens"] for e in items) > 0


@pytest.mark.slow
@needs_vllm
def test_real_vllm_loglik_matches_the_engine(tiny_dir, real_run):
    from eval import mmlu as M
    from specdec.api import SpecDecoder
    from specdec.config import EngineConfig

    d, model, tok = tiny_dir
    task, item = real_run["task"], real_run["item"]
    ours = M.LoglikScorer(SpecDecoder(model, tok, engine=EngineConfig(dtype="float32")).target, tok).score(
        real_run["ctx"], M.continuations(task, item))
    got = [e for e in real_run["events"] if e.get("id") == item.id][0]
    assert got["loglik"] == pytest.approx([o[0] for o in ours], abs=1e-3)


def test_root_cause_is_pulled_out_of_the_log():
    lines = ["(Worker) INFO starting", "(Worker) ERROR Traceback (most recent call last):",
             "(Worker) ERROR ValueError: Available memory on node 0 (3.79/23.54 GiB) on kv cache allocation is less",
             "(EngineCore) ERROR RuntimeError: Engine core initialization failed. See root cause above."]
    cause = V.root_cause(lines)
    assert cause.startswith("ValueError: Available memory") and "VLLM_CPU_KVCACHE_SPACE=2" in cause
    assert V.root_cause(["nothing here"]) == ""


@pytest.mark.slow
@needs_vllm
def test_real_vllm_with_the_aded_proposer_matches_the_engine(tiny_dir):
    """This project's ADED inside vLLM (custom_class), greedy, batch 1 and batched: vLLM's outputs equal this
    engine's plain greedy outputs token for token, and the proposer drafted."""
    from specdec.api import SpecDecoder
    from specdec.config import EngineConfig, StopConfig

    d, model, tok = tiny_dir
    prompts = [tok("abc abc abc abc")["input_ids"], tok("1 2 3 1 2 3 1 2")["input_ids"], tok("xyz")["input_ids"]]
    dec = SpecDecoder(model, tok, engine=EngineConfig(dtype="float32"))
    ours = [[t for r in dec.stream_ids(torch.tensor([p]), stop=StopConfig(max_new_tokens=16)) for t in r.tokens]
            for p in prompts]
    for batch in (False, True):
        req = V.WorkerRequest(model=str(d), dtype="float32", max_model_len=512, enforce_eager=True, max_tokens=16,
                              speculative_config=V.speculative_config("aded", 3), batch=batch,
                              drafter_options={"store": "empty"},
                              requests=[{"id": i, "prompt_ids": p} for i, p in enumerate(prompts)])
        evs = list(V.run_worker(req))
        items = sorted((e for e in evs if e["event"] == "item"), key=lambda e: e["id"])
        assert [e["token_ids"] for e in items] == ours, batch
        drafted = sum(e["spec"]["draft_tokens"] for e in items) if not batch else \
            next(e for e in evs if e["event"] == "batch")["spec"]["draft_tokens"]
        assert drafted > 0, batch


def test_proposer_env_carries_the_options_and_checks_the_budget_before_vllm_loads():
    aded = V.speculative_config("aded", 4)
    env = V.proposer_env({}, aded, {"store": "empty"}, {"budget": "off"})
    assert json.loads(env["SPECDEC_DRAFTER_OPTIONS"]) == {"store": "empty"} and "PYTHONPATH" in env
    assert json.loads(env["SPECDEC_PROPOSER_OPTIONS"]) == {"budget": "off"}
    kept = V.proposer_env({"SPECDEC_PROPOSER_OPTIONS": '{"warmup": 4}'}, aded, None)
    assert kept["SPECDEC_PROPOSER_OPTIONS"] == '{"warmup": 4}'  # the caller's own, when none is given
    with pytest.raises(InputError, match="budget"):
        V.proposer_env({"SPECDEC_PROPOSER_OPTIONS": '{"budget": "always"}'}, aded, None)
    assert V.proposer_env({}, V.speculative_config("prompt-lookup", 4), None) == {}  # vLLM's own ngram: nothing
