"""Tree sizers replayed offline on collected rounds (collect.py: every node of ADED's full trees labelled), so that
ways of predicting which nodes the target takes can be compared on the same rounds without the noise of timing runs.
Per round a sizer gives each node a chance, keeps the nodes that pay on a cost curve (specdec.budget.select, the
engine's rule), commits 1 + the accepted nodes it kept and pays the curve's time for 1 + its kept rows; then it
learns (from every node, or from the kept ones only). The streak (drafted tokens the last round accepted) is the
replayed sizer's own; a prompt starts with none. Per sizer: tau, kept nodes a round, the kept nodes' predicted and
accepted tokens, and the tokens per second as a multiple of plain decoding's on the curve (verification only).
Approximation: every round starts where the collecting run's did (its full tree's commit), not where the replayed
sizer's commit would have taken it. `[CURVE='[[rows], [ms]]'] [PROMPTS_FROM=18 | 0:18] [SIZERS="name;name"] python
docs/results/aded/2026-12-07-i/replay.py ROUNDS.jsonl[.gz]`"""
import gzip, json, os, sys
from specdec.budget import Calibration, TreeSizer, _depths, _subset_parents, select
from specdec.runners.costs import PassCosts

rounds = [json.loads(line) for line in (gzip.open if sys.argv[1].endswith(".gz") else open)(sys.argv[1], "rt")]
if os.environ.get("PROMPTS_FROM"):  # a slice of the prompts: "18" (from the 19th on) or "0:18"
    lo, _, hi = os.environ["PROMPTS_FROM"].partition(":")
    rounds = [r for r in rounds if int(lo) <= r["prompt"] < (int(hi) if hi else 10**9)]
ZEN4 = ((1, 2, 4, 17), (23.6, 26.9, 37.1, 121.6))  # this machine's pass costs (oracle.txt, 2026-12-07 06:27)
SPR = ((1, 2, 4, 8, 12, 16, 24, 32, 48, 64), (50.6, 52.2, 57.4, 71.2, 97.8, 114.2, 159.2, 195.2, 304.5, 408.4))
curves = {"zen4": ZEN4, "spr": SPR}
if os.environ.get("CURVE"):
    curves = {"curve": tuple(json.loads(os.environ["CURVE"]))}


def streak_class(streak):
    return max(i for i, s in enumerate(TreeSizer.STREAKS) if streak >= s)


def labels(r):
    """(tested, accepted) per node of a collected round (its whole tree was verified)."""
    ok = set(r["accepted"])
    return [p < 0 or p in ok for p in r["parents"]], [j in ok for j in range(len(r["parents"]))]


class Sizer:
    """learn: "all" | "kept"; context(r, streak) -> int; prior; key: optional Calibration._key replacement."""

    def __init__(self, learn="all", context=lambda r, s: streak_class(s), prior=4.0, depth_classes=None,
                 kinds=lambda r: r["kinds"]):
        self.cal = Calibration(prior)
        self.learn, self.context, self.kinds = learn, context, kinds
        if depth_classes:  # deeper nodes keyed by depth up to this cap (default: first vs deeper)
            base = self.cal._key

            def key(cond, depth, kind="", context=0):
                k = base(cond, depth, kind, context)
                return k[:-1] + (min(depth, depth_classes),) if k[2] == "score" else k
            self.cal._key = key

    def keep(self, r, ctx, line):
        p = self.cal.chances(r["parents"], r["scores"], self.kinds(r), ctx)
        return select([(r["parents"], p)], line)[0], p

    def observe(self, r, ctx, kept):
        _, ok = labels(r)
        idx = range(len(ok)) if self.learn == "all" else kept
        self.cal.observe_tree(_subset_parents(r["parents"], list(idx)), [r["scores"][j] for j in idx],
                              [ok[j] for j in idx], [self.kinds(r)[j] for j in idx], ctx)


class Fixed:
    """kept = every node ("full"), none ("plain"), or exactly the accepted ones ("oracle")."""

    def __init__(self, how):
        self.how = how

    def keep(self, r, ctx, line):
        n = len(r["parents"])
        kept = {"full": list(range(n)), "plain": [], "oracle": sorted(r["accepted"])}[self.how]
        return kept, [1.0] * n

    def observe(self, r, ctx, kept):
        pass


class Fitted(Sizer):
    """The calibration fitted beforehand on every round of the file (their own streaks) and then frozen: what these
    keys could do if their chances were known, not learnt as the text goes (an in-sample bound)."""

    def __init__(self, **kw):
        super().__init__("all", **kw)
        for r in rounds:
            if r["parents"]:
                super().observe(r, self.context(r, r["streak"]), [])

    def observe(self, r, ctx, kept):
        pass


class Shrunk(Sizer):
    """Every node's chance times c per level of depth (c^(depth+1)): the sizer made warier than its calibration."""

    def __init__(self, c, **kw):
        super().__init__("all", **kw)
        self.c = c

    def keep(self, r, ctx, line):
        p = [x * self.c ** (1 + d) for x, d in zip(self.cal.chances(r["parents"], r["scores"], self.kinds(r), ctx),
                                                   _depths(r["parents"]))]
        return select([(r["parents"], p)], line)[0], p


