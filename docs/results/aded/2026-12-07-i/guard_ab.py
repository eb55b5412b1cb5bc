"""The guard judging every round where the drafter was asked (empty drafts too: Guard.observe's `consulted`, tried
at 8ef72b5 and not kept; this script needs that commit) against the guard judging only rounds with a draft (the
observe's time charged in both rows), in one process: plain decoding and ADED under each (ab_common.Runs). Prints
the medians over prompts of the whole generation's time as a ratio to plain's and to the baseline's, then every
prompt's speed over plain (its category).
`[PROMPTS=file.jsonl] python docs/results/aded/2026-12-07-i/guard_ab.py [N] [ROUNDS]`"""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import specdec.engine.loop as loop_mod  # noqa: E402
from ab_common import Runs, args, prompts  # noqa: E402
from specdec.api import load  # noqa: E402
from specdec.config import SpecConfig  # noqa: E402
from specdec.engine.guard import Guard  # noqa: E402

n, rounds = args()


class DraftedOnly(Guard):
    """The rule before: only rounds with a draft are judged."""

    def observe(self, drafted, committed, seconds, rows=0, verify_seconds=None, consulted=None):
        super().observe(drafted, committed, seconds, rows, verify_seconds, None)


def use(g):
    return lambda: setattr(loop_mod, "Guard", g)


aded = SpecConfig(drafter="aded")
base = "aded-drafted-rounds-only"
dec = load("qwen2.5-coder-1.5b-instruct", spec=aded)
rows = prompts(n)
run = Runs(dec, {"plain": (SpecConfig(drafter="none"), use(Guard)), "aded": (aded, use(Guard)),
                 base: (SpecConfig(drafter="aded", drafter_options={"recycle": 4}), use(DraftedOnly))}, rows, rounds)
print(f"setup | tau | guard switched off | whole vs plain | whole vs {base}")
for name in run.setups:
    print(f"{name} | {run.tau(name):.2f} | {run.acc[name]['offs']} | {run.ratio(name, 'plain'):.3f} | "
          f"{run.ratio(name, base):.3f}")
print(f"per prompt, speed over plain (aded / {base}):")
for i, row in enumerate(rows):
    p = sum(run.T["plain"][i])
    print(f"  {i} {row.get('category', '?')}: {p / sum(run.T['aded'][i]):.3f} / {p / sum(run.T[base][i]):.3f}")
