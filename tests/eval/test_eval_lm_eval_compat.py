"""The lm-eval agreement tooling: export (local data + YAML that includes lm-eval's templates) and compare
(against a hand-made lm-eval output folder; lm-eval itself is not needed here)."""
import json

import pytest

from eval import lm_eval_compat as C
from eval.pipeline import execute
from specdec.errors import InputError


@pytest.fixture()
def lm_tasks(tmp_path):
    d = tmp_path / "lm_eval_tasks"
    (d / "mmlu" / "default").mkdir(parents=True)
    (d / "mmlu" / "default" / "_default_template_yaml").write_text("dataset_path: cais/mmlu\n")
    (d / "gsm8k").mkdir()
    (d / "gsm8k" / "gsm8k.yaml").write_text("task: gsm8k\n")
    return d


def test_export_mmlu_and_gsm8k(tmp_path, data_dir, lm_tasks):
    info = C.export("mmlu", tmp_path / "x", lm_tasks, str(data_dir), "anatomy,marketing", per_subject=2, seed=0)
    assert info == {"task": "mmlu", "lm_eval_task": "mmlu_local", "items": 4, "num_fewshot": 0}
    cfg = json.loads((tmp_path / "x" / "tasks" / "mmlu_local_anatomy.yaml").read_text())
    assert cfg["include"].endswith("_default_template_yaml") and cfg["dataset_path"] == "json"
    assert cfg["description"] == "The following are multiple choice questions (with answers) about anatomy.\n\n"
    rows = [json.loads(x) for x in (tmp_path / "x" / "data" / "mmlu_anatomy_test.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and set(rows[0]) == {"question", "subject", "choices", "answer", "specdec_id"}
    group = json.loads((tmp_path / "x" / "tasks" / "mmlu_local.yaml").read_text())
    assert group["task"] == ["mmlu_local_anatomy", "mmlu_local_marketing"]
    info = C.export("gsm8k", tmp_path / "g", lm_tasks, str(data_dir), limit=3)
    assert info["items"] == 3 and (tmp_path / "g" / "tasks" / "gsm8k_local.yaml").exists()
    with pytest.raises(InputError, match="export supports mmlu"):
        C.export("gsm8k_chat", tmp_path / "c", lm_tasks, str(data_dir))


def _write_samples(folder, task, rows):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results_2026-01-01T00-00-00.json").write_text(json.dumps({"results": {}}))
    (folder / f"samples_{task}_2026-01-01T00-00-00.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_compare_mmlu(tmp_path, data_dir, decoder):
    ours = tmp_path / "ours"
    execute("mmlu", out=ours, data_dir=str(data_dir), decoder=decoder, subjects="anatomy", plots=False, say=lambda m: None)
    recs = [json.loads(x) for x in (ours / "results.jsonl").read_text().splitlines()]
    rows = []
    for i, r in enumerate(recs):
        ll = list(r["loglik"])
        if i == 0:  # lm-eval disagrees on the first question
            ll[(r["pred"] + 1) % 4] = max(ll) + 1
        pred = max(range(4), key=lambda j: ll[j])
        rows.append({"doc": {"specdec_id": r["id"]}, "filter": "none", "prompt_hash": r["prompt_sha256"],
                     "filtered_resps": [[str(v), "False"] for v in ll], "acc": float(pred == r["answer"])})
    _write_samples(tmp_path / "lm" / "model", "mmlu_local_anatomy", rows)
    rep = C.compare(tmp_path / "lm", ours)
    assert rep["n"] == 3 and rep["same_prompt"] == 3 and rep["same_prediction"] == 2
    assert rep["disagreements"][0]["id"] == recs[0]["id"]
    assert rep["diff_points"] == pytest.approx(100 * (rep["ours"] - rep["lm_eval"]))
    assert "agreement with lm-eval: mmlu (3 items)" in C.compare_markdown(rep)


def test_compare_gsm8k(tmp_path, data_dir, decoder):
    ours = tmp_path / "ours"
    execute("gsm8k", out=ours, data_dir=str(data_dir), decoder=decoder, limit=2, max_new_tokens=4, plots=False,
            say=lambda m: None)
    recs = [json.loads(x) for x in (ours / "results.jsonl").read_text().splitlines()]
    rows = []
    for r in recs:
        for ours_key, lm_key in (("strict", "strict-match"), ("flexible", "flexible-extract")):
            rows.append({"doc": {"specdec_id": r["id"]}, "filter": lm_key, "prompt_hash": r["prompt_sha256"],
                         "resps": [[r["text"]]], "filtered_resps": [r["preds"][ours_key]],
                         "exact_match": float(r["correct"][ours_key])})
    _write_samples(tmp_path / "lm" / "m", "gsm8k_local", rows)
    rep = C.compare(tmp_path / "lm", ours)
    assert rep["same_text"] == 2 and rep["same_prompt"] == 2 and rep["within_0_5_points"]
    assert rep["filters"]["flexible"]["same_extracted"] == 2


def test_compare_needs_lm_eval_output(tmp_path):
    with pytest.raises(InputError, match="no lm-eval results"):
        C.compare(tmp_path, tmp_path)
