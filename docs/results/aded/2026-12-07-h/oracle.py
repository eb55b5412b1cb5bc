"""The ceiling of ADED's draft sources on a machine's cost curve: ADED searches its full tree every round (16 nodes,
no sizing, no guard) and every node is verified, so each round shows how many of its tokens the target would take
(L). A perfect sizer would have verified exactly those L nodes: a round of 1 + L rows committing 1 + L tokens. Over
all rounds that gives the best tokens per unit of time any choice of nodes from these trees could reach, by the
curve of this machine (measured now) or of another (the Sapphire Rapids day's, in ms by rows), as a speedup over
plain decoding (one token per 1-row pass); and the same for prefix-only choices (a chain of the first k nodes).
`python docs/results/aded/2026-12-07-h/oracle.py [N_PROMPTS]`"""
import collections, json, os, sys
import numpy as np
from specdec.api import load
from specdec.config import SpecConfig, StopConfig
from specdec.runners.costs import PassCosts, pass_costs
from specdec.stats import GenerationStats

n = int(sys.argv[1]) if len(sys.argv) > 1 else 18
PROMPTS = os.environ.get("PROMPTS", "docs/results/runners/2026-12-05-fused/prompts/piece-1.jsonl")
rows = [json.loads(line) for line in open(PROMPTS)][:n]
spec = SpecConfig(drafter="aded", guard=False, drafter_options={"sized": False})
dec = load("qwen2.5-coder-1.5b-instruct", spec=spec)
d = dec.drafter_for(spec)
L = []
obs = d.observe
def observe(result):
    L.append(result.num_accepted); obs(result)
d.observe = observe
tokens = 0
for row in rows:
    st = GenerationStats()
    dec.generate_ids(dec.encode(row["prompt"]), stop=StopConfig(max_new_tokens=128), spec=spec, stats=st)
    tokens += st.new_tokens
L = np.array(L)
here = pass_costs(dec.target)
spr = PassCosts((1, 2, 4, 8, 12, 16, 24, 32, 48, 64), tuple(ms / 1e3 for ms in
                (50.6, 52.2, 57.4, 71.2, 97.8, 114.2, 159.2, 195.2, 304.5, 408.4)))
print(f"{len(rows)} prompts, {len(L)} rounds of 16-node trees, tau {tokens / len(L):.2f}; accepted per round: "
      + ", ".join(f"{k}: {int((L == k).sum())}" for k in range(int(L.max()) + 1)))
for name, c in (("this machine (measured now)", here), ("Sapphire Rapids day's curve", spr)):
    oracle = (1 + L).sum() / sum(c(1 + x) for x in L) * c(1)
    print(f"{name}: 1-row {c(1)*1e3:.1f} ms, 2 {c(2)*1e3:.1f}, 4 {c(4)*1e3:.1f}, 17 {c(17)*1e3:.1f}; oracle (each round "
          f"verifies exactly what is accepted) {oracle:.2f}x plain decoding's tokens per second (verification only)")
