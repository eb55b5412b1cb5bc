"""The whole `specdec eval run` as a function (`execute`): check everything before the output folder is
touched, read the items, load the backend behind one interface (eval.lm: this engine or vLLM; a masked LM
for mmlu_mlm), stream records into a resumable run folder, then write the summary, markdown and plots.
The command line (eval/cli.py) only parses options into a RunConfig and calls `execute`."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from specdec.config import DEFAULT_K, DEFAULT_TARGET, RunConfig, override
from specdec.errors import InputError
from specdec.spec_check import draft_length

from eval import runner as R
from eval.data import select_gsm8k, select_mmlu
from eval.tasks import TaskSpec, get_task

DEFAULT_MLM = "bert-tiny-splade"


def _say(msg: str) -> None:
    """Progress on stderr; a closed pipe (`... | head`) never stops a run."""
    try:
        print(msg, file=sys.stderr, flush=True)
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


ENGINE_BACKENDS = ("auto", "torch", "llamacpp")
FIELD_OF = {"model": "target", "exact_len": "exact_query_len"}  # eval's spellings of RunConfig fields


def run_config(task: TaskSpec, run: RunConfig | None, fields: dict) -> RunConfig:
    """The RunConfig of an eval run: `run` (whole) with `fields` applied (RunConfig, SpecConfig or EngineConfig
    fields by name; `model` is the target). With a draft and no drafter named, the drafter is draft-model; the
    default model is the task's (a masked LM for mmlu_mlm). Generation length and sampling are the task's."""
    fields = {FIELD_OF.get(k, k): v for k, v in fields.items()}
    target, draft = fields.pop("target", None), fields.pop("draft", None)
    base = run or RunConfig(target=DEFAULT_MLM if task.scoring == "mlm" else DEFAULT_TARGET, stop=None)
    if run is None and fields.get("drafter") is None and draft is not None:
        fields["drafter"] = "draft-model"
    fields = {k: v for k, v in fields.items() if v is not None or k == "drafter"}
    spec, engine = override((base.spec, base.engine), fields, "eval option")
    return replace(base, target=target or base.target, draft=draft or base.draft, spec=spec, engine=engine, stop=None)


def execute(task_name: str, run: RunConfig | None = None, *, backend: str | None = None,
            out: str | os.PathLike = "runs/eval", data_dir: str | None = None, dataset: str | None = None,
            limit: int | None = None, subjects: str | None = None, per_subject: int | None = None, seed: int = 0,
            num_fewshot: int | None = None, max_new_tokens: int | None = None, fewshot_file: str | None = None,
            max_context: int | None = None, compare_plain: bool = False, overwrite: bool = False, plots: bool = True,
            vllm_venv: str | None = None, vllm_batch: int | None = None, decoder=None, classifier=None,
            evaluate_hook=None, say=_say, **fields) -> dict:
    """The whole `eval run`, as a function: `run` (models, drafter, policy, runner) taken whole, `fields` single
    RunConfig fields over it (model=, draft=, drafter=, k=, weights=, exact_len=, ...); the rest are the
    evaluation's own settings. `backend`: this engine's runner (auto, torch, llamacpp) or vllm. Tests pass
    `decoder` / `classifier` to skip loading; `evaluate_hook(fn) -> fn` wraps the per-item evaluator."""
    backend = backend or (run.engine.backend if run is not None else "auto")
    if backend == "hf":  # earlier name of this engine's torch runner with the bf16 weights
        backend = "torch"
        if fields.get("weights", run.engine.weights if run else "auto") == "auto":
            fields["weights"] = "bf16"
    if backend not in ENGINE_BACKENDS + ("vllm",):
        raise InputError(f"--backend must be one of {', '.join(ENGINE_BACKENDS + ('vllm',))}, got {backend!r}")
    if backend != "vllm":
        fields["backend"] = backend
    task = get_task(task_name, num_fewshot=num_fewshot, max_new_tokens=max_new_tokens)
    run = run_config(task, run, fields)  # each value checked by its config, before anything is read
    model, draft, spec, engine = run.target, run.draft, run.spec, run.engine
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
    exact_len = engine.exact_query_len
    if exact_len is not None and (backend not in ("auto", "torch") or task.family != "gsm8k"):
        raise InputError("--exact-len is for generation tasks (gsm8k*) on this engine's torch runner")
    if compare_plain and task.family != "gsm8k":
        raise InputError("--compare-plain applies to generation tasks (gsm8k*)")
    if not run.sampling.greedy and (task.family != "gsm8k" or compare_plain):
        raise InputError("--temperature applies to generation tasks (gsm8k*) without --compare-plain (sampled outputs "
                         "are compared by nobody)")
    if task.family == "mmlu" and spec.drafter is not None:
        raise InputError("MMLU is scored by log-likelihood: no generation, so no drafter; drop --drafter/--draft")
    from specdec.spec_check import check_run, check_spec
    from specdec.validate import set_threads

    # the one validation, before any data or model: this engine's runs whole (model names, drafter / policy
    # names, options and k), vLLM's speculative setup (its models are checked by the vLLM client)
    if backend == "vllm":
        from specdec.backends import vllm_client

        vllm_client.check_spec(spec, draft)  # this engine's drafters by their registry, vLLM's own by name
        vllm_client.check_ready(spec.drafter, vllm_venv)
    elif decoder is not None:
        check_spec(spec)
    elif task.scoring != "mlm":
        check_run(replace(run, stop=None))
    set_threads(engine.threads)
    if fewshot_file:
        from eval.gsm8k import read_fewshot_file

        read_fewshot_file(fewshot_file)  # a missing, binary or malformed file: one line now

    # 1. data (all checks before the output folder is touched)
    if task.family == "mmlu":
        items, dev = select_mmlu(task, data_dir, dataset, subjects, per_subject, seed, limit)
    else:
        items, train = select_gsm8k(task, data_dir, dataset, limit)
    from eval.data import resolve_data_dir

    config = {"task": task.name, "scoring": task.scoring, "model": model, "draft": draft, "drafter": spec.drafter,
              "policy": spec.policy, "k": draft_length(spec), "drafter_options": spec.drafter_options,
              "policy_options": spec.policy_options, "backend": backend, "weights": engine.weights,
              "dtype": engine.dtype, "split": task.split, "num_fewshot": task.num_fewshot,
              "fewshot_file": fewshot_file, "max_new_tokens": task.max_new_tokens if task.family == "gsm8k" else None,
              "data": dataset or str(resolve_data_dir(data_dir)), "subjects": subjects, "per_subject": per_subject,
              "seed": seed, "limit": limit, "compare_plain": compare_plain, "max_context": max_context or "auto",
              "exact_len": exact_len, "threads": engine.threads, "argv": sys.argv[1:]}
    if vllm_batch:  # batched vLLM runs are their own runs (throughput differs); unset, earlier folders still resume
        config["vllm_batch"] = vllm_batch
    vllm_dtype, vllm_why = engine.dtype, None
    if backend == "vllm":
        from specdec.backends.vllm_client import worker_dtype

        vllm_dtype, vllm_why = worker_dtype(engine.dtype)
        if vllm_why:  # recorded where it differs (earlier folders resume)
            config["vllm_dtype"] = vllm_dtype
    if not run.sampling.greedy:
        config["sampling"] = {"temperature": run.sampling.temperature, "top_p": run.sampling.top_p,
                              "top_k": run.sampling.top_k, "seed": run.sampling.seed}
    folder = R.Run(out, config, overwrite=overwrite)
    folder.check()  # fails now, before a model is loaded, if --out holds another run

    # 2. model + evaluator
    t_load = time.perf_counter()
    engine_side = backend != "vllm"
    if max_context is None and task.scoring != "mlm" and not (engine_side and decoder is not None):
        max_context = auto_max_context(task, model, items, dev if task.family == "mmlu" else None,
                                       train if task.family == "gsm8k" else None, fewshot_file)
        say(f"max context (longest prompt + generation): {max_context} tokens")
    evaluate = batch_evaluate = lm = None
    if task.scoring == "mlm":
        if classifier is None:
            from mlm_generate.classifier import MLMClassifier

            classifier = MLMClassifier(model)
        from eval.mmlu import make_mlm_evaluator

        evaluate = make_mlm_evaluator(classifier)
    else:
        if engine_side:
            from eval.lm import EngineLM

            if decoder is None:
                from specdec.api import open_run

                decoder = open_run(replace(run, engine=replace(engine, max_context=max_context), stop=None))
            lm = EngineLM(decoder, spec, compare_plain, run.sampling)
        else:
            if vllm_why:
                say(vllm_why)
            lm = _vllm_lm(run, max_context, vllm_venv, vllm_batch, out, say, vllm_dtype)
        batch_evaluate = lm_evaluator(task, lm, dev if task.family == "mmlu" else None,
                                      train if task.family == "gsm8k" else None, fewshot_file, model,
                                      backend="vllm" if not engine_side else None)
        if engine_side:  # item by item: a failure stops the run after the last written line
            evaluate = lambda item, run_batch=batch_evaluate: next(iter(run_batch([item])))  # noqa: E731
            batch_evaluate = None
    load_s = time.perf_counter() - t_load
    if evaluate_hook is not None and evaluate is not None:
        evaluate = evaluate_hook(evaluate)

    # 3. run (streams results.jsonl; resumes)
    say(f"{task.name}: {len(items)} items -> {out}")
    t0 = time.perf_counter()
    records = folder.execute(items, evaluate, progress=_progress(t0, task, say), batch_evaluate=batch_evaluate)
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
    if lm is not None and "runner" in lm.info:
        summary["runner"] = lm.info["runner"]
    if lm is not None and lm.info.get("startup_s") is not None:
        summary["startup_s"] = lm.info["startup_s"]
    if lm is not None and lm.info.get("batch_wall_s"):  # vLLM batched: throughput and the batch's draft counters
        summary["vllm_batch"] = {"requests_side_by_side": vllm_batch, "wall_s": lm.info["batch_wall_s"],
                                 **lm.info.get("batch_spec", {})}
        b, speed = summary["vllm_batch"], summary.get("speed")
        if speed and b.get("draft_tokens"):  # vLLM counts drafts per batch, not per request: alpha and tau from them
            speed["acceptance_rate"] = b["accepted_tokens"] / b["draft_tokens"]
            steps = speed["new_tokens"] - b["accepted_tokens"]
            speed["mean_accepted_length"] = speed["new_tokens"] / steps if steps > 0 else 0.0
    if task.family == "mmlu" and engine_side and task.scoring != "mlm":
        summary["truncated"] = lm.scorer.truncated
    if max_context:
        summary["max_context"] = max_context
    if task.family == "gsm8k" and engine_side and decoder is not None:
        summary["load_s"] = decoder.load_seconds if decoder.load_seconds is not None else load_s
    md = R.markdown(summary)
    if plots:
        from eval.plots import plots_for

        try:
            summary["plots"] = [str(p.relative_to(Path(out))) for p in plots_for(summary, Path(out) / "plots")]
        except Exception as e:  # noqa: BLE001 - a plot never loses a finished run
            summary["plots_error"] = f"{type(e).__name__}: {e}"
    folder.finish(summary, md)
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
        from specdec.prompt import encode_prompt

        check_chat_template(tok, task, model)
        prompter = GSM8KPrompter(task, train, fewshot_file)
        need = max(len(encode_prompt(tok, prompter.prompt(x), chat=False)) for x in items) + task.max_new_tokens + 64
    return max(512, -(-need // 256) * 256)


def _vllm_lm(run: RunConfig, max_context: int, venv, batch: bool, out, say, dtype: str):
    """vLLM with the run's drafter mapped to its speculative_config (specdec.backends.vllm_client), computing in
    `dtype` (vllm_client.worker_dtype, decided once by `execute`)."""
    from specdec.backends import vllm_client as V
    from specdec.zoo import resolve
    from specdec.zoo.load import load_tokenizer

    from eval.lm import VLLMLM

    spec = run.spec
    model_dir = resolve(run.target)
    draft_dir = resolve(run.draft) if run.draft else None
    spec_cfg = V.speculative_config(spec.drafter, spec.k or DEFAULT_K, draft_dir, spec.drafter_options, spec.policy)
    return VLLMLM(model_dir, load_tokenizer(model_dir), dtype=dtype, max_context=max_context,
                  speculative_config=spec_cfg, venv=venv, batch=batch, sampling=run.sampling,
                  drafter_options=spec.drafter_options if V.uses_proposer(spec_cfg) else None,
                  log_path=Path(out).parent / f".{Path(out).name}.vllm.log", say=say)


def lm_evaluator(task: TaskSpec, lm, dev, train, fewshot_file, model: str, backend: str | None = None):
    """pending items -> their records, through `lm` (any EvalLM): the task builds each request once and
    scores each answer (eval.mmlu / eval.gsm8k), records stream as the backend answers."""
    tok = lm.tokenizer
    if task.family == "gsm8k":
        from eval.gsm8k import GSM8KPrompter, check_chat_template, gen_record, gen_request

        check_chat_template(tok, task, model)
        prompter = GSM8KPrompter(task, train, fewshot_file)

        def run_gsm8k(pending):
            built = {x.id: (x, *gen_request(task, prompter, x, tok)) for x in pending}
            for item_id, gen in lm.generate_until([req for _, req, _ in built.values()]):
                item, req, prompt = built[item_id]
                yield gen_record(task, item, gen, prompt, len(req.prompt_ids), backend)

        return run_gsm8k
    from eval.mmlu import loglik_record, loglik_request

    def run_mmlu(pending):
        built = {x.id: (x, *loglik_request(task, x, dev, tok)) for x in pending}
        for item_id, ll in lm.loglikelihood([req for _, req, _ in built.values()]):
            item, _, ctx = built[item_id]
            rec = loglik_record(task, item, ll, ctx)
            if backend:
                rec["backend"] = backend
            yield rec

    return run_mmlu
