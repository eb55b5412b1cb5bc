"""The three classic candidate-length policies: constant, heuristic (+2/-1) and draft confidence."""
from __future__ import annotations

from dataclasses import dataclass

from policies.base import POLICIES, DraftStep, RoundCosts, check_k
from specdec.errors import InputError


@POLICIES.register("constant")
@dataclass
class ConstantPolicy:
    """Always draft k tokens."""

    k: int = 4
    name: str = "constant"
    needs_hidden = False

    def __post_init__(self) -> None:
        check_k(self.k)

    def start(self, costs: RoundCosts | None = None) -> None:
        pass

    def max_draft(self) -> int:
        return self.k

    def keep_drafting(self, step: DraftStep) -> bool:
        return True

    def observe(self, drafted: int, accepted: int, verify_s: float | None = None) -> None:
        pass


@POLICIES.register("heuristic")
@dataclass
class HeuristicPolicy:
    """HF's assisted-generation heuristic: k += 2 when every drafted token was accepted, else k -= 1
    (never below 1, never above k_max). k restarts from `k` at every generation."""

    k: int = 4
    k_max: int = 16
    name: str = "heuristic"
    needs_hidden = False

    def __post_init__(self) -> None:
        check_k(self.k)
        if not isinstance(self.k_max, int) or self.k_max < self.k:
            raise InputError(f"heuristic: k_max must be an integer >= k ({self.k}), got {self.k_max!r}")
        self._current = self.k

    def start(self, costs: RoundCosts | None = None) -> None:
        self._current = self.k

    def max_draft(self) -> int:
        return self._current

    def keep_drafting(self, step: DraftStep) -> bool:
        return True

    def observe(self, drafted: int, accepted: int, verify_s: float | None = None) -> None:
        if drafted == 0:
            return
        if accepted == drafted:
            self._current = min(self._current + 2, self.k_max)
        else:
            self._current = max(self._current - 1, 1)


@POLICIES.register("confidence")
@dataclass
class ConfidencePolicy:
    """Draft up to k tokens; stop as soon as the draft's top probability falls below `threshold`
    (the token just drafted is still verified)."""

    k: int = 8
    threshold: float = 0.4
    name: str = "confidence"
    needs_hidden = False

    def __post_init__(self) -> None:
        check_k(self.k)
        if not 0.0 <= self.threshold <= 1.0:
            raise InputError(f"threshold must be in [0, 1], got {self.threshold}")

    def start(self, costs: RoundCosts | None = None) -> None:
        pass

    def max_draft(self) -> int:
        return self.k

    def keep_drafting(self, step: DraftStep) -> bool:
        return step.top_prob >= self.threshold

    def observe(self, drafted: int, accepted: int, verify_s: float | None = None) -> None:
        pass
