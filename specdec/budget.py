"""Which drafted tokens are worth a row of the verification pass: one rule for a batch of chains (vLLM's
proposers at batch > 1) and for one request's tree (ADED's trees sized per round by the runner's measured costs).

Why: a drafted token costs one more row of the target's pass whether or not it is accepted. At batch 1 on a
2-core CPU a row costs little beside the step (this engine: 8 rows for 1.55x one row), and vLLM + ADED ran 1.50x
vLLM plain; at batch 8 the same drafts ran 0.73x plain and at batch 32 0.55x (GSM8K first 100, docs/scale.md):
the batch already fills the pass, so each extra row costs about its share of the step (5.9 ms a row from batch 1
to 8, 10.8 ms from 8 to 32, against 118 ms for a batch-1 step), while ADED's tokens are accepted about 1 in 4.

The rule, per step, over the whole batch (a fractional knapsack): with T(r) the step's time at r rows and n the
tokens the step is expected to commit (one per request, plus each kept draft token's chance of acceptance p),
one more row pays when (n + p) / (T(r) + T'(r)) > n / T(r), i.e. when

    p > T'(r) * n / T(r)        (the row's marginal cost times the step's current tokens per second).

Nodes are taken best-first over every request's tree or chain (a node only after its parent), until the next one
does not pay. A node's p is its path probability (the node and its ancestors accepted); siblings' events are
disjoint, so the expected accepted length of a tree is the sum of its nodes' p. T comes from the steps themselves
in vLLM (`StepCosts`: wall time between calls, fit on rows and context) or from the runner's measured pass costs in this
engine (`specdec.runners.costs.PassCosts.line`); p from the drafters' own scores calibrated by what was accepted
(`Calibration`). Until both are known, nothing is cut. Lossless either way: cutting a draft only changes what is
verified.
"""
from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from specdec.errors import InputError


