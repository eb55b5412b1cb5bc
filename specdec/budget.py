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
in vLLM (`StepCosts`: wall time between calls, per bucket of rows) or from the runner's measured pass costs in this
engine (`specdec.runners.costs.PassCosts.line`); p from the drafters' own scores calibrated by what was accepted
(`Calibration`). Until both are known, nothing is cut. Lossless either way: cutting a draft only changes what is
verified.
"""
from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from specdec.errors import InputError


@dataclass(frozen=True)
class BudgetConfig:
    """budget: "auto" (cut drafts by the rule above) or "off" (every drafted token is verified).
    warmup: clean steps measured before anything is cut. ema: weight of a new step time in its bucket's mean.
    prior: prior strength (pseudo-counts) of a score's calibration toward the score itself."""

    budget: str = "auto"
    warmup: int = 8
    ema: float = 0.2
    prior: float = 4.0

    def __post_init__(self) -> None:
        if self.budget not in ("auto", "off"):
            raise InputError(f"budget must be auto or off, got {self.budget!r}")
        if not isinstance(self.warmup, int) or self.warmup < 2:
            raise InputError(f"budget warmup must be an integer >= 2, got {self.warmup!r}")
        if not 0 < self.ema <= 1:
            raise InputError(f"budget ema must be in (0, 1], got {self.ema!r}")
        if not self.prior > 0:
            raise InputError(f"budget prior must be > 0, got {self.prior!r}")


class StepCosts:
    """The step time as a function of the rows in the pass, learnt from measured steps.

    Buckets of rows on a half-octave grid each keep a running mean of (rows, seconds); T and T' at r come from the
    line through the two populated buckets around r (the two nearest at either end). Context growth moves every
    bucket alike, so it shifts T and leaves T' nearly unchanged."""

    def __init__(self, ema: float = 0.2) -> None:
        self.ema = ema
        self.buckets: dict[int, list[float]] = {}  # key -> [mean rows, mean seconds, steps]
        self.steps = 0

    @staticmethod
    def _key(rows: int) -> int:
        return round(2 * math.log2(max(rows, 1)))

    def observe(self, rows: int, seconds: float) -> None:
        if rows < 1 or not seconds > 0:
            return
        b = self.buckets.get(self._key(rows))
        if b is None:
            self.buckets[self._key(rows)] = [float(rows), seconds, 1]
        else:
            w = max(self.ema, 1.0 / (b[2] + 1))  # a plain mean for the first steps, then a running one
            b[0] += w * (rows - b[0])
            b[1] += w * (seconds - b[1])
            b[2] += 1
        self.steps += 1

    @property
    def known(self) -> bool:
        """Two buckets with distinct rows: a slope can be drawn."""
        return len(self.buckets) >= 2

    def describe(self) -> str:
        """The learnt curve for a log line: 'rows:ms' per bucket."""
        pts = sorted((b[0], b[1]) for b in self.buckets.values())
        return "step ms by rows " + (" ".join(f"{r:.0f}:{t * 1e3:.0f}" for r, t in pts) or "(none yet)")

    def line(self, rows: float) -> tuple[float, float]:
        """(T(rows), T'(rows)): seconds of a step at `rows`, seconds per extra row (>= 0)."""
        pts = sorted((b[0], b[1]) for b in self.buckets.values())
        if len(pts) < 2:
            raise ValueError("step costs need two buckets")
        i = 1
        while i < len(pts) - 1 and pts[i][0] < rows:
            i += 1
        (r0, t0), (r1, t1) = pts[i - 1], pts[i]
        slope = max((t1 - t0) / (r1 - r0), 0.0) if r1 > r0 else 0.0
        return max(t0 + slope * (rows - r0), 1e-9), slope


class Calibration:
    """P(a node is accepted | the drafter's score for it), from outcomes: a Beta posterior per score bucket whose
    prior mean is the score itself (`prior` pseudo-counts). Unscored drafters (prompt lookup) get buckets by depth
    with prior mean 0.5^(depth+1)."""

    BUCKETS = 20

    def __init__(self, prior: float = 4.0) -> None:
        self.prior = prior
        self.counts: dict[tuple, list[float]] = {}  # key -> [accepted, drafted]

    def _key(self, score: float | None, depth: int) -> tuple:
        if score is None:
            return ("depth", min(depth, 15))
        return ("score", min(int(score * self.BUCKETS), self.BUCKETS - 1))

    def _prior_mean(self, key: tuple) -> float:
        if key[0] == "depth":
            return 0.5 ** (key[1] + 1)
        return (key[1] + 0.5) / self.BUCKETS

    def p(self, score: float | None, depth: int) -> float:
        key = self._key(score, depth)
        acc, n = self.counts.get(key, (0.0, 0.0))
        return (acc + self.prior * self._prior_mean(key)) / (n + self.prior)

    def max_p(self, scored: bool) -> float:
        """The highest chance any node can get now: no node of a draft pays unless this one would."""
        if not scored:
            return self.p(None, 0)  # a child's chance is capped by its parent's
        return max(self.p((b + 0.5) / self.BUCKETS, 0) for b in range(self.BUCKETS))

    def observe(self, scores: list[float | None], accepted: int) -> None:
        """One request's chain of drafted nodes (their scores, in order) and how many of them were accepted."""
        self.observe_nodes(scores, list(range(len(scores))), [d < accepted for d in range(len(scores))])

    def observe_nodes(self, scores: Sequence[float | None], depths: Sequence[int], accepted: Sequence[bool]) -> None:
        """A tree's drafted nodes: their scores, depths (0: a child of the root) and whether each was accepted."""
        for s, depth, ok in zip(scores, depths, accepted):
            c = self.counts.setdefault(self._key(s, depth), [0.0, 0.0])
            c[0] += bool(ok)
            c[1] += 1


Line = Callable[[float], "tuple[float, float]"]  # rows -> (seconds of a pass, seconds per extra row)


def chain_parents(n: int) -> list[int]:
    return list(range(-1, n - 1))


def first_node_threshold(rows: int, line: Line) -> float:
    """The chance a first drafted node needs to pay when `rows` requests share a pass without drafts."""
    t, slope = line(rows)
    return slope * rows / t


def select(trees: list[tuple[Sequence[int], Sequence[float]]], line: Line) -> list[list[int]]:
    """The nodes worth verifying: `trees[i]` = (parents, p) of request i's draft in topological order (parents[j]
    = -1 for a child of the root; chains: `chain_parents(n)`), p its nodes' calibrated chances of acceptance (path
    probabilities). Every request commits at least one token a pass and fills one row; a node is taken when it
    pays (the module's rule), best first, and only after its parent (its chance capped by its parent's).
    Returns each request's kept node indices, in order (a chain's: a prefix)."""
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
            break  # the best remaining node does not pay; none after it does
        keep[i].append(j)
        rows += 1
        tokens += -neg_p
        for c in kids[i].get(j, ()):
            heapq.heappush(heap, (-min(trees[i][1][c], -neg_p), i, c))
    return [sorted(k) for k in keep]
