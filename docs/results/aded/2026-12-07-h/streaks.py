"""ADED's full trees verified every round (16 nodes, no sizing, no guard): how much the next round accepts after a
round that accepted 0..4 drafted tokens, with or without a suffix match, by its surest first node's store prior.
`python docs/results/aded/2026-12-07-h/streaks.py [N_PROMPTS]` (about 2 minutes for 18)."""
import collections, json, os, sys
import numpy as np
from specdec.api import load
from specdec.config import SpecConfig, StopConfig
from specdec.stats import GenerationStats
n = int(sys.argv[1]) if len(sys.argv) > 1 else 18
rows = [json.loads(line) for line in open(os.environ.get("PROMPTS", "docs/results/runners/2026-12-05-fused/prompts/piece-1.jsonl"))][:n]
spec = SpecConfig(drafter="aded", guard=False, drafter_options={"sized": False})
dec = load("qwen2.5-coder-1.5b-instruct", spec=spec)
d = dec.drafter_for(spec)
recs = []
cur = {}
op, obs = d.propose, d.observe
def propose(ctx):
    dr = op(ctx)
    sc = dr.scores[0].tolist() if dr.scores is not None else []
    par = dr.tree.parents if dr.tree is not None else list(range(-1, dr.length - 1))
    roots = [sc[j] for j in range(len(par)) if par[j] < 0] if sc else []
    cur.update(len=dr.length, suffix=dr.info.get("suffix_nodes", 0), top=max(roots) if roots else None,
               nroots=sum(1 for p in par if p < 0))
    return dr
def observe(res):
    conf = float(res.top_probs[res.num_accepted, 0]) if res.top_probs is not None else None  # the bonus row's top
    recs.append(dict(cur, L=res.num_accepted, conf=conf)); obs(res)
d.propose, d.observe = propose, observe
for i, row in enumerate(rows):
    st = GenerationStats()
    recs.append({"start": i})
    dec.generate_ids(dec.encode(row["prompt"]), stop=StopConfig(max_new_tokens=128), spec=spec, stats=st)
rounds = []
prev = prev_conf = None
for r in recs:
    if "start" in r:
        prev = prev_conf = None
        continue
    r["prev"], r["prev_conf"] = prev, prev_conf
    rounds.append(r)
    prev, prev_conf = r["L"], r["conf"]


def show(name, key):
    g = collections.defaultdict(list)
    for r in rounds:
        g[key(r)].append(r["L"])
    print(name)
    for k in sorted(g, key=str):
        v = g[k]
        print(f"   {k!s:20s} n={len(v):4d} mean L={sum(v) / len(v):.2f}  P(L>=1)={sum(x >= 1 for x in v) / len(v):.2f} "
              f"P(L>=2)={sum(x >= 2 for x in v) / len(v):.2f}")


show("by the previous round's accepted tokens (4 = the depth cap)", lambda r: None if r["prev"] is None else min(r["prev"], 4))
cls = lambda c: None if c is None else (0.5 if c < 0.5 else 0.8 if c < 0.8 else 0.95 if c < 0.95 else 0.99 if c < 0.99 else 1)  # noqa: E731
show("by the target's probability of the token it last committed (class: below 0.5 / 0.8 / 0.95 / 0.99 / 1)",
     lambda r: cls(r["prev_conf"]))
show("by (previous round accepted any, that probability >= 0.95)",
     lambda r: (None if r["prev"] is None else min(r["prev"], 1), None if r["prev_conf"] is None else r["prev_conf"] >= 0.95))
show("by a suffix match in the tree", lambda r: r["suffix"] > 0)
show("by (suffix match, surest first node's prior >= 0.95, previous round accepted any)",
     lambda r: ("sfx" if r["suffix"] else "tri", (r["top"] or 0) >= 0.95, None if r["prev"] is None else min(r["prev"], 1)))
