"""Agreement with lm-evaluation-harness, offline, on the local files.

lm-eval (0.4.13) runs in its own venv (``.venv-lmeval``: it pulls datasets/evaluate/sklearn... that the
main env does not need). It cannot reach the hub here, so `export` writes its tasks as YAML files that
`include` lm-eval's OWN task templates (``lm_eval/tasks/mmlu/default/_default_template_yaml``,
``lm_eval/tasks/gsm8k/gsm8k.yaml``) and override only where the data comes from (``dataset_path: json``
with local ``data_files``): the prompts, few-shot sampling, stop strings, filters and metrics are
lm-eval's, not ours. The exported data is exactly the items a `specdec eval run` scores (same subset).

    specdec eval lm-eval export mmlu --subjects S1,S2 --out runs/agree/lm-tasks
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv-lmeval/bin/lm_eval --model hf \\
        --model_args pretrained=MODEL_DIR,dtype=float32 --include_path runs/agree/lm-tasks \\
        --tasks mmlu_local --batch_size 1 --log_samples --output_path runs/agree/lm-out
    specdec eval run mmlu --model NAME --subjects S1,S2 --dtype float32 --out runs/agree/ours
    specdec eval lm-eval compare runs/agree/lm-out runs/agree/ours

`compare` reports both accuracies, the difference in points, and the per-item agreement (same predicted
letter / same extracted answer / same generated text).
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from specdec.errors import InputError

from eval import runner as R

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LMEVAL_VENV = REPO_ROOT / ".venv-lmeval"


def lm_eval_tasks_dir(venv: str | os.PathLike | None = None) -> Path:
    """The installed lm_eval/tasks folder (found by asking the lm-eval venv's interpreter)."""
    py = Path(venv or os.environ.get("SPECDEC_LMEVAL_VENV") or DEFAULT_LMEVAL_VENV) / "bin" / "python"
    if not py.is_file():
        raise InputError(f"no lm-eval venv at {py.parent.parent}; build it with `python3 -m venv .venv-lmeval && "
                         f".venv-lmeval/bin/pip install torch==2.13.0 transformers==5.24.0 'lm-eval[hf]==0.4.13'` "
                         f"or pass --lm-eval-tasks DIR")
    out = subprocess.run([str(py), "-c", "import lm_eval, os; print(os.path.join(os.path.dirname(lm_eval.__file__), 'tasks'))"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def _yaml(d: dict) -> str:
    return json.dumps(d, indent=2) + "\n"  # JSON is YAML; no quoting surprises with '\n' in descriptions


def export(task_name: str, out: Path, lm_tasks: Path, data_dir: str | None = None, subjects: str | None = None,
           per_subject: int | None = None, seed: int = 0, limit: int | None = None, num_fewshot: int | None = None) -> dict:
    """Write data/*.jsonl (the exact items) and tasks/*.yaml (lm-eval's templates, local data)."""
    from eval.data import select_gsm8k, select_mmlu
    from eval.tasks import get_task

    task = get_task(task_name, num_fewshot=num_fewshot)
    data, tasks = out / "data", out / "tasks"
    data.mkdir(parents=True, exist_ok=True)
    tasks.mkdir(parents=True, exist_ok=True)
    if task.name == "mmlu":
        template = lm_tasks / "mmlu" / "default" / "_default_template_yaml"
        if not template.is_file():
            raise InputError(f"{template} not found: is --lm-eval-tasks the lm_eval/tasks folder?")
        items, dev = select_mmlu(task, data_dir, None, subjects, per_subject, seed, limit)
        if not task.num_fewshot:  # lm-eval still needs the fewshot split to exist
            from eval.data import load_mmlu, parse_subjects

            dev = load_mmlu(data_dir, "dev", parse_subjects(subjects))
        names = list(dict.fromkeys(x.subject for x in items))
        for s in names:
            rows = [{"question": x.question, "subject": s, "choices": list(x.choices), "answer": x.answer,
                     "specdec_id": x.id} for x in items if x.subject == s]
            devrows = [{"question": x.question, "subject": s, "choices": list(x.choices), "answer": x.answer,
                        "specdec_id": f"dev:{x.id}"} for x in dev[s]]  # same columns in every split
            for split, rs in (("test", rows), ("dev", devrows)):
                (data / f"mmlu_{s}_{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rs), encoding="utf-8")
            cfg = {"include": str(template), "task": f"mmlu_local_{s}", "task_alias": s,
                   "dataset_path": "json", "dataset_name": None,
                   "dataset_kwargs": {"data_files": {"test": str((data / f"mmlu_{s}_test.jsonl").resolve()),
                                                     "dev": str((data / f"mmlu_{s}_dev.jsonl").resolve())}},
                   "description": f"The following are multiple choice questions (with answers) about "
                                  f"{s.replace('_', ' ')}.\n\n"}
            (tasks / f"mmlu_local_{s}.yaml").write_text(_yaml(cfg), encoding="utf-8")
        group = {"group": "mmlu_local", "task": [f"mmlu_local_{s}" for s in names],
                 "aggregate_metric_list": [{"metric": "acc", "weight_by_size": True}], "metadata": {"version": 2}}
        (tasks / "mmlu_local.yaml").write_text(_yaml(group), encoding="utf-8")
        lm_task = "mmlu_local"
    elif task.name == "gsm8k":
        template = lm_tasks / "gsm8k" / "gsm8k.yaml"
        if not template.is_file():
            raise InputError(f"{template} not found: is --lm-eval-tasks the lm_eval/tasks folder?")
        items, train = select_gsm8k(task, data_dir, None, limit)
        (data / "gsm8k_test.jsonl").write_text(
            "".join(json.dumps({"question": x.question, "answer": x.answer, "specdec_id": x.id}) + "\n" for x in items),
            encoding="utf-8")
        (data / "gsm8k_train.jsonl").write_text(
            "".join(json.dumps({"question": x.question, "answer": x.answer, "specdec_id": x.id}) + "\n" for x in train),
            encoding="utf-8")
        cfg = {"include": str(template), "task": "gsm8k_local", "tag": [], "dataset_path": "json", "dataset_name": None,
               "dataset_kwargs": {"data_files": {"train": str((data / "gsm8k_train.jsonl").resolve()),
                                                 "test": str((data / "gsm8k_test.jsonl").resolve())}}}
        (tasks / "gsm8k_local.yaml").write_text(_yaml(cfg), encoding="utf-8")
        lm_task = "gsm8k_local"
    else:
        raise InputError(f"export supports mmlu (letter) and gsm8k (5-shot), the tasks lm-eval defines the same "
                         f"way; got {task.name}")
    info = {"task": task.name, "lm_eval_task": lm_task, "items": len(items), "num_fewshot": task.num_fewshot}
    R.atomic_write_json(out / "export.json", info)
    return info


def _latest(folder: Path, pattern: str) -> list[Path]:
    found = sorted(folder.rglob(pattern), key=lambda p: p.stat().st_mtime)
    return found


def read_lm_eval(out_dir: Path) -> tuple[dict, dict[str, dict[str, dict]]]:
    """(results json, {specdec id: {filter name: sample}}) from an lm-eval --output_path with --log_samples
    (lm-eval logs one sample per document and filter: "none" for MMLU, strict-match / flexible-extract)."""
    res = _latest(out_dir, "results_*.json")
    if not res:
        raise InputError(f"no lm-eval results_*.json under {out_dir} (run lm_eval with --output_path {out_dir})")
    results = json.loads(res[-1].read_text(encoding="utf-8"))
    samples: dict[str, dict[str, dict]] = {}
    stamp = res[-1].stem.removeprefix("results_")
    files = [p for p in _latest(out_dir, "samples_*.jsonl") if p.stem.endswith(stamp)] or _latest(out_dir, "samples_*.jsonl")
    for p in files:
        for line in p.read_text(encoding="utf-8").splitlines():
            if line.strip():
                s = json.loads(line)
                sid = s.get("doc", {}).get("specdec_id")
                if sid:
                    samples.setdefault(sid, {})[s.get("filter", "none")] = s
    if not samples:
        raise InputError(f"no lm-eval samples with specdec ids under {out_dir} (run lm_eval with --log_samples on "
                         f"the exported tasks)")
    return results, samples


def compare(lm_out: Path, ours_dir: Path) -> dict:
    from eval.tasks import LETTERS

    results, by_id = read_lm_eval(lm_out)
    ours = {r["id"]: r for r in R.read_results(ours_dir / R.RESULTS)}
    run = json.loads((ours_dir / R.RUN_FILE).read_text(encoding="utf-8"))
    common = [i for i in ours if i in by_id]
    if not common:
        raise InputError(f"no common items between {lm_out} and {ours_dir}: were they made from the same export?")
    first = {i: next(iter(by_id[i].values())) for i in common}
    rep: dict = {"task": run["task"], "n": len(common), "only_ours": len(ours) - len(common),
                 "only_lm_eval": len(by_id) - len(common),
                 "same_prompt": sum(ours[i].get("prompt_sha256") == first[i].get("prompt_hash") for i in common)}
    if run["task"] == "mmlu":
        lm_pred, dll = {}, []
        for i in common:
            lls = [float(r[0] if isinstance(r, (list, tuple)) else r) for r in first[i]["filtered_resps"]]
            lm_pred[i] = max(range(len(lls)), key=lambda j: lls[j])
            dll += [abs(float(a) - b) for a, b in zip(ours[i]["loglik"], lls)]
        ours_acc = sum(bool(ours[i]["correct"]) for i in common) / len(common)
        lm_acc = sum(float(first[i]["acc"]) for i in common) / len(common)
        rep.update(ours=ours_acc, lm_eval=lm_acc, diff_points=100 * (ours_acc - lm_acc),
                   same_prediction=sum(lm_pred[i] == ours[i]["pred"] for i in common),
                   max_abs_loglik_diff=max(dll) if dll else None,
                   disagreements=[{"id": i, "ours": LETTERS[ours[i]["pred"]], "lm_eval": LETTERS[lm_pred[i]]}
                                  for i in common if lm_pred[i] != ours[i]["pred"]][:50])
        by_subj: dict[str, list] = {}
        for i in common:
            by_subj.setdefault(i.split("/")[0], []).append(i)
        rep["subjects"] = {s: {"n": len(ids), "ours": sum(bool(ours[i]["correct"]) for i in ids) / len(ids),
                               "lm_eval": sum(float(first[i]["acc"]) for i in ids) / len(ids)}
                           for s, ids in sorted(by_subj.items())}
    else:
        rep["filters"] = {}
        for ours_key, lm_key in (("strict", "strict-match"), ("flexible", "flexible-extract")):
            have = [i for i in common if lm_key in by_id[i]]
            o = sum(bool(ours[i]["correct"].get(ours_key)) for i in common) / len(common)
            lm = sum(float(by_id[i][lm_key]["exact_match"]) for i in have) / len(have) if have else None
            same = sum(by_id[i][lm_key]["filtered_resps"][0] == ours[i]["preds"].get(ours_key) for i in have)
            rep["filters"][ours_key] = {"ours": o, "lm_eval": lm, "same_extracted": same}

        def lm_text(sample):
            r = sample["resps"][0]
            return r[0] if isinstance(r, list) else r

        rep["same_text"] = sum(lm_text(first[i]) == ours[i]["text"] for i in common)
        rep["different_text"] = [i for i in common if lm_text(first[i]) != ours[i]["text"]][:50]
        st = rep["filters"]["strict"]
        rep.update(ours=st["ours"], lm_eval=st["lm_eval"],
                   diff_points=100 * (st["ours"] - st["lm_eval"]) if st["lm_eval"] is not None else None)
    rep["within_0_5_points"] = rep.get("diff_points") is not None and abs(rep["diff_points"]) <= 0.5
    return rep


def compare_markdown(rep: dict) -> str:
    lines = [f"# agreement with lm-eval: {rep['task']} ({rep['n']} items)", "",
             f"ours {100 * rep['ours']:.2f} vs lm-eval {100 * rep['lm_eval']:.2f}: difference "
             f"{rep['diff_points']:+.2f} points ({'within' if rep['within_0_5_points'] else 'NOT within'} 0.5)", "",
             f"identical prompt (sha256) on {rep['same_prompt']}/{rep['n']} items", ""]
    if "subjects" in rep:
        lines += [f"same predicted letter on {rep['same_prediction']}/{rep['n']} questions; largest log-likelihood "
                  f"difference {rep['max_abs_loglik_diff']:.2e}", "",
                  "| subject | n | ours | lm-eval |", "|---|---:|---:|---:|"]
        lines += [f"| {s} | {v['n']} | {100 * v['ours']:.2f} | {100 * v['lm_eval']:.2f} |" for s, v in rep["subjects"].items()]
    else:
        lines += [f"identical generated text on {rep['same_text']}/{rep['n']} questions", "",
                  "| filter | ours | lm-eval | same extracted answer |", "|---|---:|---:|---:|"]
        for k, v in rep["filters"].items():
            lm = f"{100 * v['lm_eval']:.2f}" if v["lm_eval"] is not None else "-"
            lines.append(f"| {k} | {100 * v['ours']:.2f} | {lm} | {v['same_extracted']}/{rep['n']} |")
    return "\n".join(lines) + "\n"
