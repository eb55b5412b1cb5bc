"""specdec.check.lossless and `specdec check lossless`: every registered drafter x policy against plain decoding,
on tiny random models; the check must also catch a lossy engine (a broken verify)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "mlm_generate"))
sys.path.insert(0, str(Path(__file__).parents[1] / "policies" / "specdecpp"))

from spec_helpers import install_tiny_zoo  # noqa: E402
from specdec.api import SpecDecoder  # noqa: E402
from specdec.check.lossless import LosslessConfig, chi_square, random_prompts, run_check  # noqa: E402
from specdec.cli.main import app  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def resources(tmp_path_factory, draft_model):
    """Options that let every built-in drafter and policy be built on the tiny pair."""
    from mlm_fixtures import make_bert, make_mlm_tokenizer
    from specdecpp_helpers import make_head_file

    d = tmp_path_factory.mktemp("check")
    mtok = make_mlm_tokenizer("bert", words=[f"w{i}" for i in range(61)])
    make_bert(mtok).save_pretrained(d / "mlm")
    mtok.save_pretrained(d / "mlm")
    head = make_head_file(d / "head.safetensors", draft_model, seed=3)
    return {"drafter_options": {"aded": {"store": "empty"}, "mlm": {"mlm": str(d / "mlm")},
                                "hybrid": {"min_match": 2}},
            "policy_options": {"specdecpp": {"head": str(head)}}}


@pytest.fixture(scope="module")
def dec(target_model, draft_model, tokenizer):
    return SpecDecoder(target_model, tokenizer, model_loader=lambda name: (draft_model, tokenizer), draft="d")


def check(dec, **kw):
    rows = []
    rep = run_check(dec, LosslessConfig(**kw), lambda r: rows.append(json.dumps(r)), lambda msg: None)
    return rep, rows


def test_every_registered_drafter_and_policy_is_lossless(dec, resources):
    from policies import POLICIES
    from specdec.drafters import DRAFTERS

    rep, written = check(dec, prompts=12, max_new_tokens=16, samples=400, **resources)
    greedy = {(r["drafter"], r["policy"]): r for r in rep["greedy"]}
    assert set(greedy) == {(d, p) for d in DRAFTERS.names() for p in POLICIES.names()}  # from the registries
    ok = [key for key, r in greedy.items() if r["status"] == "identical"]
    assert len(ok) >= 15, {key: (r["status"], r.get("reason")) for key, r in greedy.items()}
    for key, r in greedy.items():
        assert r["status"] in ("identical", "skipped"), (key, r)
        if r["status"] == "skipped":
            assert r["reason"], key  # a skipped row always says why
        else:
            assert r["drafted"] > 0 and r["identical_prompts"] == 12
    sampling = {r["drafter"]: r for r in rep["sampling"]}
    assert set(sampling) == set(DRAFTERS.names())
    for name in ("draft-model", "prompt-lookup"):
        r = sampling[name]
        assert r["status"] == "pass" and r["accepted"] > 0 and r["cells"] >= 5, r
    assert rep["complete"] and rep["summary"]["passed"] and rep["summary"]["problems"] == 0
    assert len(written) == len(rep["greedy"]) + len(rep["sampling"]) + 1  # rewritten after every row, then final
    assert json.loads(written[0])["complete"] is False


def test_a_lossy_engine_is_caught(dec, resources, monkeypatch):
    """Power: accept every drafted token (greedy and sampled alike) -- the check must say NOT lossless."""
    import torch

    import specdec.engine.loop as loop
    from specdec.drafters.base import VerifyResult

    real = loop.verify

    def accept_all(logits, draft, sampling, generator=None):
        res = real(logits, draft, sampling, generator)
        k = draft.length
        if k == 0 or draft.tree is not None:
            return res
        tokens = draft.tokens[:, :k]
        bonus = logits[:, k].argmax(-1, keepdim=True)  # (1, 1) whatever the target says after the whole draft
        return VerifyResult(torch.cat([tokens, bonus], dim=1), k, k, list(range(k)), True)

    monkeypatch.setattr(loop, "verify", accept_all)
    rep, _ = check(dec, prompts=6, max_new_tokens=12, samples=300, drafters=("draft-model",), policies=("constant",))
    assert rep["greedy"][0]["status"] == "differs"
    d = rep["greedy"][0]["differing"][0]
    assert d["plain"][d["position"]] != d["speculative"][d["position"]]
    assert rep["sampling"][0]["status"] == "fail" and rep["sampling"][0]["pvalue"] < 1e-3
    assert rep["summary"]["passed"] is False and rep["summary"]["problems"] == 2


def test_combinations_that_cannot_be_built_are_skipped_not_passed(target_model, tokenizer):
    plain_only = SpecDecoder(target_model, tokenizer)  # no draft model
    rep, _ = check(plain_only, prompts=3, max_new_tokens=8, samples=0, drafters=("draft-model",),
                   policies=("constant",))
    assert rep["greedy"][0]["status"] == "skipped" and "draft" in rep["greedy"][0]["reason"]
    assert rep["summary"]["passed"] is False  # nothing was checked: not a pass


def test_random_prompts_are_ordinary_tokens_with_a_repeated_span(tokenizer):
    ps = random_prompts(tokenizer, 64, 50, (8, 20), seed=0)
    assert ps == random_prompts(tokenizer, 64, 50, (8, 20), seed=0) and len(ps) == 50
    special = set(tokenizer.all_special_ids)
    assert all(8 <= len(p) <= 20 and not special & set(p) for p in ps)
    repeats = sum(any(p[i:i + 2] == p[-2:] for i in range(len(p) - 2)) for p in ps)
    assert repeats >= 45  # the tail copies an earlier span


def test_chi_square():
    probs = {(0, 0): 0.5, (0, 1): 0.25, (1, 0): 0.25}
    assert chi_square({(0, 0): 500, (0, 1): 250, (1, 0): 250}, probs)[1] > 0.99
    assert chi_square({(0, 0): 700, (0, 1): 150, (1, 0): 150}, probs)[1] < 1e-6
    assert chi_square({(0, 0): 999, (1, 1): 1}, probs)[1] == 0.0  # outside the support


@pytest.mark.parametrize("kw,match", [({"prompts": 0}, "--prompts"), ({"top_k": 1}, "--top-k"),
                                      ({"alpha": 2.0}, "--alpha"), ({"temperature": float("nan")}, "--temperature"),
                                      ({"drafters": ("nope",)}, "unknown drafter 'nope'; known:")])
def test_config_is_checked(kw, match):
    from specdec.errors import SpecDecError

    with pytest.raises(SpecDecError, match=match):
        LosslessConfig(**kw)


@pytest.fixture
def tiny_zoo(monkeypatch, target_model, draft_model, tokenizer):
    return install_tiny_zoo(monkeypatch, {"tiny-target": target_model, "tiny-draft": draft_model}, tokenizer)


def test_cli_writes_json_and_a_table(tiny_zoo, tmp_path):
    out = tmp_path / "r" / "check.json"
    res = runner.invoke(app, ["check", "lossless", "--target", "tiny-target", "--draft", "tiny-draft",
                              "--prompts", "4", "-n", "10", "--samples", "200", "--drafter", "draft-model",
                              "--drafter", "prompt-lookup", "--policy", "constant", "--policy", "heuristic",
                              "--json", str(out)])
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    assert rep["complete"] and rep["summary"]["passed"] and len(rep["greedy"]) == 4 and len(rep["sampling"]) == 2
    assert "lossless check" in res.stdout and "identical" in res.stdout
    assert "lossless:" in res.stderr


@pytest.mark.parametrize("args,match", [
    (["--prompts", "0"], "--prompts must be >= 1"),
    (["--drafter", "nope"], "unknown drafter 'nope'"),
    (["--drafter-opt", "store=empty"], "expected NAME.KEY=VALUE"),
    (["--draft", "nope"], "draft: no tiny model 'nope'"),
])
def test_cli_bad_input_is_one_line_before_any_model_loads(tiny_zoo, tmp_path, args, match):
    res = runner.invoke(app, ["check", "lossless", "--target", "tiny-target", *args])
    assert res.exit_code == 1 and "Traceback" not in res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and match in lines[0], res.stderr
    assert tiny_zoo == []


def test_cli_json_into_a_folder_is_refused_before_loading(tiny_zoo, tmp_path):
    res = runner.invoke(app, ["check", "lossless", "--target", "tiny-target", "--json", str(tmp_path)])
    assert res.exit_code == 1 and "is a folder" in res.stderr and tiny_zoo == []


# ------------------------------------------------------------------ slow: at scale, and on the real pair
@pytest.mark.slow
def test_one_thousand_random_prompts_on_tiny_float32_models_zero_differences(dec, resources):
    """The issue's scale: 1,000 prompts, 0 differences allowed (float32 tiny models: no near-tie noise).
    Every drafter under the constant policy and every policy under the draft model (the full cross product
    at 12 prompts is the test above)."""
    from policies import POLICIES
    from specdec.drafters import DRAFTERS

    rows = []
    for drafters, policies in (((tuple(DRAFTERS.names())), ("constant",)),
                               (("draft-model",), tuple(p for p in POLICIES.names() if p != "constant"))):
        rep, _ = check(dec, prompts=1000, max_new_tokens=10, samples=0, drafters=drafters, policies=policies,
                       **resources)
        rows += rep["greedy"]
    ran = [r for r in rows if r["status"] != "skipped"]
    assert len(ran) >= len(rows) - 1, [(r["drafter"], r["policy"], r.get("reason")) for r in rows]
    assert all(r["status"] == "identical" and r["identical_prompts"] == 1000 for r in ran), \
        [(r["drafter"], r["policy"], r["status"]) for r in ran]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "llamacpp"])
def test_the_real_pair_in_exact_mode(backend):
    """The bundled 1.5B target and 0.5B draft in exact mode (every target pass padded to 8 rows): greedy
    identity for the chain drafters under every simple policy, and the sampling test for the draft model."""
    import torch

    import specdec
    from specdec.config import EngineConfig
    from specdec.weights import kernels

    if backend == "llamacpp":
        pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (the llamacpp extra)")
    torch.set_num_threads(2)
    # Without the AVX-512 build (PyTorch's int4 kernel, or the AVX2 build, whose 8-row passes cost 384 and 133 ms
    # on a 2-core AVX2 EPYC against ~100 on AVX-512) exact mode's 8-row passes made this test run past 20 minutes
    # there (2026-12-07, CI's command, PyTorch's kernel): off AVX-512 it checks greedy identity on one prompt, and
    # the sampling test runs on the llamacpp variant and where the AVX-512 build runs.
    full = backend != "torch" or kernels.mode() == "vnni"
    dec = specdec.load("qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct", drafter="none",
                       engine=EngineConfig(backend=backend, exact_query_len=8, max_context=512))
    rep, _ = check(dec, prompts=3 if full else 1, max_new_tokens=24, samples=80 if full else 0, top_k=4,
                   drafters=("draft-model", "prompt-lookup", "hybrid"), policies=("constant", "confidence"),
                   drafter_options={"hybrid": {"min_match": 2}})
    greedy = [(r["drafter"], r["policy"], r["status"]) for r in rep["greedy"]]
    assert greedy and all(st == "identical" for _, _, st in greedy), greedy
    if full:
        sampling = {r["drafter"]: r for r in rep["sampling"]}
        assert sampling["draft-model"]["status"] == "pass" and sampling["draft-model"]["accepted"] > 0, sampling
    assert rep["summary"]["passed"]
