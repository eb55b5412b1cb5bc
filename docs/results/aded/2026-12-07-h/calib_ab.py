"""ADED's tree sizing with the conditional calibration (this commit) against the one before it, in one process:
plain decoding, ADED as it is now, and ADED whose sizer uses the earlier calibration (a node's path score mapped
straight to its chance, pooled over depths; suffix-merged trees unscored: `Old` below, that code's rule), each prompt
through every setup in a rotating order, several rounds. Per setup: tau, the rounds by kept nodes with the accepted
tokens a round and the sizer's predicted ones, and the medians over prompts of the whole generation's time as a
ratio to plain's and to the old sizer's. Also the suffix rounds' acceptance by match class (new setup).
`[PROMPTS=file.jsonl] [CURVE='[[rows], [ms]]'] [BASELINE=old|nostreak] python docs/results/aded/2026-12-07-h/calib_ab.py
[N] [ROUNDS]`; BASELINE=nostreak: the baseline row is the conditional calibration without the sizer's streak classes
(TreeSizer.STREAKS = (0,)), the row's name stays "aded-old-calibration"."""
import collections, json, os, statistics, sys, time
from specdec.api import load
from specdec.budget import Calibration, _depths
from specdec.config import SpecConfig, StopConfig
from specdec.stats import GenerationStats

n = int(sys.argv[1]) if len(sys.argv) > 1 else 18
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
PROMPTS = os.environ.get("PROMPTS", "docs/results/runners/2026-12-05-fused/prompts/piece-1.jsonl")
rows = [json.loads(line) for line in open(PROMPTS)][:n]
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
R = collections.defaultdict(collections.Counter)  # setup -> counters
for name, d in drafters.items():
    if d is None:
        continue
    def wrap(name=name, d=d):
        cut, observe = d.sizer.cut, d.observe
        last = {}
        def cut2(parents, scores, tokens, spent=0.0, kinds=None):
            kept = cut(parents, scores, tokens, spent, kinds)
            ch = d.sizer.chances(parents, scores, kinds)
            dep = _depths(parents)
            last.update(n=len(kept), pred=sum(ch[j] for j in kept), kind=(kinds[0] if kinds and kept else ""),
                        nodes=[(min(dep[j], 3), ch[j], (kinds[j] or "store") if kinds else "store") for j in kept])
            return kept
        def observe2(result):
            if last:
                k = min(last["n"], 4)
                R[name].update({f"n{k}": 1, f"a{k}": result.num_accepted, f"p{k}": last["pred"]})
                if last["kind"]:
                    R[name].update({f"{last['kind']} rounds": 1, f"{last['kind']} accepted": result.num_accepted})
                ok = set(result.accepted_nodes or ())
                for j, (dep, ch, kind) in enumerate(last["nodes"]):
                    src = "store" if kind == "store" else "suffix"
                    R[name].update({f"depth {dep} {src} predicted": ch, f"depth {dep} {src} accepted": j in ok,
                                    f"depth {dep} {src} nodes": 1})
                last.clear()
            observe(result)
        d.sizer.cut, d.observe = cut2, observe2
    wrap()
for name, s in specs.items():
    dec.generate("warm up", max_new_tokens=8, spec=s)
R.clear()
T = collections.defaultdict(lambda: collections.defaultdict(list))
acc = collections.defaultdict(collections.Counter)
out = collections.defaultdict(dict)
pairs = list(specs.items())
t0 = time.time()
for r in range(rounds):
    for i, row in enumerate(rows):
        ids = dec.encode(row["prompt"])
        k = (i + r) % len(pairs)
        for name, spec in pairs[k:] + pairs[:k]:
            st = GenerationStats()
            t = time.perf_counter()
            toks = dec.generate_ids(ids, stop=StopConfig(max_new_tokens=128), spec=spec, stats=st)
            T[name][i].append(time.perf_counter() - t)
            acc[name].update(rounds=st.rounds, tokens=st.new_tokens)
            out[i][name] = toks
same = sum(len({str(v) for v in o.values()}) == 1 for o in out.values())
print(f"{len(rows)} prompts x {rounds} rounds, 128 new tokens, greedy, {time.time() - t0:.0f} s; outputs the same in "
      f"every setup: {same}/{len(rows)}")
tot = lambda nm: [sum(T[nm][i]) for i in range(len(rows))]  # noqa: E731
print("setup | tau | whole vs plain | whole vs old calibration | rounds by kept nodes 1 / 2 / 3 / 4+: count, "
      "accepted a round, predicted")
for name in specs:
    a, c = acc[name], R[name]
    by = " / ".join(f"{c[f'n{k}']}: {c[f'a{k}'] / max(c[f'n{k}'], 1):.2f}, {c[f'p{k}'] / max(c[f'n{k}'], 1):.2f}"
                    for k in (1, 2, 3, 4)) if name != "plain" else "-"
    vs = lambda ref: statistics.median(x / y for x, y in zip(tot(name), tot(ref)))  # noqa: E731
    print(f"{name} | {a['tokens'] / a['rounds']:.2f} | {vs('plain'):.3f} | {vs('aded-old-calibration'):.3f} | {by}")
kinds = sorted({k.split(' ')[0] for k in R["aded"] if k.startswith("suffix")})
print("aded's suffix rounds (first node's kind): " + ", ".join(
    f"{k} {R['aded'][k + ' rounds']} rounds, {R['aded'][k + ' accepted'] / R['aded'][k + ' rounds']:.2f} accepted"
    for k in kinds))
for name in ("aded", "aded-old-calibration"):
    c = R[name]
    print(name + ", kept nodes by depth and source: nodes, accepted, sum of predicted chances: " + "; ".join(
        f"depth {d} {src} {int(c[f'depth {d} {src} nodes'])}, {int(c[f'depth {d} {src} accepted'])}, "
        f"{c[f'depth {d} {src} predicted']:.1f}" for d in range(4) for src in ("store", "suffix")
        if c[f"depth {d} {src} nodes"]))
