"""`cost`: draft while the next token is expected to pay for itself on this machine's measured costs.

Why: the confidence policy's fixed threshold (0.6 for the bundled pair) was tuned on one machine's costs, and the
machines this project runs on differ by more than the threshold can absorb: on a Sapphire Rapids day a verified
row cost ~3 ms beside a 49 ms plain step (AMX, 8 rows 1.41x a 1-row pass), on a Zen 4 day ~5 ms beside 24-36 ms
(VNNI, 8 rows 1.6-2.7x), and a draft-model token 15-21 ms on both (docs/runners.md). What a drafted token is worth
depends on those three numbers and on how likely the chain is still right, so this policy asks all of them.

After drafting token i (0-based) with confidence c_i (the draft's top probability), the chance that the chain
so far is accepted is estimated as

    P_i = a * c_0 * c_1 * ... * c_i

(`a` calibrates the draft's confidence to this target: accepted / predicted over the rounds so far, starting
from `prior` rounds' worth of a = 1). The next token is drafted iff what it is expected to save pays for what it
costs:

    P_i * c_i * verify(1)  >  draft_token + verify(i + 3) - verify(i + 2)

(its own chance P_i * c_i, c_i standing in for the next confidence, which is not known before the pass that
drafts it; verify(n) the measured target pass over n rows, draft_token a draft-model pass: RoundCosts). Without
measured costs the rule uses `fallback`, the break-even chance (0.5: a drafted token costing half a plain step).
"""
from __future__ import annotations

from dataclasses import dataclass

from policies.base import POLICIES, DraftStep, RoundCosts, check_k
from specdec.errors import InputError


@POLICIES.register("cost")
@dataclass
class CostPolicy:
    """Draft up to k tokens, each only while its expected saving exceeds its measured cost (module docstring)."""

    k: int = 8
    prior: float = 4.0
    fallback: float = 0.5
    name: str = "cost"
    needs_hidden = False

    def __post_init__(self) -> None:
        check_k(self.k)
        if not self.prior > 0:
            raise InputError(f"cost: prior must be > 0 (rounds of weight for the starting calibration), got {self.prior}")
        if not 0.0 < self.fallback <= 1.0:
            raise InputError(f"cost: fallback must be in (0, 1], got {self.fallback}")
        self.start(None)

    def start(self, costs: RoundCosts | None = None) -> None:
        self._costs = costs
        self._accepted = self._predicted = self.prior  # calibration a = accepted / predicted, starting at 1
        self._raw: list[float] = []  # c_0 * ... * c_i for this round's drafted tokens

    @property
    def calibration(self) -> float:
        return self._accepted / self._predicted

    def max_draft(self) -> int:
        return self.k

    def _pays(self, index: int, chance: float) -> bool:
        """Whether a token drafted at position `index + 1` with acceptance chance `chance` pays on the costs."""
        c = self._costs
        if c is None:
            return chance >= self.fallback
        step = c.verify(1)
        extra = c.draft_token + c.verify(index + 3) - c.verify(index + 2)
        return chance * step > extra

    def chance(self, raw: float) -> float:
        """P_i from the product of confidences c_0 ... c_i."""
        return min(self.calibration * raw, 1.0)

    def keep_drafting(self, step: DraftStep) -> bool:
        if step.index == 0:
            self._raw = []
        self._raw.append((self._raw[-1] if self._raw else 1.0) * step.top_prob)
        return self._pays(step.index, self.chance(self._raw[-1]) * step.top_prob)

    def observe(self, drafted: int, accepted: int, verify_s: float | None = None) -> None:
        raw, self._raw = self._raw[:drafted], []
        if not raw or drafted <= 0:  # nothing drafted, or drafted without asking (a copy, a tree): nothing learnt
            return
        raw += [raw[-1]] * (drafted - len(raw))  # the last token, drafted at k, was never shown to keep_drafting
        self._predicted += sum(raw)
        self._accepted += accepted
