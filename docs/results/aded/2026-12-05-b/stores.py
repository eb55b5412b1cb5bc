"""Issue 13: ADED stores compared by τ on held-out prompts, by replay (specdec.drafters.aded.tune.replay: this
engine's ADED trees walked along the target's greedy outputs; no model runs).

    python docs/results/aded/2026-12-05-b/stores.py --refs docs/results/scale/2026-12-05-c/gsm8k-b32-plain \
        --bench-refs docs/results/aded/2026-12-05/ablation.json \
        --store empty --store bundled --store STORE.safetensors ... [--json OUT]

References (held out: no store was counted from them): a vLLM plain run of GSM8K test (the first 100 questions;
the bundled store was counted from the 0.5B's answers to GSM8K *train* questions) and/or bench JSONs' plain
outputs (this engine's greedy outputs on Spec-Bench prompts, one row per category). τ = accepted tokens per
round + 1, over all references and per category.
"""
from __future__ import annotations

import argparse
import json
import sys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refs", default=None, help="a finished `specdec eval run gsm8k_chat` folder")
    ap.add_argument("--bench-refs", action="append", default=[],
                    help="a `specdec bench --json` file (its plain row's outputs); repeatable")
    ap.add_argument("--store", action="append", required=True, help="empty, bundled or a store file")
    ap.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    from eval.references import bench_references, run_references
    from specdec.drafters.aded.config import AdedConfig
    from specdec.drafters.aded.drafter import bundled_store
    from specdec.drafters.aded.store import TrigramStore
    from specdec.drafters.aded.tune import replay
    from specdec.jsonl import write_json_atomic
    from specdec.errors import DataError, InputError
    from specdec.zoo.load import load_tokenizer

    try:
        if not (a.refs or a.bench_refs):
            raise InputError("give --refs (a GSM8K eval run folder) and/or --bench-refs (a bench JSON)")
        tok = load_tokenizer(a.model)
        prompts, refs, cats = [], [], []
        if a.refs:
            prompts, refs = run_references(a.refs, tok, limit=a.limit)
            cats = ["gsm8k-100"] * len(prompts)
        for bench in a.bench_refs:
            p, r, c = bench_references(bench, tok)
            prompts, refs, cats = prompts + p, refs + r, cats + c
        stores = {}
        for s in a.store:
            if s == "empty":
                stores[s] = TrigramStore.empty(len(tok))
            elif s == "bundled":
                stores[s] = TrigramStore.load(bundled_store(tok))
            else:
                stores[s] = TrigramStore.load(s)
    except (InputError, DataError, OSError) as e:
        sys.exit(f"error: {e}")
    rows: list[dict] = []
    for name, store in stores.items():
        per = {}  # one replay per category (each prompt starts afresh: no state crosses prompts), summed
        for cat in dict.fromkeys(cats):
            idx = [i for i, c in enumerate(cats) if c == cat]
            per[cat] = replay(store, AdedConfig(), [prompts[i] for i in idx], [refs[i] for i in idx], a.nodes, a.depth)
        rounds = sum(r["rounds"] for r in per.values())
        accepted = sum(r["accepted_per_round"] * r["rounds"] for r in per.values())
        search_ms = sum(r["search_ms"] * r["rounds"] for r in per.values()) / max(rounds, 1)
        out = {"store": name, "pairs": store.num_pairs, "tau": round(accepted / max(rounds, 1) + 1, 3),
               "accepted_per_round": round(accepted / max(rounds, 1), 3), "rounds": rounds,
               "search_ms": round(search_ms, 3), "nodes": a.nodes, "depth": a.depth, "prompts": len(prompts),
               "per_category": {c: round(r["accepted_per_round"] + 1, 3) for c, r in per.items()}}
        rows.append(out)
        if a.json:  # the rows so far, atomically, after each one
            write_json_atomic(a.json, rows)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
