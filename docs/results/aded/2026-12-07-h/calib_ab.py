"""ADED's tree sizing with the conditional calibration (this commit) against the one before it, in one process:
plain decoding, ADED as it is now, and ADED whose sizer uses the earlier calibration (a node's path score mapped
straight to its chance, pooled over depths; suffix-merged trees unscored: `Old` below, that code's rule), each prompt
through every setup in a rotating order, several rounds. Per setup: tau, the rounds by kept nodes with the accepted
tokens a round and the sizer's predicted ones, and the medians over prompts of the whole generation's time as a
ratio to plain's and to the old sizer's. Also the suffix rounds' acceptance by match class (new setup).
`[PROMPTS=file.jsonl] [CURVE='[[rows], [ms]]'] [BASELINE=old|nostreak] python docs/results/aded/2026-12-07-h/calib_ab.py
[N] [ROUNDS]`; BASELINE=nostreak: the baseline row is the conditional calibration without the sizer's streak classes
(TreeSizer.STREAKS = (0,)), the row's name stays "aded-old-calibration"."""
import json, os, sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from ab_common import SpiedRuns, args, kept_by_depth, prompts, sized_rounds, spy_sizer, suffix_rounds  # noqa: E402
from specdec.api import load  # noqa: E402
from specdec.budget import Calibration, _depths  # noqa: E402
from specdec.config import SpecConfig  # noqa: E402

n, rounds = args()
rows = prompts(n)
if os.environ.get("CURVE"):
    import specdec.runners.costs as costs_mod
    rows_ms = json.loads(os.environ["CURVE"])
    pinned = costs_mod.PassCosts(tuple(rows_ms[0]), tuple(ms / 1e3 for ms in rows_ms[1]))
    costs_mod.pass_costs = lambda *a, **kw: pinned


class Old(Calibration):
    """The calibration before this commit: P(accepted | path score) per score bucket over all depths, unscored
    nodes by depth (prior 0.5^(depth+1)); a suffix-merged tree's nodes had no scores (the merge dropped them)."""

    def _okey(self, s, d):
        return ("depth", min(d, 15)) if s is None else ("score", min(int(s * self.BUCKETS), self.BUCKETS - 1))

    def _op(self, s, d):
        key = self._okey(s, d)
        prior = 0.5 ** (key[1] + 1) if key[0] == "depth" else (key[1] + 0.5) / self.BUCKETS
        acc, m = self.counts.get(key, (0.0, 0.0))
        return (acc + self.prior * prior) / (m + self.prior)

    def chances(self, parents, scores, kinds=None, context=0):
        scores = [None] * len(scores) if kinds else scores
        return [self._op(s, d) for s, d in zip(scores, _depths(parents))]

    def observe_tree(self, parents, scores, accepted, kinds=None, context=0):
        scores = [None] * len(scores) if kinds else scores
        for s, d, ok in zip(scores, _depths(parents), accepted):
            c = self.counts.setdefault(self._okey(s, d), [0.0, 0.0])
            c[0] += bool(ok)
            c[1] += 1


specs = {"plain": SpecConfig(drafter="none"), "aded": SpecConfig(drafter="aded"),
         "aded-old-calibration": SpecConfig(drafter="aded", drafter_options={"recycle": 4})}  # the default, own drafter
dec = load("qwen2.5-coder-1.5b-instruct", spec=specs["plain"])
drafters = {name: dec.drafter_for(s) for name, s in specs.items()}
if os.environ.get("BASELINE", "old") == "nostreak":  # the conditional calibration without the streak classes
    drafters["aded-old-calibration"].sizer.STREAKS = (0,)
else:
    drafters["aded-old-calibration"].sizer.calibration = Old(drafters["aded-old-calibration"].sizer.calibration.prior)
run = SpiedRuns(dec, specs, drafters, rows, rounds)
R = run.R
print("setup | tau | whole vs plain | whole vs old calibration | rounds by kept nodes 1 / 2 / 3 / 4+: count, "
      "accepted a round, predicted")
for name in specs:
    print(f"{name} | {run.tau(name):.2f} | {run.ratio(name, 'plain'):.3f} | "
          f"{run.ratio(name, 'aded-old-calibration'):.3f} | " + (sized_rounds(R[name]) if name != "plain" else "-"))
print("aded's suffix rounds (first node's kind): " + suffix_rounds(R["aded"]))
for name in ("aded", "aded-old-calibration"):
    print(name + ", kept nodes by depth and source: nodes, accepted, sum of predicted chances: " + kept_by_depth(R[name]))
