"""ADED's tree sizer learning from every drafted node, labelled by the text the target commits (TreeSizer.LEARN =
"all"), against learning from the verified nodes only (LEARN = "kept", the rule before), in one process: plain
decoding, ADED as it is now and ADED whose sizer learns from the kept nodes (ab_common.Runs). Per setup: tau, the
medians over prompts of the whole generation's time as a ratio to plain's and to the baseline's, the rounds by kept
nodes with the accepted tokens a round and the sizer's predicted ones, and the kept nodes by depth (count,
accepted, predicted). `[PROMPTS=file.jsonl] python docs/results/aded/2026-12-07-i/hindsight_ab.py [N] [ROUNDS]`"""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from ab_common import SpiedRuns, args, kept_by_depth, prompts, sized_rounds, spy_sizer, suffix_rounds  # noqa: E402
from specdec.api import load  # noqa: E402
from specdec.config import SpecConfig  # noqa: E402

n, rounds = args()
specs = {"plain": SpecConfig(drafter="none"), "aded": SpecConfig(drafter="aded"),
         "aded-kept": SpecConfig(drafter="aded", drafter_options={"recycle": 4})}  # the default, its own drafter
dec = load("qwen2.5-coder-1.5b-instruct", spec=specs["plain"])
drafters = {name: dec.drafter_for(s) for name, s in specs.items()}
drafters["aded-kept"].sizer.LEARN = "kept"
run = SpiedRuns(dec, specs, drafters, prompts(n), rounds)
R = run.R
print("setup | tau | whole vs plain | whole vs kept-only learning | rounds by kept nodes 1 / 2 / 3 / 4+: count, "
      "accepted a round, predicted")
for name in specs:
    print(f"{name} | {run.tau(name):.2f} | {run.ratio(name, 'plain'):.3f} | {run.ratio(name, 'aded-kept'):.3f} | "
          + (sized_rounds(R[name]) if name != "plain" else "-"))
print("aded's suffix rounds (first node's kind): " + suffix_rounds(R["aded"]))
for name in ("aded", "aded-kept"):
    print(name + ", kept nodes by depth and source: nodes, accepted, sum of predicted chances: " + kept_by_depth(R[name]))
