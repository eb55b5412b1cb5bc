"""Candidate-length policies: how many tokens to draft in each round.

A policy is a small object with per-generation state. The engine calls `start()` at the beginning of
every `generate()`, so nothing persists across calls. Per round:

    n = policy.max_draft()                 # upper bound for this round
    ... drafter drafts token i ...
    if not policy.keep_drafting(step): stop   # token-by-token drafters only
    policy.observe(drafted, accepted)       # after verification
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

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


@runtime_checkable
class CandidatePolicy(Protocol):
    name: str
    needs_hidden: bool  # the drafter must fill DraftStep.hidden (the draft model's final hidden state)

    def start(self) -> None: ...

    def max_draft(self) -> int: ...

    def keep_drafting(self, step: DraftStep) -> bool: ...

    def observe(self, drafted: int, accepted: int) -> None: ...


POLICIES: Registry[CandidatePolicy] = Registry("policy")
