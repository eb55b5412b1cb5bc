"""Candidate-length policies. `POLICIES.create(name, **options)` builds one; unknown names list the known."""
from policies.base import POLICIES, CandidatePolicy, DraftStep, RoundCosts
from policies import simple as _simple  # noqa: F401  (registers constant, heuristic, confidence)
from policies import cost as _cost  # noqa: F401  (registers cost)
from policies import specdecpp as _specdecpp  # noqa: F401  (registers specdecpp)

__all__ = ["POLICIES", "CandidatePolicy", "DraftStep", "RoundCosts"]
