"""`specdec eval ...`: the command line over eval/pipeline.py (options -> a RunConfig -> `execute`), reports.

    specdec eval tasks
    specdec eval run mmlu --model qwen2.5-coder-0.5b-instruct --per-subject 10 --out runs/mmlu-05b
    specdec eval run gsm8k_chat --model qwen2.5-coder-1.5b-instruct --draft qwen2.5-coder-0.5b-instruct \
        --limit 100 --compare-plain --out runs/gsm8k-15b-draft
    specdec eval run gsm8k --model qwen2.5-coder-0.5b-instruct --backend vllm --drafter prompt-lookup --out ...
    specdec eval run gsm8k_chat --backend vllm --drafter suffixdecoding --vllm-batch 8 --out ...   # vLLM's own suffix
    specdec eval report runs/a runs/b --out runs/compare

Everything is checked (task, data files, subjects, model, chat template) before the output folder is
touched; a rerun with the same --out resumes where the last one stopped.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from specdec.cli.errors import OneLineGroup
from specdec.cli.options import (Compile, DrafterName, DrafterOpts, Draft, Dtype, ExactLen, K, Policy, PolicyOpts,
                                 Device, Temperature, Threads, TopK, TopP, Weights, run_config)
from specdec.config import DEFAULT_TARGET, EngineConfig, SpecConfig
from specdec.errors import DataError, InputError
from specdec.jsonl import write_text_atomic

from eval import runner as R
from eval.pipeline import execute  # noqa: F401  (the run itself; re-exported for callers of eval.cli)
from eval.tasks import TASKS, get_task

eval_app = typer.Typer(cls=OneLineGroup, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                       help="Evaluate models (MMLU, GSM8K): accuracy and speed, with any drafter / policy.")

_E, _P = EngineConfig(), SpecConfig()


# ------------------------------------------------------------------------------------------ commands
@eval_app.command("tasks")
def tasks_cmd() -> None:
    """List the evaluation tasks."""
    for name in TASKS.names():
        t = TASKS.create(name)
        typer.echo(f"{name:12s} {t.family}/{t.scoring}, {t.num_fewshot}-shot, split {t.split}: {t.notes}")


@eval_app.command("run")
def run_cmd(
    task: Annotated[str, typer.Argument(help="Task: mmlu, mmlu_cloze, mmlu_mlm, gsm8k, gsm8k_cot, gsm8k_chat.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (a rerun resumes it).")],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Zoo name, local folder or hub id (default: "
                                                 "the 1.5B target; mmlu_mlm: the bundled masked LM).")] = None,
    draft: Draft = None, drafter: DrafterName = None, policy: Policy = _P.policy, k: K = _P.k,
    drafter_opt: DrafterOpts = None, policy_opt: PolicyOpts = None,
    backend: Annotated[str, typer.Option("--backend", help="This engine's runner (auto, torch, llamacpp; hf = torch "
                                         "with bf16 weights) or vllm (.venv-vllm).")] = _E.backend,
    weights: Weights = _E.weights, device: Device = _E.device,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="Data folder (default $SPECDEC_DATA or ../shared/data).")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Use a dataset name instead of local files ('hf' = the task's usual name; needs the network).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Score only the first N items (after --per-subject).")] = None,
    subjects: Annotated[Optional[str], typer.Option("--subjects", help="MMLU subjects or categories, comma-separated.")] = None,
    per_subject: Annotated[Optional[int], typer.Option("--per-subject", help="MMLU: a seeded stratified subset of N questions per subject.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the stratified subset and of sampling.")] = 0,
    temperature: Temperature = 0.0, top_k: TopK = 0, top_p: TopP = 1.0,
    num_fewshot: Annotated[Optional[int], typer.Option("--num-fewshot", help="Override the task's number of examples.")] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option("--max-new-tokens", "-n", help="Override the task's generation length.")] = None,
    fewshot_file: Annotated[Optional[str], typer.Option("--fewshot-file", help="gsm8k_cot exemplars: lm-eval's gsm8k-cot.yaml or JSONL.")] = None,
    dtype: Dtype = _E.dtype, threads: Threads = _E.threads, compile: Compile = _E.compile,
    max_context: Annotated[Optional[int], typer.Option("--max-context", help="KV cache length (default: what the longest prompt needs).")] = None,
    exact_len: ExactLen = _E.exact_query_len,
    compare_plain: Annotated[bool, typer.Option("--compare-plain", help="Also decode each question without speculation: wall-clock saving, identical outputs.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start the output folder over.")] = False,
    plots: Annotated[bool, typer.Option("--plots/--no-plots")] = True,
    vllm_venv: Annotated[Optional[str], typer.Option("--vllm-venv", help="vLLM venv (default .venv-vllm).")] = None,
    vllm_batch: Annotated[Optional[int], typer.Option("--vllm-batch", help="vLLM: decode N requests side by side (all prompts submitted at once, vLLM's max_num_seqs = N; throughput). Default: one at a time.")] = None,
) -> None:
    """Run TASK and write results.jsonl, summary.json, summary.md and plots/ under --out."""
    from eval.pipeline import DEFAULT_MLM

    default_model = DEFAULT_MLM if get_task(task).scoring == "mlm" else DEFAULT_TARGET
    run = run_config({"target": model or default_model, "draft": draft, "drafter": drafter, "policy": policy, "k": k,
                      "drafter_opt": drafter_opt, "policy_opt": policy_opt, "weights": weights, "dtype": dtype,
                      "threads": threads, "compile": compile, "exact_len": exact_len, "temperature": temperature, "device": device,
                      "top_k": top_k, "top_p": top_p, "seed": seed})
    execute(task, run=run, backend=backend, out=out, data_dir=data_dir, dataset=dataset, limit=limit,
            subjects=subjects, per_subject=per_subject, seed=seed, num_fewshot=num_fewshot,
            max_new_tokens=max_new_tokens, fewshot_file=fewshot_file, max_context=max_context,
            compare_plain=compare_plain, overwrite=overwrite, plots=plots, vllm_venv=vllm_venv, vllm_batch=vllm_batch)
    typer.echo((Path(out) / R.SUMMARY_MD).read_text(encoding="utf-8"))


@eval_app.command("report")
def report_cmd(
    dirs: Annotated[list[Path], typer.Argument(help="Run folders (each with summary.json).")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Where to write the combined report (several runs).")] = None,
) -> None:
    """Print a finished run's report (regenerating summary.md and plots), or compare several runs."""
    summaries = []
    for d in dirs:
        p = Path(d) / R.SUMMARY
        if not p.is_file():
            n = len(R.read_results(Path(d) / R.RESULTS))
            hint = f" ({n} items done: rerun the same `specdec eval run` command to finish)" if n else ""
            raise InputError(f"{d} has no {R.SUMMARY}{hint}")
        try:
            summary = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"{p} is damaged ({e}); rerun the same `specdec eval run` command to rewrite it") from None
        if not isinstance(summary, dict) or "task" not in summary or "n" not in summary:
            raise DataError(f"{p} is not a summary of `specdec eval run` (no task and n); rerun the run to rewrite it")
        summaries.append(summary)
    if len(summaries) == 1 and out is None:
        md = R.markdown(summaries[0])
        write_text_atomic(Path(dirs[0]) / R.SUMMARY_MD, md)
        from eval.plots import plots_for

        plots_for(summaries[0], Path(dirs[0]) / "plots")
        typer.echo(md)
        return
    md = compare_markdown(summaries, [str(d) for d in dirs])
    if out is not None:
        from eval.plots import speed_bars

        write_text_atomic(Path(out) / "report.md", md)
        if any("speed" in s for s in summaries):
            speed_bars(summaries, Path(out) / "speed.png")
    typer.echo(md)


