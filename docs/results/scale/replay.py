"""Replay vLLM proposer settings on GSM8K without vLLM (specdec.backends.vllm_replay): greedy batched decoding
against a vLLM plain run's outputs, a step-cost model for the clock. Ranks settings; speed figures come from vLLM.

    python docs/results/scale/replay.py --refs docs/results/scale/2026-12-05/gsm8k-b32-plain --batch 32 \
        --setup plain --setup aded --setup 'aded:{"budget": "off"}' --setup 'aded:{"drafter": {"iterations": 150}}'

A setup is `plain` or `NAME[:JSON]` with NAME a proposer (aded, prompt-lookup, suffix) and JSON the budget's
options (specdec.budget.BudgetConfig) plus "drafter": the drafter's options. Prints one JSON line per setup; --json writes the list.
"""
from __future__ import annotations

import argparse
import json
import sys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refs", required=True, help="a finished `specdec eval run gsm8k_chat` folder (results.jsonl)")
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--setup", action="append", required=True)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b-instruct", help="the tokenizer's model (zoo name or path)")
    ap.add_argument("--data", default=None, help="data folder (default: the project's data path)")
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--cost", default="0.075,0.0065,1.25e-5", help="step model: base,per_row,per_context seconds")
    ap.add_argument("--json", default=None, help="write the rows (a JSON list) here")
    a = ap.parse_args()

    from eval.references import run_references
    from specdec.backends.vllm_proposers import PROPOSERS
    from specdec.backends.vllm_replay import StepModel, replay
    from specdec.budget import BudgetConfig
    from specdec.jsonl import write_json_atomic
    from specdec.errors import InputError
    from specdec.zoo.load import load_tokenizer

    from specdec.errors import DataError

    try:
        setups = []
        for s in a.setup:  # every setup checked before anything runs
            name, _, opt = s.partition(":")
            if name != "plain" and name not in PROPOSERS:
                raise InputError(f"--setup {s}: expected plain or one of {', '.join(PROPOSERS)}")
            opts = json.loads(opt) if opt else {}
            drafter = opts.pop("drafter", {})
            setups.append((s, name, drafter, BudgetConfig(**opts)))
        base, per_row, per_ctx = (float(x) for x in a.cost.split(","))
        model = StepModel(base=base, per_row=per_row, per_context=per_ctx)
        tok = load_tokenizer(a.model)
        prompts, refs = run_references(a.refs, tok, a.data)
    except (InputError, DataError, ValueError, TypeError) as e:
        sys.exit(f"error: {e}")
    plain, rows = None, []
    for label, name, drafter, budget in setups:
        prop = None if name == "plain" else PROPOSERS[name](k=4, tokenizer=tok, options=drafter, budget=budget)
        r = replay(prop, prompts, refs, a.batch, model, a.new)
        plain = plain or (r.tokens_per_second if name == "plain" else None)
        out = {"setup": label, "batch": a.batch, "tok_s": round(r.tokens_per_second, 2),
               "vs_plain": round(r.tokens_per_second / plain, 3) if plain else None, "steps": r.steps,
               "drafted": r.drafted, "accepted": r.accepted,
               "proposer_ms_per_step": round(r.proposer_seconds / r.steps * 1e3, 2)}
        rows.append(out)
        print(json.dumps(out), flush=True)
        if a.json:  # the rows so far, atomically, after each one
            write_json_atomic(a.json, rows)


if __name__ == "__main__":
    main()