class Local(Sizer):
    """Chances times this generation's running ratio of accepted to predicted conditional chances over its tested
    nodes so far ((accepted + a) / (predicted + a), per level of depth): a text less predictable than the average
    one gets a warier sizer."""

    def __init__(self, a=8.0, **kw):
        super().__init__("all", **kw)
        self.a, self.prompt, self.last = a, None, []

    def keep(self, r, ctx, line):
        if r["prompt"] != self.prompt:
            self.prompt, self.acc, self.pred = r["prompt"], 0.0, 0.0
        self.last = p = self.cal.chances(r["parents"], r["scores"], self.kinds(r), ctx)
        f = (self.acc + self.a) / (self.pred + self.a)
        q = [min(1.0, x * f ** (1 + d)) for x, d in zip(p, _depths(r["parents"]))]
        return select([(r["parents"], q)], line)[0], q

    def observe(self, r, ctx, kept):
        tested, ok = labels(r)
        p = self.last
        for j, par in enumerate(r["parents"]):
            if tested[j]:
                self.pred += p[j] / p[par] if par >= 0 and p[par] > 0 else p[j]
                self.acc += ok[j]
        super().observe(r, ctx, kept)


def evidence_kinds(how):
    """Store nodes' kinds split by the store's evidence behind their prior (collect.py's `evidence`): "live" (their
    context pair adapted in this generation or not), "tri" (the tri-gram known, or the bigram's successors), "mass"
    (the pair's total weight: below 0.1, 0.5, 2, above)."""
    def kinds(r):
        if "live" not in r:
            return r["kinds"]
        out = []
        for j, k in enumerate(r["kinds"]):
            if k:  # a suffix match's node: its own kind already
                out.append(k)
            elif how == "live":
                out.append("live" if r["live"][j] else "base")
            elif how == "tri":
                out.append("tri" if r["tri"][j] else "backoff")
            else:
                m = r["mass"][j]
                out.append(f"mass{(m >= 0.1) + (m >= 0.5) + (m >= 2)}")
        return out
    return kinds


def conf_context(r, streak):
    return 2 * streak_class(streak) + (r["conf"] is not None and r["conf"] >= 0.95)


SIZERS = {
    "plain": lambda: Fixed("plain"),
    "full trees": lambda: Fixed("full"),
    "oracle": lambda: Fixed("oracle"),
    "kept-only learning (before)": lambda: Sizer("kept"),
    "all nodes (now)": lambda: Sizer("all"),
    "all, no streak": lambda: Sizer("all", context=lambda r, s: 0),
    "all, fitted beforehand (in-sample)": lambda: Fitted(),
    "all, streak x conf>=0.95": lambda: Sizer("all", context=conf_context),
    "all, prior 1": lambda: Sizer("all", prior=1.0),
    "all, prior 16": lambda: Sizer("all", prior=16.0),
    "all, depths 0/1/2/3+": lambda: Sizer("all", depth_classes=3),
    "all, store nodes by live pair": lambda: Sizer("all", kinds=evidence_kinds("live")),
    "all, store nodes by tri-gram known": lambda: Sizer("all", kinds=evidence_kinds("tri")),
    "all, store nodes by the pair's weight": lambda: Sizer("all", kinds=evidence_kinds("mass")),
    "fitted, store nodes by the pair's weight": lambda: Fitted(kinds=evidence_kinds("mass")),
    "all, this text's accepted / predicted ratio": lambda: Local(8.0),
    "all, shrunk 0.8 per depth": lambda: Shrunk(0.8),
    "all, shrunk 0.9 per depth": lambda: Shrunk(0.9),
    "fitted, streak x conf (3 classes)": lambda: Fitted(context=lambda r, s: 3 * streak_class(s) + (
        0 if r["conf"] is None else (r["conf"] >= 0.8) + (r["conf"] >= 0.99))),
}
only = os.environ.get("SIZERS")
if only:
    SIZERS = {k: v for k, v in SIZERS.items() if k in only.split(";")}

print(f"{len(rounds)} rounds of {len({r['prompt'] for r in rounds})} prompts ({sys.argv[1]})")
for cname, (rows_, ms) in curves.items():
    costs = PassCosts(tuple(rows_), tuple(m / 1e3 for m in ms))
    t1 = costs(1)
    print(f"\ncurve {cname}: " + ", ".join(f"{r} rows {m} ms" for r, m in zip(rows_, ms)))
    print("sizer | tau | kept a round | kept nodes: predicted / accepted tokens | x plain (verification only)")
    for name, make in SIZERS.items():
        s = make()
        tokens = time = kept_n = pred = accd = 0.0
        prompt, streak = None, 0
        for r in rounds:
            if r["prompt"] != prompt:
                prompt, streak = r["prompt"], 0
            ctx = s.context(r, streak) if isinstance(s, Sizer) else 0
            kept, p = s.keep(r, ctx, costs.line) if r["parents"] else ([], [])
            acc = len(set(kept) & set(r["accepted"]))  # the accepted path's nodes that were kept (a prefix of it)
            tokens += 1 + acc
            time += costs(1 + len(kept))
            kept_n += len(kept)
            pred += sum(p[j] for j in kept) if isinstance(s, Sizer) else 0.0
            accd += acc
            if r["parents"]:
                s.observe(r, ctx, kept)
            streak = acc
        n = len(rounds)
        print(f"{name} | {tokens / n:.3f} | {kept_n / n:.2f} | {pred:.0f} / {accd:.0f} | {tokens / time * t1:.3f}")
