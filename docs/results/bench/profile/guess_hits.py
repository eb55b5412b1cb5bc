"""How often the draft-model drafter's guesses stand in for a draft pass, by where they come from and their
position: each pass's guesses (tokens copied from the context after the drafted one) recorded with the length of
the context match they came from (3, 2 or 1 tokens; 0: the store), and how many of them the draft then drafted.
A guess at position j pays when it is consumed (the draft drafts it and goes on): it saves a draft pass; it costs
its row on every pass that carries it. GSM8K and code prompts of issue 23's set, 128 new tokens, greedy, hyb6.
`python docs/results/bench/profile/guess_hits.py [N_PROMPTS] [SETUP_OPTIONS_JSON]` (about a minute a prompt)."""
import collections, json, sys
import numpy as np
from specdec.api import load
from specdec.config import SpecConfig, StopConfig
from specdec.drafters import draft_model as dm
from specdec.drafters.prompt_lookup import continuation
from specdec.runners.costs import pass_costs

n = int(sys.argv[1]) if len(sys.argv) > 1 else 6
extra = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
rows = [json.loads(l) for l in open("docs/results/runners/2026-12-05-fused/prompts/piece-1.jsonl")]
prompts = [r["prompt"] for r in rows if r["category"] in ("gsm8k", "code")][:n]
spec = SpecConfig(drafter="hybrid", policy="confidence", k=8, policy_options={"threshold": 0.6},
                  drafter_options=extra)
dec = load("qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct", spec=spec)
model = dec.drafter_for(spec).model
offered = collections.Counter(); taken = collections.Counter()
last = {}
g0 = dm.DraftModelDrafter._guesses
def guesses(self, seq, limit):
    g = g0(self, seq, limit)
    _, m = continuation(seq, 3, 1, limit)
    last["g"], last["m"] = g, (m if len(g) and m else 0)
    return g
k0 = dm.DraftModelDrafter._keep
def keep(self, fed, used):
    g = last.pop("g", [])
    if g:
        lead = len(fed) - len(g)  # the drafted token (a draft pass) or none (the round's first pass)
        got = max(used - lead, 0)
        for j in range(1, len(g) + 1):
            offered[(last["m"], j)] += 1
            taken[(last["m"], j)] += j <= got
    return k0(self, fed, used)
dm.DraftModelDrafter._guesses, dm.DraftModelDrafter._keep = guesses, keep
dec.generate("warm up", max_new_tokens=8)
offered.clear(); taken.clear()
for p in prompts:
    dec.generate_ids(dec.encode(p), stop=StopConfig(max_new_tokens=128), spec=spec)
c = pass_costs(model.runner, dec.engine.cache_dir)
print(f"{len(prompts)} prompts; the draft's pass costs (ms): " +
      ", ".join(f"{r} rows {c(r) * 1e3:.1f}" for r in (1, 2, 3, 4, 5, 6)))
print("break-even chance of a guess row: its row's cost / a 1-row pass = "
      f"{(c(2) - c(1)) / c(1):.2f} (2nd row) .. {(c(6) - c(5)) / c(1):.2f} (6th row)")
print("match | position | offered | consumed | chance")
for key in sorted(offered):
    print(f"{key[0]} | {key[1]} | {offered[key]} | {taken[key]} | {taken[key] / offered[key]:.2f}")
