"""Runs the bundled pair on a few prompts with several candidate-length setups, interleaved prompt by prompt
(so that load changes on a shared machine hit every setup alike), and records tokens/s, tau, the draft
lengths chosen per round (stop-length distribution) and whether the output equals plain decoding's.

    python docs/results/specdecpp/measure_policy.py --prompts gsm8k:6 --max-new-tokens 96 --threads 1 \
        --setup plain --setup k4=constant:4 --setup specdecpp=specdecpp --out docs/results/specdecpp/x.json

Setups: NAME=POLICY[:K][,opt=value...]; "plain" = no drafter.
"""
from __future__ import annotations

import argparse
import collections
import json
import statistics
import time

import torch

import specdec
from specdec.bench.prompts import load_prompts
from specdec.config import SamplingConfig, SpecConfig, StopConfig
from specdec.stats import GenerationStats


def parse(setup: str) -> tuple[str, SpecConfig | None]:
    if setup == "plain":
        return "plain", None
    name, _, rest = setup.partition("=")
    head, *opts = rest.split(",")
    policy, _, k = head.partition(":")
    options = {}
    for o in opts:
        key, _, val = o.partition("=")
        try:
            options[key] = json.loads(val)
        except json.JSONDecodeError:
            options[key] = val
    return name, SpecConfig(drafter="draft-model", policy=policy, k=int(k) if k else 4, policy_options=options)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", default="gsm8k:6")
    ap.add_argument("--skip", type=int, default=0, help="drop the first N prompts")
    ap.add_argument("--pick", default="", help="comma-separated prompt indices to keep (after --skip)")
    ap.add_argument("--setup", action="append", required=True)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    texts = load_prompts(a.prompts)[a.skip:]
    if a.pick:
        texts = [texts[int(i)] for i in a.pick.split(",")]
    dec = specdec.load("qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct", threads=a.threads)
    made = []
    plain_policy_for = dec.policy_for
    dec.policy_for = lambda spec: made.append(plain_policy_for(spec)) or made[-1]  # keep the policy objects
    setups = [parse(s) for s in a.setup]
    sampling = SamplingConfig(temperature=a.temperature, seed=a.seed)
    stop = StopConfig(max_new_tokens=a.max_new_tokens)
    rows = collections.defaultdict(list)
    hist = collections.defaultdict(collections.Counter)
    # warm-up (one short generation per setup; also lets specdecpp's online cost estimates settle)
    warm = dec.encode(texts[0].text)
    for name, spec in setups:
        for _ in dec.stream_ids(warm, sampling=sampling, stop=StopConfig(max_new_tokens=16),
                                spec=spec or SpecConfig(drafter=None)):
            pass
    for i, p in enumerate(texts):
        ids = dec.encode(p.text)
        ref = None
        for name, spec in setups:
            st = GenerationStats()
            made.clear()
            t0 = time.perf_counter()
            out = [t for r in dec.stream_ids(ids, sampling=sampling, stop=stop, spec=spec or SpecConfig(drafter=None),
                                             stats=st) for t in r.tokens]
            wall = time.perf_counter() - t0
            if name == "plain":
                ref = out
            pol = made[-1] if made else None
            lengths = [d for d, _ in getattr(pol, "history", [])]
            hist[name].update(lengths)
            extra = pol.cost_estimates() if hasattr(pol, "cost_estimates") else None
            rows[name].append({"prompt": i, "source": p.source, "category": p.category, "tokens": st.new_tokens, "seconds": wall, "tokens_per_s": st.new_tokens / wall,
                               "rounds": st.rounds, "drafted": st.drafted, "accepted": st.accepted,
                               "tau": st.mean_accepted_length, "identical": out == ref if ref is not None else None,
                               "costs": extra})
            print(f"prompt {i} {name:12s} {st.new_tokens:4d} tok {st.new_tokens / wall:6.2f} tok/s tau {st.mean_accepted_length:.2f} "
                  f"drafted/round {st.drafted / max(1, st.rounds):.2f} same={out == ref}", flush=True)
    summary = {}
    for name, _ in setups:
        r = rows[name]
        sp = [x["tokens_per_s"] / y["tokens_per_s"] for x, y in zip(r, rows["plain"])] if "plain" in rows else []
        summary[name] = {
            "tokens_per_s_median": statistics.median(x["tokens_per_s"] for x in r),
            "speedup_vs_plain_median": statistics.median(sp) if sp else None,
            "tau": sum(x["tokens"] for x in r) / max(1, sum(x["rounds"] for x in r)),
            "acceptance": sum(x["accepted"] for x in r) / max(1, sum(x["drafted"] for x in r)),
            "all_identical_to_plain": all(x["identical"] for x in r) if a.temperature == 0 else None,
            "draft_length_histogram": dict(sorted(hist[name].items())),
        }
        print(name, json.dumps(summary[name]))
    with open(a.out, "w") as f:
        json.dump({"args": vars(a), "summary": summary, "rows": rows, "machine": {"threads": a.threads}}, f, indent=1)


if __name__ == "__main__":
    main()
