"""Rounds for replaying tree sizers offline (replay.py): ADED drafts its full tree every round (16 nodes, no sizing,
no guard) and the target verifies all of it, so every node's label is known (greedy: accepted or not, and whether it
was tested at all: its parent accepted). Per round one JSON line: the prompt's index, the tree (parents, tokens,
scores: the store's path probabilities or a suffix match's share, kinds), the accepted nodes (a round without a draft: an empty tree), the store's evidence behind each node's prior
(`evidence` below), and two features of
the round before it: how many drafted tokens it accepted, and the target's probability of the token it committed
last (from the verify pass's top-k rows). `python docs/results/aded/2026-12-07-i/collect.py OUT.jsonl PROMPTS.jsonl...`"""
import json, sys
from specdec.api import load
from specdec.config import SpecConfig, StopConfig

out_path, prompt_files = sys.argv[1], sys.argv[2:]
rows = [json.loads(line) for f in prompt_files for line in open(f)]
spec = SpecConfig(drafter="aded", guard=False)  # sized (the default) but the sizer is bypassed below: full trees
dec = load("qwen2.5-coder-1.5b-instruct", spec=spec)
d = dec.drafter_for(spec)
tree = {}


def evidence(res):
    """Per node, what stands behind its prior in the store as the search saw it: whether its context pair was
    adapted in this generation (live), whether the tri-gram was known (else the bigram's successors, backoff),
    and the pair's total successor weight."""
    h = d._hist
    live, tri, mass = [], [], []
    for j, par in enumerate(res.parents):
        b = res.tokens[par] if par >= 0 else h[-1]
        gp = res.parents[par] if par >= 0 else None
        a = (res.tokens[gp] if gp is not None and gp >= 0 else h[-1]) if par >= 0 else (h[-2] if len(h) > 1 else None)
        st = d.store
        key = a * st.base + b if a is not None and a < st.V and b < st.V else None
        hit = st.successors_key(key) if key is not None else ([], [])
        tri.append(bool(hit[0]))
        live.append(key in st.live if key is not None else False)
        succ, w = st.successors(a, b, d.config.backoff)
        mass.append(float(sum(w)))
    return dict(live=live, tri=tri, mass=mass)


def full(res):  # the drafter's sizing step, bypassed: the whole tree is verified
    tree.update(parents=list(res.parents), tokens=list(res.tokens), scores=list(res.scores),
                kinds=list(res.kinds or [""] * len(res)), **evidence(res))
    return res


d._sized = full
obs = d.observe
prev = {"streak": 0, "conf": None}
out = open(out_path, "w")


def observe(result):
    acc = list(result.accepted_nodes or ())
    t = tree or dict(parents=[], tokens=[], scores=[], kinds=[], live=[], tri=[], mass=[])  # a round without a draft: a plain step
    out.write(json.dumps(dict(prompt=prev["prompt"], **t, accepted=acc, streak=prev["streak"], conf=prev["conf"]))
              + "\n")
    tree.clear()
    last_row = 1 + acc[-1] if acc else 0  # the row whose prediction was committed last (greedy: its top token)
    prev.update(streak=len(acc), conf=float(result.top_probs[last_row, 0]) if result.top_probs is not None else None)
    obs(result)


d.observe = observe
for i, row in enumerate(rows):
    prev.update(prompt=i, streak=0, conf=None)
    dec.generate_ids(dec.encode(row["prompt"]), stop=StopConfig(max_new_tokens=128), spec=spec)
    out.flush()
    print(f"prompt {i + 1}/{len(rows)}", flush=True)
out.close()