@dataclass(frozen=True)
class BudgetConfig:
    """budget: "auto" (cut drafts by the rule above) or "off" (every drafted token is verified).
    warmup: clean steps measured before anything is cut. window: clean steps the cost fit reads (the latest).
    explore: every `explore`-th step keeps a few tokens past the rule (max(2, rows // 8), the likeliest), so
    that the fit sees the rows vary (0: never). prior: prior strength (pseudo-counts) of a score's
    calibration toward the score itself."""

    budget: str = "auto"
    warmup: int = 8
    window: int = 256
    explore: int = 32
    prior: float = 4.0

    def __post_init__(self) -> None:
        if self.budget not in ("auto", "off"):
            raise InputError(f"budget must be auto or off, got {self.budget!r}")
        for name, low in (("warmup", 2), ("window", 8), ("explore", 0)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise InputError(f"budget {name} must be an integer >= {low}, got {v!r}")
        if not self.prior > 0:
            raise InputError(f"budget prior must be > 0, got {self.prior!r}")


class StepCosts:
    """The step time as a function of the rows in the pass and the batch's context, learnt from measured steps:
    a least-squares plane over the last `window` clean steps (256),

        T(rows, context) = t + b (rows - r) + c (context - x)     (r, x, t: the window's mean rows, context, time),

    with context the committed tokens of the batch's requests (attention reads them) and T' = b >= 0.

    Why a fit over recent steps (stop 28): the buckets of rows with running means used before went stale (a bucket
    no step visits keeps its old mean) and mixed up rows with context growth: at batch 8 the line through an early
    11-row bucket said 26 ms a row and nothing was kept for 1000 steps; at batch 32 two buckets filled at different
    context lengths said 0.6 ms a row, so tokens that did not pay were kept (0.90x vLLM plain). The proposer keeps
    a few extra rows now and then (`BudgetConfig.explore`) so that the slope stays measured where the batch is."""

    MIN_STEPS = 4

    def __init__(self, window: int = 256) -> None:
        self.points: deque[tuple[float, float, float]] = deque(maxlen=window)  # (rows, context, seconds)
        self.steps = 0
        self._fit: tuple[float, float, float, float, float] | None = None
        self._stale = True

    def observe(self, rows: int, seconds: float, context: float = 0.0) -> None:
        if rows < 1 or not seconds > 0:
            return
        self.points.append((float(rows), float(context), float(seconds)))
        self.steps += 1
        self._stale = True

    def _solve(self) -> tuple[float, float, float, float, float] | None:
        """(t, r, x, b, c) of the plane above, or None while the rows have not varied enough to draw a slope."""
        if self._stale:
            self._stale, self._fit = False, None
            if len(self.points) >= self.MIN_STEPS:
                self._fit = _plane(np.asarray(self.points, dtype=np.float64))  # (n, 3)
        return self._fit

    @property
    def known(self) -> bool:
        """Enough steps at different rows to draw a slope."""
        return self._solve() is not None

    def describe(self) -> str:
        """The learnt plane for a log line."""
        f = self._solve()
        if f is None:
            return f"step costs: {len(self.points)} steps, no slope yet"
        t, r, x, b, c = f
        return (f"step ms {t * 1e3:.0f} at {r:.0f} rows and {x:.0f} context tokens, {b * 1e3:.2f} ms a row, "
                f"{c * 1e6:.2f} ms per 1000 context tokens ({len(self.points)} steps)")

    def line(self, rows: float, context: float | None = None) -> tuple[float, float]:
        """(T(rows), T'(rows)): seconds of a step at `rows` (and `context`; default the window's mean), seconds per
        extra row (>= 0)."""
        f = self._solve()
        if f is None:
            raise ValueError("step costs need steps at different rows")
        t, r, x, b, c = f
        ctx = x if context is None else context
        return max(t + b * (rows - r) + c * (ctx - x), 1e-3 * t), b

    def at(self, context: float) -> "Line":
        """The line at this step's context (for `select` and `first_node_threshold`)."""
        return lambda rows: self.line(rows, context)


def _plane(pts: np.ndarray) -> tuple[float, float, float, float, float] | None:
    """Least squares of seconds on (rows, context), centred; the context term dropped where it does not vary
    apart from the rows; the slope clipped at 0 (then the context term refit alone)."""
    r, x, t = pts.mean(axis=0)
    dr, dx, dt = pts[:, 0] - r, pts[:, 1] - x, pts[:, 2] - t  # (n,) each
    srr, sxx, srx, srt, sxt = dr @ dr, dx @ dx, dr @ dx, dr @ dt, dx @ dt
    if srr < 2.0:  # rows all but constant (fewer than two steps a row off the mean): no slope to read
        return None
    det = srr * sxx - srx * srx
    if sxx <= 0 or det <= 1e-9 * srr * sxx:
        b, c = srt / srr, 0.0
    else:
        b, c = (srt * sxx - sxt * srx) / det, (sxt * srr - srt * srx) / det
    if b < 0:
        b, c = 0.0, (sxt / sxx if sxx > 0 else 0.0)
    return float(t), float(r), float(x), float(b), float(c)


class Calibration:
    """P(a node is accepted | its parent was), learnt from outcomes, and a node's chance as the product of those
    along its path. Each node is keyed by its kind (the drafter's label for where it came from: "" by default,
    ADED's suffix-match nodes "suffix:<match class>") and its conditional score (its score over its parent's: a
    store's tri-gram prior, a draft model's probability of the token), in 20 buckets, each a Beta posterior whose
    prior mean is PRIOR_SCALE times the bucket's score (`prior` pseudo-counts), first nodes apart from deeper ones
    (once a draft's first token is right, the text it guessed may well go on as guessed). Unscored nodes (prompt
    lookup) are keyed by depth instead, prior mean 0.5 (so 0.5^(depth+1) along a chain). An outcome counts only
    where the node's parent was accepted (a root child: always): past the first rejection nothing was tested.

    Why conditional (2026-12-07): the calibration used to map a node's path score straight to its chance, pooled
    over depths, so a 3-node chain of store priors 1.0 had each node at the bucket's ~0.3 and the sizer counted
    ~0.9 tokens for it; ADED's 3-node rounds were accepted 0.84 tokens a round against 1.17 predicted, and on a Zen 4
    machine, where a 4-row pass costs 1.55x a 1-row pass, such rounds lose time. Measured in one process (18
    prompts x 2, docs/results/aded/2026-12-07-h/calib_ab.txt): ADED's tau 1.29 -> 1.32, its time 0.968x the old
    sizer's, the same outputs. Deeper nodes are still predicted too likely (kept depth-1 store nodes: 35 accepted,
    62 predicted): the buckets that have seen least are the ones the sizer keeps. Scaling each bucket's prior by
    its group's outcomes was tried and dropped (tau 1.30 against 1.31, first nodes then predicted too unlikely)."""

    BUCKETS = 20
    # a scored bucket's prior mean: this share of its score. Why: a drafter's score over-states the target's
    # acceptance (ADED's first store nodes were accepted 0.05 / 0.15 / 0.28 / 0.47 / 0.54 of the time by fifths
    # of their prior, 36 prompts), and until a bucket has outcomes its prior decides what is kept: a sizer that
    # starts cold on every prompt (one generation per process, as `specdec generate`) ran 1.177x plain's
    # verification time at 1.0 and 1.206x at 0.8 in the offline replay (docs/aded.md; 1.214x warm, 1.218x warm at 0.8)
    PRIOR_SCALE = 0.8

    def __init__(self, prior: float = 4.0) -> None:
        self.prior = prior
        self.counts: dict[tuple, list[float]] = {}  # key -> [accepted, tested]

    def _key(self, cond: float | None, depth: int, kind: str = "", context: int = 0) -> tuple:
        if cond is None:
            return (kind, context, "depth", min(depth, 15))
        return (kind, context, "score", min(max(int(cond * self.BUCKETS), 0), self.BUCKETS - 1), min(depth, 1))

    def _prior_mean(self, key: tuple) -> float:
        if key[2] == "depth":
            return 0.5
        return self.PRIOR_SCALE * (key[3] + 0.5) / self.BUCKETS

    def q(self, cond: float | None, depth: int = 0, kind: str = "", context: int = 0) -> float:
        """P(accepted | parent accepted) of a node with conditional score `cond` (None: unscored, by depth) in a
        round of class `context` (the caller's: TreeSizer's streak class, 0 elsewhere)."""
        key = self._key(cond, depth, kind, context)
        acc, n = self.counts.get(key, (0.0, 0.0))
        return (acc + self.prior * self._prior_mean(key)) / (n + self.prior)

    @staticmethod
    def conditional(parents: Sequence[int], scores: Sequence[float | None]) -> list[float | None]:
        """Each node's score over its parent's (its own for a root child, or where the parent has none), in [0, 1]."""
        out: list[float | None] = []
        for j, par in enumerate(parents):
            s = scores[j]
            if s is not None and par >= 0 and scores[par] is not None and scores[par] > 0:
                s = s / scores[par]
            out.append(None if s is None else min(max(float(s), 0.0), 1.0))
        return out

    def chances(self, parents: Sequence[int], scores: Sequence[float | None],
                kinds: Sequence[str] | None = None, context: int = 0) -> list[float]:
        """Each node's chance of acceptance (it and its ancestors): the product of the conditional chances along
        its path. `parents` in topological order (-1: a child of the root), `scores` the drafter's path scores."""
        cond, depths = self.conditional(parents, scores), _depths(parents)
        p: list[float] = []
        for j, par in enumerate(parents):
            qj = self.q(cond[j], depths[j], kinds[j] if kinds else "", context)
            p.append(qj * (p[par] if par >= 0 else 1.0))
        return p

    def observe_tree(self, parents: Sequence[int], scores: Sequence[float | None], accepted: Sequence[bool],
                     kinds: Sequence[str] | None = None, context: int = 0) -> None:
        """A verified tree: its nodes' parents, path scores, kinds and whether each was accepted."""
        cond, depths = self.conditional(parents, scores), _depths(parents)
        for j, par in enumerate(parents):
            if par >= 0 and not accepted[par]:
                continue  # its parent was rejected: this node was not tested
            key = self._key(cond[j], depths[j], kinds[j] if kinds else "", context)
            c = self.counts.setdefault(key, [0.0, 0.0])
            c[0] += bool(accepted[j])
            c[1] += 1

    def observe(self, scores: list[float | None], accepted: int) -> None:
        """One request's chain of drafted nodes (their path scores, in order) and how many of them were accepted."""
        self.observe_tree(chain_parents(len(scores)), scores, [d < accepted for d in range(len(scores))])

    def max_p(self, scored: bool) -> float:
        """The highest chance any node can get now (a first node's, of the default kind): no node of a draft pays
        unless this one would."""
        if not scored:
            return self.q(None, 0)
        return max(self.q((b + 0.5) / self.BUCKETS) for b in range(self.BUCKETS))

    def max_p_upto(self, score: float | None) -> float:
        """The highest chance of a first node whose score is at most `score` (a draft's bound: `Drafter.score_bound`)."""
        if score is None:
            return self.max_p(scored=False)
        top = min(int(score * self.BUCKETS), self.BUCKETS - 1)
        return max(self.q((b + 0.5) / self.BUCKETS) for b in range(top + 1))


Line = Callable[[float], "tuple[float, float]"]  # rows -> (seconds of a pass, seconds per extra row)


def chain_parents(n: int) -> list[int]:
    return list(range(-1, n - 1))


def first_node_threshold(rows: int, line: Line) -> float:
    """The chance a first drafted node needs to pay when `rows` requests share a pass without drafts."""
    t, slope = line(rows)
    return slope * rows / t


def select(trees: list[tuple[Sequence[int], Sequence[float]]], line: Line, extra: int = 0) -> list[list[int]]:
    """The nodes worth verifying: `trees[i]` = (parents, p) of request i's draft in topological order (parents[j]
    = -1 for a child of the root; chains: `chain_parents(n)`), p its nodes' calibrated chances of acceptance (path
    probabilities). Every request commits at least one token a pass and fills one row; a node is taken when it
    pays (the module's rule), best first, and only after its parent (its chance capped by its parent's).
    `extra`: that many more nodes past the last that pays, the likeliest (exploration: the cost fit needs the rows
    to vary). Returns each request's kept node indices, in order (a chain's: a prefix)."""
    rows = len(trees)
    tokens = float(rows)
    keep: list[list[int]] = [[] for _ in trees]
    kids: list[dict[int, list[int]]] = []
    heap: list[tuple[float, int, int]] = []
    for i, (parents, p) in enumerate(trees):
        k: dict[int, list[int]] = {}
        for j, par in enumerate(parents):
            k.setdefault(par, []).append(j)
        kids.append(k)
        heap += [(-p[j], i, j) for j in k.get(-1, ())]
    heapq.heapify(heap)
    while heap:
        neg_p, i, j = heapq.heappop(heap)
        t, slope = line(rows)
        if -neg_p <= slope * tokens / t:
            if extra <= 0:
                break  # the best remaining node does not pay; none after it does
            extra -= 1
        keep[i].append(j)
        rows += 1
        tokens += -neg_p
        for c in kids[i].get(j, ()):
            heapq.heappush(heap, (-min(trees[i][1][c], -neg_p), i, c))
    return [sorted(k) for k in keep]


class TreeSizer:
    """One request's tree cut per round to the nodes that pay for their row on the target's pass costs (`select`
    on one tree), each node's chance of acceptance its drafter's score calibrated by this sizer's outcomes. Used
    by the drafters' `sized` option (ADED's store path probabilities, the draft model's path probabilities).

        kept = sizer.cut(parents, scores, tokens)   # indices of the nodes to verify, parents first
        ...                                          # the drafter returns those nodes
        sizer.observe(accepted_nodes, committed)     # VerifyResult.accepted_nodes (into the kept nodes) and
                                                     # the round's committed tokens (VerifyResult.tokens[0])

    costs: anything with `line(rows) -> (seconds, seconds per extra row)` (specdec.runners.costs.PassCosts), or
    None: nothing is cut, nothing learnt.

    Every drafted node is labelled, kept or not (LEARN = "all"): a node was right when its path is the text the
    target went on to commit (the next rounds' tokens too, for nodes deeper than this round's commit), which under
    greedy decoding is exactly what verifying it would have said. Why: learning only from the kept nodes saw the
    nodes the sizer already rated high (a bucket whose prior is too low is never kept, so never corrected; one
    rated too high by chance is kept and learnt slowly) and nothing from rounds where it kept nothing; depth-1
    store nodes kept were accepted 87 times where 149 were predicted (docs/aded.md). The labels of a round come a
    few rounds late (its tree's depth); a generation's last trees are counted with the nodes known by its end.

    The calibration also reads the round's streak: how many drafted tokens the last round had accepted, in classes
    (STREAKS). Why: acceptance comes in runs (a passage being copied, a formula being worked through). ADED's full
    16-node trees, 18 prompts (docs/aded.md): after a round that accepted 0 / 1 / 2 / 3 / 4 tokens the next
    accepted 0.65 / 0.82 / 1.06 / 1.46 / 2.01 on average; its store's surest first nodes (prior >= 0.95) 0.73 after
    a miss and 1.53 after a hit."""

    STREAKS = (0, 1, 3)  # class starts: a round after 0, 1-2 or 3+ accepted drafted tokens
    LEARN = "all"  # which drafted nodes the calibration learns from: "all" (labelled by the committed text) or "kept"

    def __init__(self, costs, prior: float = 4.0) -> None:
        self.costs = costs
        self.calibration = Calibration(prior)  # kept across generations: the drafter's scores mean the same
        self.streak = 0  # drafted tokens the last observed round accepted (0 for a round without a draft)
        self._pending: list[_Round] = []  # drafted trees whose nodes' labels are not all known yet

    def _context(self) -> int:
        return max(i for i, start in enumerate(self.STREAKS) if self.streak >= start)

    def chances(self, parents: Sequence[int], scores: Sequence[float | None],
                kinds: Sequence[str] | None = None) -> list[float]:
        """Each node's calibrated chance of acceptance (it and its ancestors; `Calibration.chances`) this round."""
        return self.calibration.chances(parents, scores, kinds, self._context())

    def keep(self, parents: Sequence[int], scores: Sequence[float | None], spent: float = 0.0,
             kinds: Sequence[str] | None = None) -> list[int]:
        """The nodes worth verifying (all of them without costs); nothing remembered (a drafter may ask while it
        still expands its tree). spent: seconds the round has already spent drafting (a draft model's passes),
        counted with the target's pass in the round's time. kinds: each node's source label (Calibration)."""
        if self.costs is None:
            return list(range(len(parents)))
        return self._select(parents, self.chances(parents, scores, kinds), spent)

    def _select(self, parents: Sequence[int], p: Sequence[float], spent: float) -> list[int]:
        return select([(parents, p)], self._line(spent))[0]

    def _line(self, spent: float) -> Line:
        if not spent:
            return self.costs.line

        def line(rows: float) -> tuple[float, float]:
            t, slope = self.costs.line(rows)
            return t + spent, slope

        return line

    def deepen_pays(self, parents: Sequence[int], scores: Sequence[float | None], frontier: Sequence[int],
                    pass_seconds: float | None, spent: float) -> bool:
        """Whether one more draft pass (`pass_seconds`, expanding the `frontier` nodes' children) is expected to
        pay, in tokens per second of the round; with the pass's cost unknown (None), whether any frontier node is
        kept (none kept: their children would not be either). The next depth's chance mass is guessed from this tree's own
        decay (this depth's kept mass times its ratio to the depth above, at most this depth's mass: children's
        chances are at most their parent's), its rows as many as this depth keeps:

            pays iff  mass_next * (T(rows) + spent) > n * (pass_seconds + rows_next * T'(rows))

        with n the tokens the round commits as it stands (1 + the kept nodes' chances). Why (issue 13's
        ablation b, 2026-12-05): sized draft trees cut rows by the target's costs only and ran 0.87x plain
        against the chain's 0.94x, while each depth also costs the draft model a pass over the whole tree."""
        if self.costs is None:
            return True
        depths = _depths(parents)
        p = self.chances(parents, scores)
        kept = self._select(parents, p, spent)
        ks = set(kept)
        level = [p[j] for j in frontier if j in ks]
        if not level or pass_seconds is None:
            return bool(level)
        d = depths[frontier[0]]
        mass = sum(level)
        above = 1.0 if d == 0 else sum(p[j] for j in kept if depths[j] == d - 1)
        guess = mass * min(1.0, mass / above) if above > 0 else 0.0
        n = 1.0 + sum(p[j] for j in kept)
        t, slope = self.costs.line(1 + len(kept))
        return guess * (t + spent) > n * (pass_seconds + len(level) * slope)

    def cut(self, parents: Sequence[int], scores: Sequence[float | None], tokens: Sequence[int],
            spent: float = 0.0, kinds: Sequence[str] | None = None) -> list[int]:
        """`keep`; the drafted tree (its nodes' `tokens`) is remembered, to be labelled by what is committed."""
        kept = self.keep(parents, scores, spent, kinds)
        if self.costs is not None and len(parents):
            pick = range(len(parents)) if self.LEARN == "all" else kept
            sub = parents if self.LEARN == "all" else _subset_parents(parents, kept)
            self._pending.append(_Round(list(sub), [scores[j] for j in pick], [int(tokens[j]) for j in pick],
                                        [kinds[j] for j in pick] if kinds else None, self._context()))
        return kept

    def observe(self, accepted_nodes: Sequence[int] | None, committed: Sequence[int]) -> None:
        """The outcome of a round (call it every round, drafted or not: the streak counts rounds, and the trees
        still waiting for their labels read every committed token): which of the kept nodes were accepted
        (`VerifyResult.accepted_nodes`) and the tokens committed (`VerifyResult.tokens[0]`)."""
        self.streak = len(accepted_nodes or ())
        committed = [int(t) for t in committed]
        waiting = []
        for r in self._pending:
            r.seen += committed
            known, ok = r.labels()
            if all(known):
                self._learn(r, known, ok)
            else:
                waiting.append(r)
        self._pending = waiting

    def reset_streak(self) -> None:
        """A new generation: no last round (what the calibration learnt stays); the last generation's trees are
        counted with the nodes its text decided."""
        self.streak = 0
        for r in self._pending:
            self._learn(r, *r.labels())
        self._pending = []

    def _learn(self, r: "_Round", known: list[bool], ok: list[bool]) -> None:
        """Count the round's decided nodes (`_Round.labels`) into the calibration."""
        keep = [j for j in range(len(known)) if known[j]]  # a node not decided has no decided descendant either
        self.calibration.observe_tree(_subset_parents(r.parents, keep), [r.scores[j] for j in keep],
                                      [ok[j] for j in keep], [r.kinds[j] for j in keep] if r.kinds else None,
                                      r.context)


@dataclass
class _Round:
    """One drafted tree awaiting its labels: its nodes and the tokens committed since it was drafted."""

    parents: list[int]
    scores: list
    tokens: list[int]
    kinds: list[str] | None
    context: int
    seen: list[int] = field(default_factory=list)

    def labels(self) -> tuple[list[bool], list[bool]]:
        """(decided, right) per node: a node is decided once its parent was wrong (not tested: never right) or
        once its parent was right and the text has reached its depth (right: its token is the one committed)."""
        n = len(self.parents)
        known, ok, depth = [False] * n, [False] * n, _depths(self.parents)
        for j, par in enumerate(self.parents):
            if par >= 0 and not ok[par]:
                known[j] = known[par]  # parent wrong: decided (untested); parent undecided: undecided
            elif depth[j] < len(self.seen):
                known[j], ok[j] = True, self.tokens[j] == self.seen[depth[j]]
        return known, ok


def _subset_parents(parents: Sequence[int], keep: Sequence[int]) -> list[int]:
    """The parents of the nodes `keep` (ascending, closed under parents) renumbered among themselves."""
    from specdec.drafters.base import DraftTree

    return DraftTree(list(parents)).subset_parents(list(keep))


def _depths(parents: Sequence[int]) -> list[int]:
    """Each node's depth, 0 for a child of the root (the drafters' DraftTree.depths)."""
    from specdec.drafters.base import DraftTree

    return DraftTree(list(parents)).depths
