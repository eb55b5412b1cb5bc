"""Candidate-length policies: how many tokens to draft in each round.

A policy is a small object with per-generation state. The engine calls `start(costs)` at the beginning of
every `generate()`, so nothing persists across calls (`costs`: the machine's measured `RoundCosts`, or None
where none were measured). Per round:

    n = policy.max_draft()                 # upper bound for this round (no side effects)
    ... drafter drafts token i ...
    if not policy.keep_drafting(step): stop   # token-by-token drafters only
    policy.observe(drafted, accepted, verify_s)  # after verification; verify_s: the loop's measured seconds
                                                 # of this round's target pass (None where nothing was timed)

No hook has a hidden timing side effect: a policy that learns costs takes them from `start(costs)` and
`observe(..., verify_s)`, so the loop may call the hooks in any order without breaking it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

import torch

from specdec.errors import InputError
from specdec.registry import Registry


@dataclass
class DraftStep:
    """What a token-by-token drafter knows right after drafting token `index` (0-based) of this round.

    token_prob: q(token), the draft probability of the drafted token.
    top_prob:   max_x q(x), the draft's confidence.
    hidden:     (B, H) the draft model's final hidden state that produced this token, or None.
    """

    index: int
    token: int
    token_prob: float
    top_prob: float
    hidden: torch.Tensor | None = None


@dataclass(frozen=True)
class RoundCosts:
    """What a round costs on this machine, measured once per machine and model (specdec.runners.costs).

    verify(n):    seconds of one target pass over n rows (the pending token + n - 1 draft tokens); verify(1)
                  is a plain-decoding step
    draft_token:  seconds to draft one token (a draft model's one-row pass; ~0 for model-free drafters)
    """

    verify: Callable[[int], float]
    draft_token: float = 0.0

    def round(self, drafted: int) -> float:
        return self.draft_token * drafted + self.verify(1 + drafted)

    def gain(self, drafted: int, committed: int) -> float:
        """Seconds a round that drafted `drafted` tokens and committed `committed` saved over plain decoding
        of the same tokens (negative: it cost more)."""
        return committed * self.verify(1) - self.round(drafted)


@runtime_checkable
class CandidatePolicy(Protocol):
    name: str
    needs_hidden: bool  # the drafter must fill DraftStep.hidden (the draft model's final hidden state)

    def start(self, costs: RoundCosts | None = None) -> None: ...

    def max_draft(self) -> int: ...

    def keep_drafting(self, step: DraftStep) -> bool: ...

    def observe(self, drafted: int, accepted: int, verify_s: float | None = None) -> None: ...


POLICIES: Registry[CandidatePolicy] = Registry("policy")


def check_k(k) -> None:
    """A policy's longest draft: a whole number >= 1, else one line (every policy with a `k` checks it here)."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InputError(f"k must be >= 1 (a whole number), got {k!r}")
