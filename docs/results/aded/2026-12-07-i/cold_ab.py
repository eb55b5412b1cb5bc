"""ADED's sizer starting cold on every prompt (a fresh calibration each generation, as one `specdec generate` per
process has) with the scored buckets' prior mean at Calibration.PRIOR_SCALE = 0.8 of the score (this commit) and
at 1.0 (the score itself, before), in one process: plain decoding and ADED under each (ab_common.Runs); per setup
tau and the medians over prompts of the whole generation's time as a ratio to plain's and to the 1.0 row's.
`[PROMPTS=file.jsonl] python docs/results/aded/2026-12-07-i/cold_ab.py [N] [ROUNDS]`"""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from ab_common import Runs, args, prompts  # noqa: E402
from specdec.api import load  # noqa: E402
from specdec.budget import Calibration, TreeSizer  # noqa: E402
from specdec.config import SpecConfig  # noqa: E402

n, rounds = args()
aded = SpecConfig(drafter="aded")
dec = load("qwen2.5-coder-1.5b-instruct", spec=aded)
d = dec.drafter_for(aded)


def cold(scale):
    def prepare():
        Calibration.PRIOR_SCALE = scale
        d.sizer = TreeSizer(d.costs)  # nothing learnt yet
    return prepare


run = Runs(dec, {"plain": (SpecConfig(drafter="none"), None), "aded-cold-prior-0.8": (aded, cold(0.8)),
                 "aded-cold-prior-1.0": (aded, cold(1.0))}, prompts(n), rounds)
print("setup | tau | whole vs plain | whole vs aded-cold-prior-1.0")
for name in run.setups:
    print(f"{name} | {run.tau(name):.2f} | {run.ratio(name, 'plain'):.3f} | {run.ratio(name, 'aded-cold-prior-1.0'):.3f}")
