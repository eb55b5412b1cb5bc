"""`specdec eval ...`: run an evaluation task, report on finished runs.

    specdec eval tasks
    specdec eval run mmlu --model qwen2.5-coder-0.5b-instruct --per-subject 10 --out runs/mmlu-05b
    specdec eval run gsm8k_chat --model qwen2.5-coder-1.5b-instruct --draft qwen2.5-coder-0.5b-instruct \
        --limit 100 --compare-plain --out runs/gsm8k-15b-draft
    specdec eval run gsm8k --model qwen2.5-coder-0.5b-instruct --backend vllm --drafter prompt-lookup --out ...
    specdec eval report runs/a runs/b --out runs/compare

Everything is checked (task, data files, subjects, model, chat template) before the output folder is
touched; a rerun with the same --out resumes where the last one stopped.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from specdec.cli.errors import OneLineGroup

from specdec.config import parse_kv
from specdec.errors import DataError, InputError
from specdec.jsonl import write_text_atomic

from eval import runner as R
from eval.data import select_gsm8k, select_mmlu
from eval.tasks import TASKS, TaskSpec, get_task

eval_app = typer.Typer(cls=OneLineGroup, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                       help="Evaluate models (MMLU, GSM8K): accuracy and speed, with any drafter / policy.")

DEFAULT_MLM = "bert-tiny-splade"


def _say(msg: str) -> None:
    """Progress on stderr; a closed pipe (`... | head`) never stops a run."""
    try:
        typer.echo(msg, err=True)
    except (BrokenPipeError, OSError):
        pass


# ------------------------------------------------------------------------------------------ building a run
def _progress(t0: float, task: TaskSpec, say=_say):
    def show(i: int, n: int, rec: dict) -> None:
        if "correct" in rec and isinstance(rec["correct"], dict):
            ok = rec["correct"].get(task.primary)
            sp = rec.get("speed", {})
            tps = sp.get("new_tokens", 0) / sp["decode_s"] if sp.get("decode_s") else 0.0
            extra = f" {task.primary}={'ok' if ok else 'x'} {sp.get('new_tokens', 0)} tok {tps:.1f} tok/s"
            if "plain" in rec:
                extra += f" | plain identical={rec['plain']['identical']}"
        else:
            extra = f" {'ok' if rec.get('correct') else 'x'}"
        if i == n or i % 10 == 0 or "speed" in rec:
            say(f"[{i}/{n}] {rec['id']}{extra} ({time.perf_counter() - t0:.0f}s)")

    return show


def encode_with_tokenizer(tokenizer, prompt) -> list[int]:
    """The same ids SpecDecoder.encode gives: raw text with the tokenizer's special tokens (never wrapped in a
    chat turn here: chat tasks pass their turns); chat turns through the chat template with the generation prompt."""
    from specdec.api import encode_prompt

    return encode_prompt(tokenizer, prompt, chat=False)


ENGINE_BACKENDS = ("auto", "torch", "llamacpp")


def execute(task_name: str, *, model: str | None = None, draft: str | None = None, drafter: str | None = None,
            policy: str = "constant", k: int = 4, drafter_options: dict | None = None,
            policy_options: dict | None = None, backend: str = "auto", weights: str = "auto",
            out: str | os.PathLike = "runs/eval",
            data_dir: str | None = None, dataset: str | None = None, limit: int | None = None,
            subjects: str | None = None, per_subject: int | None = None, seed: int = 0,
            num_fewshot: int | None = None, max_new_tokens: int | None = None, fewshot_file: str | None = None,
            dtype: str = "bfloat16", threads: int | None = None, compile: bool = False, max_context: int | None = None,
            exact_len: int | None = None, compare_plain: bool = False, overwrite: bool = False, plots: bool = True, vllm_venv: str | None = None,
            vllm_batch: bool = False, decoder=None, classifier=None, evaluate_hook=None, say=_say) -> dict:
    """The whole `eval run`, as a function (tests pass `decoder` / `classifier` to skip loading).
    `evaluate_hook(fn) -> fn` wraps the per-item evaluator (tests inject failures with it)."""
    if backend == "hf":  # earlier name of this engine's torch runner with the bf16 weights
        backend, weights = "torch", "bf16" if weights == "auto" else weights
    if backend not in ENGINE_BACKENDS + ("vllm",):
        raise InputError(f"--backend must be one of {', '.join(ENGINE_BACKENDS + ('vllm',))}, got {backend!r}")
    from specdec.config import EngineConfig

    EngineConfig(backend=backend if backend != "vllm" else "auto", weights=weights)  # bad values: one line now
    task = get_task(task_name, num_fewshot=num_fewshot, max_new_tokens=max_new_tokens)
    if task.family == "mmlu" and task.num_fewshot not in (0,) and task.scoring == "mlm":
        raise InputError("mmlu_mlm is zero-shot only")
    if task.family == "mmlu" and not 0 <= task.num_fewshot <= 5:
        raise InputError(f"MMLU few-shot examples come from the 5 dev questions per subject; --num-fewshot "
                         f"{task.num_fewshot} is out of 0..5")
    if task.num_fewshot < 0:
        raise InputError(f"--num-fewshot must be >= 0, got {task.num_fewshot}")
    if task.family == "gsm8k" and task.max_new_tokens < 1:
        raise InputError(f"--max-new-tokens must be >= 1, got {task.max_new_tokens}")
    if per_subject is not None and per_subject < 1:
        raise InputError(f"--per-subject must be >= 1, got {per_subject}")
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be >= 1, got {limit}")
    if task.family == "gsm8k" and (subjects or per_subject):
        raise InputError("--subjects / --per-subject are for MMLU tasks")
    if backend == "vllm" and task.scoring == "mlm":
        raise InputError("mmlu_mlm runs a masked LM: --backend vllm does not apply")
    if backend == "vllm" and compare_plain:
        raise InputError("--compare-plain is for this engine's backends; with vLLM run once with and once without "
                         "--drafter and compare them with `specdec eval report A B`")
    if exact_len is not None and (backend not in ("auto", "torch") or task.family != "gsm8k"):
        raise InputError("--exact-len is for generation tasks (gsm8k*) on this engine's torch runner")
    if compare_plain and task.family != "gsm8k":
        raise InputError("--compare-plain applies to generation tasks (gsm8k*)")
    model = model or (DEFAULT_MLM if task.scoring == "mlm" else None)
    if model is None:
        from specdec.config import DEFAULT_TARGET

        model = DEFAULT_TARGET
    if drafter is None and draft is not None:
        drafter = "draft-model"
    if task.family == "mmlu" and drafter not in (None, "none", "plain"):
        raise InputError("MMLU is scored by log-likelihood: no generation, so no drafter; drop --drafter/--draft")
    from specdec.config import SpecConfig
    from specdec.spec_check import check_spec
    from specdec.validate import set_threads

    if task.family == "gsm8k":  # drafter / policy names, options and k: one line now, not after the model loads
        check_spec(SpecConfig(drafter=drafter, policy=policy, k=k, drafter_options=drafter_options or {},
                              policy_options=policy_options or {}))
    set_threads(threads)
    if fewshot_file:
        from eval.gsm8k import read_fewshot_file

        read_fewshot_file(fewshot_file)  # a missing, binary or malformed file: one line now

    # 1. data (all checks before the output folder is touched)
    if task.family == "mmlu":
        items, dev = select_mmlu(task, data_dir, dataset, subjects, per_subject, seed, limit)
    else:
        items, train = select_gsm8k(task, data_dir, dataset, limit)
    from eval.data import resolve_data_dir

    config = {"task": task.name, "scoring": task.scoring, "model": model, "draft": draft, "drafter": drafter,
              "policy": policy, "k": k, "drafter_options": drafter_options or {}, "policy_options": policy_options or {},
              "backend": backend, "weights": weights, "dtype": dtype, "split": task.split, "num_fewshot": task.num_fewshot,
              "fewshot_file": fewshot_file, "max_new_tokens": task.max_new_tokens if task.family == "gsm8k" else None,
              "data": dataset or str(resolve_data_dir(data_dir)), "subjects": subjects, "per_subject": per_subject,
              "seed": seed, "limit": limit, "compare_plain": compare_plain, "max_context": max_context or "auto",
              "exact_len": exact_len, "threads": threads, "argv": sys.argv[1:]}
    run = R.Run(out, config, overwrite=overwrite)
    run.check()  # fails now, before a model is loaded, if --out holds another run

    # 2. model + evaluator
    t_load = time.perf_counter()
    engine_side = backend != "vllm"
    if max_context is None and task.scoring != "mlm" and not (engine_side and decoder is not None):
        max_context = auto_max_context(task, model, items, dev if task.family == "mmlu" else None,
                                       train if task.family == "gsm8k" else None, fewshot_file)
        say(f"max context (longest prompt + generation): {max_context} tokens")
    batch_evaluate = None
    evaluate = None
    startup: dict = {}
    runner_info: dict | None = None
    if task.scoring == "mlm":
        if classifier is None:
            from mlm_generate.classifier import MLMClassifier

            classifier = MLMClassifier(model)
        from eval.mmlu import make_mlm_evaluator

        evaluate = make_mlm_evaluator(classifier)
    elif engine_side:
        if decoder is None:
            import specdec

            decoder = specdec.load(model, draft=draft, drafter=drafter, policy=policy, k=k, dtype=dtype,
                                   compile=compile, max_context=max_context, threads=threads,
                                   exact_query_len=exact_len, drafter_options=drafter_options or {},
                                   policy_options=policy_options or {}, backend=backend, weights=weights)
        runner_info = {"name": decoder.target.name, "weights": getattr(decoder.target, "weights", "gguf")}
        if task.family == "mmlu":
            from eval.mmlu import LoglikScorer, make_loglik_evaluator

            scorer = LoglikScorer(decoder.target, decoder.tokenizer)
            evaluate = make_loglik_evaluator(task, scorer, dev)
        else:
            from eval.gsm8k import GSM8KPrompter, check_chat_template, make_engine_evaluator
            from specdec.config import SpecConfig

            check_chat_template(decoder.tokenizer, task, model)
            prompter = GSM8KPrompter(task, train, fewshot_file)
            spec = SpecConfig(drafter=drafter, policy=policy, k=k, drafter_options=drafter_options or {},
                              policy_options=policy_options or {})
            evaluate = make_engine_evaluator(decoder, task, prompter, spec, compare_plain=compare_plain)
    else:
        batch_evaluate, startup = _vllm_evaluator(task, model, draft, drafter, policy, k, drafter_options, dtype,
                                                  max_context, vllm_venv, vllm_batch, out, items,
                                                  dev if task.family == "mmlu" else None,
                                                  train if task.family == "gsm8k" else None, fewshot_file, say)
    load_s = time.perf_counter() - t_load
    if evaluate_hook is not None and evaluate is not None:
        evaluate = evaluate_hook(evaluate)

    # 3. run (streams results.jsonl; resumes)
    say(f"{task.name}: {len(items)} items -> {out}")
    t0 = time.perf_counter()
    records = run.execute(items, evaluate, progress=_progress(t0, task, say), batch_evaluate=batch_evaluate)
    wall = time.perf_counter() - t0

    # 4. summary (atomic), markdown, plots
    if task.family == "mmlu":
        from eval.mmlu import summarize
    else:
        from eval.gsm8k import summarize
    summary = summarize(task, records)
    summary["run"] = {k2: v for k2, v in config.items() if k2 != "argv"}
    summary["task_spec"] = task.to_dict()
    summary["load_s"] = load_s
    summary["wall_s_this_invocation"] = wall
    if runner_info:
        summary["runner"] = runner_info
    if startup.get("startup_s") is not None:
        summary["startup_s"] = startup["startup_s"]
    if task.family == "mmlu" and engine_side and task.scoring != "mlm":
        summary["truncated"] = scorer.truncated
    if max_context:
        summary["max_context"] = max_context
    if task.family == "gsm8k" and engine_side and decoder is not None:
        summary["load_s"] = getattr(decoder, "load_seconds", load_s)
    md = R.markdown(summary)
    if plots:
        from eval.plots import plots_for

        try:
            summary["plots"] = [str(p.relative_to(Path(out))) for p in plots_for(summary, Path(out) / "plots")]
        except Exception as e:  # noqa: BLE001 - a plot never loses a finished run
            summary["plots_error"] = f"{type(e).__name__}: {e}"
    run.finish(summary, md)
    return summary


def auto_max_context(task: TaskSpec, model: str, items, dev, train, fewshot_file) -> int:
    """The KV-cache length a run needs: its longest prompt (+ continuation or max_new_tokens + draft room),
    rounded up to 256. A static cache as long as needed and no longer (attention reads all of it)."""
    from specdec.zoo.load import load_tokenizer

    tok = load_tokenizer(model)  # an unknown name: one line, before any model loads
    if task.family == "mmlu":
        from eval.mmlu import context, continuations, encode_pair, fewshot_for

        need = 0
        for x in items:
            ctx = context(task, x, fewshot_for(task, x.subject, dev))
            pairs = [encode_pair(tok, ctx, c) for c in continuations(task, x)]
            need = max(need, len(pairs[0][0]) + sum(len(b) for _, b in pairs) + 1)
    else:
        from eval.gsm8k import GSM8KPrompter, check_chat_template

        check_chat_template(tok, task, model)
        prompter = GSM8KPrompter(task, train, fewshot_file)
        need = max(len(encode_with_tokenizer(tok, prompter.prompt(x))) for x in items) + task.max_new_tokens + 64
    return max(512, -(-need // 256) * 256)


def _vllm_evaluator(task, model, draft, drafter, policy, k, drafter_options, dtype, max_context, venv, batch, out,
                    items, dev, train, fewshot_file, say):
    """(batch_evaluate, startup) for --backend vllm: prompts are built and tokenised here, exactly as for
    the engine, and sent to the worker as token ids."""
    from specdec.backends import vllm_client as V
    from specdec.zoo import resolve
    from specdec.zoo.load import load_tokenizer

    if not V.available(venv):
        raise V.VLLMBackendError(f"--backend vllm needs the vLLM venv at {V.venv_path(venv)}; build it with "
                                 f"`bash eval/setup_vllm.sh` (a few minutes)")
    model_dir = resolve(model)
    draft_dir = resolve(draft) if draft else None
    spec_cfg = V.speculative_config(drafter, k, draft_dir, drafter_options, policy)
    tok = load_tokenizer(model_dir)
    startup: dict = {}
    log_path = Path(out).parent / f".{Path(out).name}.vllm.log"

    if task.family == "gsm8k":
        from eval.gsm8k import GSM8KPrompter, check_chat_template, cut_at_stop, prompt_sha256, score

        check_chat_template(tok, task, model)
        prompter = GSM8KPrompter(task, train, fewshot_file)

        def batch_evaluate(pending):
            if not pending:
                return
            by_id = {x.id: x for x in pending}
            texts = {x.id: prompter.prompt(x) for x in pending}
            prompts = {i: encode_with_tokenizer(tok, t) for i, t in texts.items()}
            too_long = [i for i, p in prompts.items() if len(p) + task.max_new_tokens > max_context]
            if too_long:
                raise InputError(f"{len(too_long)} prompts + max_new_tokens exceed --max-context {max_context} "
                                 f"(first: {too_long[0]}); raise --max-context")
            req = V.WorkerRequest(model=model_dir, dtype=dtype, max_model_len=max_context,
                                  speculative_config=spec_cfg, max_tokens=task.max_new_tokens, stop=list(task.stop),
                                  batch=batch, requests=[{"id": i, "prompt_ids": p} for i, p in prompts.items()])
            for ev in V.run_worker(req, venv, log_path=log_path):
                if ev["event"] == "ready":
                    startup["startup_s"] = ev["startup_s"]
                    say(f"vLLM {ev.get('vllm')} ready in {ev['startup_s']:.1f}s")
                elif ev["event"] == "item":
                    item = by_id[ev["id"]]
                    text = cut_at_stop(tok.decode(ev["token_ids"], skip_special_tokens=True), task.stop)
                    yield {"id": item.id, "prompt_tokens": len(prompts[item.id]),
                           "prompt_sha256": prompt_sha256(texts[item.id]), "text": text,
                           **score(task, item, text), "n_tokens": len(ev["token_ids"]), "speed": V.item_speed(ev),
                           "backend": "vllm"}
    else:
        from eval.mmlu import continuations, context, encode_pair, fewshot_for, sha256

        def batch_evaluate(pending):
            if not pending:
                return
            by_id = {x.id: x for x in pending}
            reqs, shas = [], {}
            for x in pending:
                ctx = context(task, x, fewshot_for(task, x.subject, dev))
                shas[x.id] = sha256(ctx)
                pairs = [encode_pair(tok, ctx, c) for c in continuations(task, x)]
                reqs.append({"id": x.id, "seqs": [a + b for a, b in pairs], "n_cont": [len(b) for _, b in pairs]})
            longest = max(len(s) for r in reqs for s in r["seqs"])
            req = V.WorkerRequest(model=model_dir, dtype=dtype, max_model_len=max(max_context, longest + 1),
                                  requests=reqs)
            for ev in V.run_worker(req, venv, log_path=log_path):
                if ev["event"] == "ready":
                    startup["startup_s"] = ev["startup_s"]
                    say(f"vLLM {ev.get('vllm')} ready in {ev['startup_s']:.1f}s")
                elif ev["event"] == "item":
                    x = by_id[ev["id"]]
                    ll = ev["loglik"]
                    pred = max(range(len(ll)), key=lambda i: ll[i])
                    rec = {"id": x.id, "subject": x.subject, "answer": x.answer, "pred": pred,
                           "correct": pred == x.answer, "loglik": ll, "prompt_sha256": shas[x.id], "backend": "vllm"}
                    if task.scoring == "cloze":
                        conts = continuations(task, x)
                        norm = [v / len(c.encode("utf-8")) for v, c in zip(ll, conts)]
                        pn = max(range(len(norm)), key=lambda i: norm[i])
                        rec.update(pred_norm=pn, correct_norm=pn == x.answer)
                    yield rec
    return batch_evaluate, startup


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
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Zoo name, local folder or hub id.")] = None,
    draft: Annotated[Optional[str], typer.Option("--draft", "-d", help="Draft model (draft-model drafter).")] = None,
    drafter: Annotated[Optional[str], typer.Option("--drafter", help="Drafter (default: draft-model with --draft, else none).")] = None,
    policy: Annotated[str, typer.Option("--policy", help="Candidate-length policy.")] = "constant",
    k: Annotated[int, typer.Option("-k", "--k", help="(Initial) draft tokens per round.")] = 4,
    drafter_opt: Annotated[Optional[list[str]], typer.Option("--drafter-opt", metavar="KEY=VALUE")] = None,
    policy_opt: Annotated[Optional[list[str]], typer.Option("--policy-opt", metavar="KEY=VALUE")] = None,
    backend: Annotated[str, typer.Option("--backend", help="This engine's runner (auto, torch, llamacpp; hf = torch "
                                         "with bf16 weights) or vllm (.venv-vllm).")] = "auto",
    weights: Annotated[str, typer.Option("--weights", help="torch runner weights: auto, bf16, int8, int4, int4-all.")] = "auto",
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="Data folder (default $SPECDEC_DATA or ../shared/data).")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Use a dataset name instead of local files ('hf' = the task's usual name; needs the network).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Score only the first N items (after --per-subject).")] = None,
    subjects: Annotated[Optional[str], typer.Option("--subjects", help="MMLU subjects or categories, comma-separated.")] = None,
    per_subject: Annotated[Optional[int], typer.Option("--per-subject", help="MMLU: a seeded stratified subset of N questions per subject.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the stratified subset.")] = 0,
    num_fewshot: Annotated[Optional[int], typer.Option("--num-fewshot", help="Override the task's number of examples.")] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option("--max-new-tokens", "-n")] = None,
    fewshot_file: Annotated[Optional[str], typer.Option("--fewshot-file", help="gsm8k_cot exemplars: lm-eval's gsm8k-cot.yaml or JSONL.")] = None,
    dtype: Annotated[str, typer.Option("--dtype")] = "bfloat16",
    threads: Annotated[Optional[int], typer.Option("--threads")] = None,
    compile: Annotated[bool, typer.Option("--compile/--no-compile")] = False,
    max_context: Annotated[Optional[int], typer.Option("--max-context", help="KV cache length (default: what the longest prompt needs).")] = None,
    exact_len: Annotated[Optional[int], typer.Option("--exact-len", metavar="N", help="Bit-exact mode: pad every target pass to N rows, so greedy speculation gives the same tokens as plain decoding in bf16 too (drafts capped at N-1).")] = None,
    compare_plain: Annotated[bool, typer.Option("--compare-plain", help="Also decode each question without speculation: wall-clock saving, identical outputs.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start the output folder over.")] = False,
    plots: Annotated[bool, typer.Option("--plots/--no-plots")] = True,
    vllm_venv: Annotated[Optional[str], typer.Option("--vllm-venv", help="vLLM venv (default .venv-vllm).")] = None,
    vllm_batch: Annotated[bool, typer.Option("--vllm-batch", help="vLLM: submit all prompts at once (throughput) instead of one by one.")] = False,
) -> None:
    """Run TASK and write results.jsonl, summary.json, summary.md and plots/ under --out."""
    execute(task, model=model, draft=draft, drafter=drafter, policy=policy, k=k,
                      drafter_options=parse_kv(drafter_opt, "--drafter-opt"),
                      policy_options=parse_kv(policy_opt, "--policy-opt"), backend=backend, weights=weights,
                      out=out,
                      data_dir=data_dir, dataset=dataset, limit=limit, subjects=subjects, per_subject=per_subject,
                      seed=seed, num_fewshot=num_fewshot, max_new_tokens=max_new_tokens, fewshot_file=fewshot_file,
                      dtype=dtype, threads=threads, compile=compile, max_context=max_context,
                      exact_len=exact_len, compare_plain=compare_plain, overwrite=overwrite, plots=plots,
                      vllm_venv=vllm_venv, vllm_batch=vllm_batch)
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
