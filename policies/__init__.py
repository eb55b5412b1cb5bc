"""Candidate-length policies. `POLICIES.create(name, **options)` builds one; unknown names list the known."""
from policies.base import POLICIES, CandidatePolicy, DraftStep
from policies import simple as _simple  # noqa: F401  (registers constant, heuristic, confidence)

__all__ = ["POLICIES", "CandidatePolicy", "DraftStep"]
