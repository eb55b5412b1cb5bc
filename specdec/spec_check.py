"""The check of a speculative setup before any model loads: drafter and policy names, their options (names and
value types) and the policy's own checks. The CLI, the API, bench and eval all call `check_spec`."""
from __future__ import annotations

import inspect

from specdec.config import SpecConfig
from specdec.errors import InputError


def _accepted(factory, skip: tuple[str, ...]) -> list[str] | None:
    fields = getattr(factory, "__dataclass_fields__", None)
    if fields is not None:
        return [f for f in fields if f not in skip]
    params = inspect.signature(factory).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None  # takes anything
    return [p.name for p in params if p.name not in skip]


def check_spec(spec: SpecConfig) -> None:
    """Fail before loading anything: unknown drafter/policy names list the known ones; unknown options too."""
    from policies import POLICIES
    from specdec.drafters import DRAFTERS

    if not isinstance(spec.k, int) or spec.k < 1:
        raise InputError(f"-k (draft tokens per round) must be >= 1, got {spec.k}")
    checks = [(POLICIES.get(spec.policy), spec.policy_options, ("name",), f"policy {spec.policy!r}", "--policy-opt")]
    if spec.drafter not in (None, "none", "plain"):
        checks.append((DRAFTERS.get(spec.drafter), spec.drafter_options, ("env",), f"drafter {spec.drafter!r}",
                       "--drafter-opt"))
    for factory, opts, skip, what, flag in checks:
        known = _accepted(factory, skip)
        bad = sorted(set(opts) - set(known)) if known is not None else []
        if bad:
            raise InputError(f"{flag}: {what} has no option {', '.join(bad)}; its options: {', '.join(known) or '(none)'}")
    build_policy(spec)  # its own checks (heuristic k_max >= k, thresholds, a head file) before any model loads


def build_policy(spec: SpecConfig):
    """The candidate-length policy `spec` names, with its options and (where it takes one) `spec.k`."""
    from policies import POLICIES

    opts = dict(spec.policy_options)
    factory = POLICIES.get(spec.policy)
    if "k" in getattr(factory, "__dataclass_fields__", {}) and "k" not in opts:
        opts["k"] = spec.k
    return POLICIES.create(spec.policy, **opts)
