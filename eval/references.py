"""A finished GSM8K generation run as replay references: each item's prompt and the run's output, as token ids.

Why: under greedy decoding a run's outputs are what the target commits, so drafters and budgets can be compared
by replaying drafts along them (specdec.drafters.aded.tune.replay for this engine's trees,
specdec.backends.vllm_replay for vLLM's batches), in seconds instead of a model run per setting.
"""
from __future__ import annotations

import json
from pathlib import Path

from specdec.errors import DataError


def run_references(folder: str | Path, tokenizer, data_dir: str | None = None, limit: int | None = None
                   ) -> tuple[list[list[int]], list[list[int]]]:
    """(prompt ids, output ids) per item of the `specdec eval run` folder `folder` (a GSM8K generation task),
    prompts rebuilt from the run's own task and data (checked against the run's prompt hashes)."""
    from eval.data import load_gsm8k
    from eval.gsm8k import GSM8KPrompter, prompt_sha256
    from eval.tasks import get_task

    folder = Path(folder)
    run_file, results = folder / "run.json", folder / "results.jsonl"
    if not run_file.is_file() or not results.is_file():
        raise DataError(f"{folder}: not a finished `specdec eval run` folder (run.json and results.jsonl)")
    run = json.loads(run_file.read_text())
    task = get_task(run["task"])
    if task.family != "gsm8k" or task.scoring != "generate" or task.num_fewshot:
        raise DataError(f"{folder}: task {run['task']} is not a zero-shot GSM8K generation task")
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()][:limit]
    items = {it.id: it for it in load_gsm8k(data_dir or run.get("data"), run.get("split") or task.split)}
    prompter = GSM8KPrompter(task)
    prompts, refs = [], []
    for r in rows:
        if r["id"] not in items:
            raise DataError(f"{folder}: item {r['id']} is not in the data ({data_dir or run.get('data')})")
        prompt = prompter.prompt(items[r["id"]])
        if r.get("prompt_sha256") and prompt_sha256(prompt) != r["prompt_sha256"]:
            raise DataError(f"{folder}: item {r['id']}'s prompt differs from the run's (other data or template)")
        text = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False) \
            if isinstance(prompt, list) else prompt
        prompts.append(tokenizer(text, add_special_tokens=False)["input_ids"])
        refs.append(tokenizer(r["text"], add_special_tokens=False)["input_ids"])
    return prompts, refs


def bench_references(path: str | Path, tokenizer, setup: str = "plain", data_dir: str | None = None
                     ) -> tuple[list[list[int]], list[list[int]], list[str]]:
    """(prompt ids, output ids, category) per prompt of a `specdec bench --json` file: the prompts rebuilt from
    the bench's own prompt spec and data (each checked against the token count the bench recorded), the outputs
    those of `setup` (its greedy outputs: the plain row's are the target's own). Spec-Bench prompts cover
    categories a GSM8K run does not (coding, translation, ...)."""
    from specdec.bench.prompts import load_prompts
    from specdec.prompt import encode_prompt

    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        cfg, rows = doc["config"], doc["setups"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: not a `specdec bench --json` file ({e})") from None
    if setup not in rows or not rows[setup].get("per_prompt"):
        raise DataError(f"{path}: no per-prompt outputs for setup {setup!r} (setups: {', '.join(rows)})")
    if (cfg.get("sampling") or {}).get("temperature", 0.0) != 0.0:
        raise DataError(f"{path}: a sampled bench; replay references must be greedy outputs")
    items = load_prompts(cfg["prompts"], data_dir or cfg.get("data_dir"), bool(cfg.get("per_category")))
    counts = cfg.get("prompt_tokens") or []
    prompts, refs, cats = [], [], []
    for r in rows[setup]["per_prompt"]:
        i = int(r["prompt_index"])
        if i >= len(items) or "output_ids" not in r:
            raise DataError(f"{path}: prompt {i} is not in {cfg['prompts']!r} or has no output ids")
        ids = encode_prompt(tokenizer, items[i].text, cfg.get("chat"))
        if i < len(counts) and len(ids) != counts[i]:
            raise DataError(f"{path}: prompt {i} has {len(ids)} tokens here, {counts[i]} in the bench "
                            "(other data, tokenizer or chat setting)")
        prompts.append(ids)
        refs.append([int(t) for t in r["output_ids"]])
        cats.append(items[i].category or items[i].source)
    return prompts, refs, cats
