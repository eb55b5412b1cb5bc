"""Issue 13: ADED stores compared by τ on held-out prompts, by replay (specdec.drafters.aded.tune.replay: this
engine's ADED trees walked along the target's greedy outputs; no model runs).

    python docs/results/aded/2026-12-05-b/stores.py --refs docs/results/scale/2026-12-05-c/gsm8k-b8-plain \
        --store empty --store bundled --store STORE.safetensors ... [--json OUT]

References: a vLLM plain run of GSM8K test (the first 100 questions; the bundled store was counted from the
0.5B's answers to GSM8K *train* questions, so these are held out). τ = accepted tokens per round + 1.
"""
from __future__ import annotations

import argparse
import json
import sys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refs", required=True)
    ap.add_argument("--store", action="append", required=True, help="empty, bundled or a store file")
    ap.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    from eval.references import run_references
    from specdec.drafters.aded.config import AdedConfig
    from specdec.drafters.aded.drafter import bundled_store
    from specdec.drafters.aded.store import TrigramStore
    from specdec.drafters.aded.tune import replay
    from specdec.jsonl import write_json_atomic
    from specdec.errors import DataError, InputError
    from specdec.zoo.load import load_tokenizer

    try:
        tok = load_tokenizer(a.model)
        prompts, refs = run_references(a.refs, tok, limit=a.limit)
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
        r = replay(store, AdedConfig(), prompts, refs, a.nodes, a.depth)
        out = {"store": name, "pairs": store.num_pairs, "tau": round(r["accepted_per_round"] + 1, 3),
               "accepted_per_round": round(r["accepted_per_round"], 3), "rounds": r["rounds"],
               "search_ms": round(r["search_ms"], 3), "nodes": a.nodes, "depth": a.depth, "prompts": len(prompts)}
        rows.append(out)
        if a.json:  # the rows so far, atomically, after each one
            write_json_atomic(a.json, rows)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
