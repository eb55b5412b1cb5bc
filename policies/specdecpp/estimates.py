"""The `specdecpp` policy's online estimates, apart from the policy itself: the machine's costs (CostModel),
the throughput a setting achieves (RateMeter), and the process-wide tables that share them between policy
objects using one head (a new policy object per generate() call keeps what earlier calls measured)."""
from __future__ import annotations

import statistics
from collections import deque
from pathlib import Path
from typing import Any

from policies.specdecpp.head import HeadFile, load_head
from specdec.errors import InputError


def optimal_threshold(c1: float, c2: float, delta: float = 0.0) -> float:
    """Theorem 3.1: stop once P(at least one rejection) >= (c2 + delta) / (c1 + c2 + delta)."""
    if c1 < 0 or c2 < 0 or delta < 0 or c1 + c2 + delta <= 0:
        raise InputError(f"costs must be >= 0 and not all 0 (c1={c1}, c2={c2}, delta={delta})")
    return (c2 + delta) / (c1 + c2 + delta)


def auto_threshold(c1: float, throughput: float) -> float:
    """The throughput-optimal stop rule: drafting one more token costs c1 seconds and adds, in expectation,
    P(all drafted so far and the new one accepted) tokens; it pays while that exceeds c1 * T tokens, T the
    throughput (tokens/s) the policy achieves. Stop once 1 - prod > 1 - c1 * T (prod standing in for the
    unknown next factor). With T = 1 / (c2 + delta), plain decoding's rate, this is Theorem 3.1's rule up to
    the c1 in its denominator; with the (higher) speculative rate it drafts less, as it should."""
    if c1 < 0 or throughput <= 0:
        raise InputError(f"need c1 >= 0 and throughput > 0 (c1={c1}, throughput={throughput})")
    return 1.0 - c1 * throughput


class CostModel:
    """Online estimates (seconds) of c_draft (a draft step), verify time a + b*K, and delta: rolling medians
    and a least-squares fit over the last WINDOW samples, after dropping samples above 3x the median
    (a torch.compile warm-up, another process stealing the CPU)."""

    WINDOW = 64

    def __init__(self, c_draft: float | None = None, a: float | None = None, b: float | None = None,
                 delta: float | None = None) -> None:
        self._c_draft, self._delta = c_draft, delta
        self.prior_a, self.prior_b = a, b
        self.steps: deque[float] = deque(maxlen=self.WINDOW)
        self.gaps: deque[float] = deque(maxlen=self.WINDOW)
        self.verifies: deque[tuple[int, float]] = deque(maxlen=self.WINDOW)
        self.rounds = 0
        self.seeded = c_draft is not None and a is not None  # given costs: used as they are, never re-measured

    @property
    def ready(self) -> bool:
        return self.costs() is not None and (self.seeded or self.rounds >= 5)

    @property
    def c_draft(self) -> float | None:
        return self._c_draft if self.seeded or not self.steps else statistics.median(self.steps)

    @property
    def delta(self) -> float | None:
        if self.seeded or not self.gaps or self.c_draft is None:
            return self._delta
        return max(0.0, statistics.median(self.gaps) - self.c_draft)

    # ---- samples
    def add_draft_step(self, dt: float) -> None:
        if not self.seeded:
            self.steps.append(dt)

    def add_verify(self, k: int, dt: float) -> None:
        if not self.seeded:
            self.verifies.append((k, dt))
            self.rounds += 1

    def add_gap(self, dt: float) -> None:
        if not self.seeded:
            self.gaps.append(dt)

    # ---- estimates
    def verify_fit(self) -> tuple[float, float] | None:
        """(a, b) of verify time = a + b*K, or the priors, or None."""
        if self.seeded or len(self.verifies) < 3:
            return (self.prior_a, self.prior_b or 0.0) if self.prior_a is not None else None
        med = statistics.median(t for _, t in self.verifies)
        pts = [(k, t) for k, t in self.verifies if t <= 3 * med]
        n = len(pts)
        mk, mt = sum(k for k, _ in pts) / n, sum(t for _, t in pts) / n
        var = sum((k - mk) ** 2 for k, _ in pts) / n
        if var > 0.25:
            b = max(0.0, sum((k - mk) * (t - mt) for k, t in pts) / n / var)
        else:
            b = self.prior_b or 0.0
        return max(mt - b * mk, 1e-6), b

    def costs(self) -> tuple[float, float, float] | None:
        """(c1, c2, delta) or None while unknown."""
        fit = self.verify_fit()
        if fit is None or self.c_draft is None:
            return None
        a, b = fit
        return self.c_draft + b, a, self.delta or 0.0

    def to_dict(self) -> dict[str, Any]:
        c = self.costs()
        fit = self.verify_fit()
        return {"c_draft": self.c_draft, "verify_a": fit[0] if fit else None, "verify_b": fit[1] if fit else None,
                "delta": self.delta, "c1": c[0] if c else None, "c2": c[1] if c else None,
                "threshold_theorem": optimal_threshold(*c) if c else None, "rounds_timed": self.rounds}


class RateMeter:
    """Tokens per second of speculative rounds (observe to observe) over the last WINDOW rounds, dropping
    rounds slower than 3x the median (compile warm-ups, CPU theft)."""

    WINDOW = 64

    def __init__(self) -> None:
        self.samples: deque[tuple[int, float]] = deque(maxlen=self.WINDOW)

    @property
    def rounds(self) -> int:
        return len(self.samples)

    def add_round(self, tokens: int, dt: float) -> None:
        self.samples.append((tokens, dt))

    def throughput(self) -> float | None:
        if len(self.samples) < 5:
            return None
        med = statistics.median(dt for _, dt in self.samples)
        kept = [(n, dt) for n, dt in self.samples if dt <= 3 * med]
        return sum(n for n, _ in kept) / sum(dt for _, dt in kept)


SHARED_COSTS: dict[str, CostModel] = {}  # per head: the machine's costs
SHARED_RATES: dict[tuple, RateMeter] = {}  # per head and policy settings: the throughput they achieve
HEADS: dict[str, HeadFile] = {}


def load_cached_head(path: str) -> HeadFile:
    key = str(Path(path).resolve())
    if key not in HEADS:
        HEADS[key] = load_head(key)
    return HEADS[key]


def reset_shared_costs() -> None:
    """Forget the costs measured so far in this process (tests, or after changing thread counts)."""
    SHARED_COSTS.clear()
    SHARED_RATES.clear()