def compare_markdown(summaries: list[dict], names: list[str]) -> str:
    from eval.plots import label_of

    lines = ["| run | task | model | backend:drafter | n | accuracy | tokens/s | α | τ | speedup vs paired plain |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, s in zip(names, summaries):
        sp = s.get("speed", {})
        acc = s.get("acc", 0.0)
        speed = f"{sp['tokens_per_s']:.2f}" if sp else "-"
        a = f"{sp['acceptance_rate']:.3f}" if sp and sp.get("acceptance_rate") else "-"
        t = f"{sp['mean_accepted_length']:.2f}" if sp else "-"
        up = f"{s['plain']['speedup']:.2f}x" if "plain" in s else "-"
        lines.append(f"| {name} | {s['task']} | {s.get('run', {}).get('model', '?')} | {label_of(s)} | {s['n']} | "
                     f"{100 * acc:.2f} | {speed} | {a} | {t} | {up} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ lm-eval agreement
lm_eval_app = typer.Typer(cls=OneLineGroup, no_args_is_help=True, add_completion=False,
                          help="Agreement with lm-eval: export the items we score as lm-eval tasks, compare results.")
eval_app.add_typer(lm_eval_app, name="lm-eval")


@lm_eval_app.command("export")
def lm_eval_export_cmd(
    task: Annotated[str, typer.Argument(help="mmlu or gsm8k")],
    out: Annotated[Path, typer.Option("--out", "-o")],
    data_dir: Annotated[Optional[str], typer.Option("--data-dir")] = None,
    subjects: Annotated[Optional[str], typer.Option("--subjects")] = None,
    per_subject: Annotated[Optional[int], typer.Option("--per-subject")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    limit: Annotated[Optional[int], typer.Option("--limit")] = None,
    num_fewshot: Annotated[Optional[int], typer.Option("--num-fewshot")] = None,
    lm_eval_tasks: Annotated[Optional[Path], typer.Option("--lm-eval-tasks", help="lm_eval/tasks folder (default: ask .venv-lmeval).")] = None,
) -> None:
    from eval.lm_eval_compat import export, lm_eval_tasks_dir

    info = export(task, out, lm_eval_tasks or lm_eval_tasks_dir(), data_dir, subjects, per_subject, seed, limit,
                  num_fewshot)
    typer.echo(json.dumps(info))


@lm_eval_app.command("compare")
def lm_eval_compare_cmd(lm_out: Path, ours: Path,
                json_out: Annotated[Optional[Path], typer.Option("--json")] = None) -> None:
    from eval.lm_eval_compat import compare, compare_markdown as lm_markdown

    rep = compare(lm_out, ours)
    if json_out:
        R.atomic_write_json(json_out, rep)
    typer.echo(lm_markdown(rep))


if __name__ == "__main__":  # python -m eval.cli ...
    eval_app()
