"""The check of a speculative setup before any model loads: drafter and policy names, their options (names and
value types) and the policy's own checks. The CLI, the API, bench and eval all call `check_spec`."""
from __future__ import annotations

import inspect

from specdec.config import DEFAULT_K, RunConfig, SpecConfig
from specdec.errors import InputError
from specdec.runners import check_backend
from specdec.validate import check_option_value


def _options(factory, skip: tuple[str, ...]) -> dict[str, object] | None:
    """Option name -> its declared type (a dataclass field's or a parameter's annotation), or None when the
    factory takes any keyword (its registered check then checks them)."""
    fields = getattr(factory, "__dataclass_fields__", None)
    if fields is not None:
        return {f: fields[f].type for f in fields if f not in skip and not f.startswith("_")}
    params = inspect.signature(factory).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None  # takes anything
    return {p.name: p.annotation for p in params if p.name not in skip}


def check_spec(spec: SpecConfig) -> None:
    """Fail before loading anything: unknown drafter/policy names list the known ones; unknown options too, and
    option values of the wrong type (`max_ngram=abc`, `max_ngram=1e400`) or refused by the drafter's own check."""
    from policies import POLICIES
    from specdec.drafters import DRAFTERS

    checks = [(POLICIES, spec.policy, spec.policy_options, ("name",), f"policy {spec.policy!r}", "--policy-opt")]
    if spec.drafter is not None:
        checks.append((DRAFTERS, spec.drafter, spec.drafter_options, ("env",), f"drafter {spec.drafter!r}",
                       "--drafter-opt"))
    for registry, name, opts, skip, what, flag in checks:
        known = _options(registry.get(name), skip)
        if known is not None:
            bad = sorted(set(opts) - set(known))
            if bad:
                raise InputError(f"{flag}: {what} has no option {', '.join(bad)}; its options: "
                                 f"{', '.join(known) or '(none)'}")
            for key, value in opts.items():
                check_option_value(flag, what, key, value, known[key])
        registry.check(name, **opts)
    build_policy(spec)  # its own checks (heuristic k_max >= k, thresholds, a head file) before any model loads


def check_run(run: RunConfig) -> None:
    """The one validation of a whole run, before anything heavy starts: the speculative setup (check_spec), a
    draft model where the drafter needs one, lengths that no prompt can fit, and the model names (a zoo name,
    a model folder, or a hub id that can be reached or is cached)."""
    from specdec.zoo.load import check_model_name

    from specdec.weights import kernels

    check_spec(run.spec)
    check_backend(run.engine.backend)  # auto or a registered runner
    kernels.check_env()  # SPECDEC_QKERNEL / SPECDEC_SUPERBLOCKS, read when the kernel loads
    if run.engine.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise InputError(f"--device {run.engine.device}: no CUDA device on this machine (torch.cuda.is_available() "
                             "is False; this torch is " + torch.__version__ + ")")
    draft_option = run.spec.drafter_options.get("draft")
    if run.spec.drafter in ("draft-model", "hybrid") and not run.draft and not draft_option:
        raise InputError(f"the {run.spec.drafter} drafter needs a draft model: pass --draft NAME")
    ctx, n = run.engine.max_context, run.stop.max_new_tokens if run.stop is not None else 0
    if n >= ctx:
        raise InputError(f"context overflow: max_new_tokens ({n}) leaves no room for a prompt in the {ctx}-token context "
                         f"(--max-context); lower -n or raise --max-context")
    for role, name in (("target", run.target), ("draft", run.draft), ("draft", draft_option)):
        if isinstance(name, str):
            check_model_name(name, run.engine.cache_dir, role)  # an unknown --draft fails before the target loads


def build_policy(spec: SpecConfig):
    """The candidate-length policy `spec` names, with its options and `spec.k`: its `k` where it takes one
    (default DEFAULT_K), else its longest draft `k_max` (specdecpp); a policy with neither refuses -k."""
    from policies import POLICIES

    opts = dict(spec.policy_options)
    fields = _policy_fields(spec.policy)
    if "k" in fields:
        opts.setdefault("k", DEFAULT_K if spec.k is None else spec.k)
    elif spec.k is not None:  # -k is the longest draft of a policy that sizes its drafts itself
        if "k_max" not in fields:
            raise InputError(f"-k does not apply to policy {spec.policy!r} (it takes no draft length)")
        if opts.get("k_max", spec.k) != spec.k:
            raise InputError(f"-k {spec.k} and --policy-opt k_max={opts['k_max']} disagree: policy {spec.policy!r}'s "
                             "longest draft is -k; give one of them")
        opts["k_max"] = spec.k
    return POLICIES.create(spec.policy, **opts)


def draft_length(spec: SpecConfig) -> int:
    """The k a run reports: -k where given, else the policy's: DEFAULT_K for a policy with a `k`, its default
    longest draft for one without (specdecpp: 20)."""
    if spec.k is not None:
        return spec.k
    fields = _policy_fields(spec.policy)
    if "k" in fields or "k_max" not in fields:
        return DEFAULT_K
    return int(spec.policy_options.get("k_max", fields["k_max"].default))


def _policy_fields(name: str) -> dict:
    """The dataclass fields of policy `name`'s factory ({} for a plain function)."""
    from policies import POLICIES

    return getattr(POLICIES.get(name), "__dataclass_fields__", {})
