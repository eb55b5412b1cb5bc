"""The `specdecpp` candidate-length policy (SpecDec++, Huang, Guo & Wang 2024).

Each round starts with prod = 1. After the draft model drafts token i, the acceptance head maps the
draft's hidden state (`DraftStep.hidden`) to P(accept), prod *= P(accept), and drafting stops when

    1 - prod > h            (the predicted probability that at least one drafted token is rejected)

never before `k_min` tokens, never beyond `k_max`, and always right after an EOS token.

The threshold h: a fixed number; "theorem", Theorem 3.1 of the paper with costs measured on this machine,

    stop when P(at least one rejection) >= h* = (c2 + delta) / (c1 + c2 + delta)

    c1    = the cost of one more drafted token: one draft forward + the target's marginal cost of
            verifying one more token (the slope b of verify time vs draft length; large on CPUs)
    c2    = the cost of a target forward with no draft (the intercept a of that fit)
    delta = the per-round overhead outside the two models' forwards (sampling, verification, bookkeeping)

i.e. draft one more token while P(reject so far) * c1 < (1 - P(reject so far)) * (c2 + delta); or "auto"
(the default), the throughput-optimal version of the same marginal argument:

    stop when P(at least one rejection) > h = 1 - c1 * T,     T = the measured tokens/s of this policy

(one more token costs c1 and adds P(all accepted) tokens, worth c1 * T tokens at the current rate; this is
the per-round optimal stopping of a ratio objective, Dinkelbach style: T converges to the best rate).
Theorem 3.1 values an accepted token at plain decoding's cost c2 + delta; once speculation runs at T >
1 / (c2 + delta) that over-values long drafts, which on this CPU (draft ~1/3 of the target's cost) made
drafts of ~15 tokens where ~5 pay. (Our reading of the paper's c1, c2, delta -- in particular folding the
CPU's per-token verification cost into c1 -- and the "auto" rule are ours; see docs/specdecpp.md.)

The costs are measured online (time between consecutive `keep_drafting` calls = a draft step; the loop's
measured target pass, `observe(..., verify_s)`, = verification, fitted as a + b*K; time from `observe` to
the next round's first call minus a draft step = delta), shared by every
policy object using the same head in this process. Costs given as c1=/c2=/delta= or costs=FILE (e.g. from
`specdec head calibrate --json`) are used as they are instead.

Guard ("never speculate where it does not pay"): once the costs are known, a round is worth
(accepted*(c2+delta) - drafted*c1) / (c2+delta) plain-decoding steps saved. When the last 8 speculative
rounds together lost more than 2 steps, the policy drafts nothing (plain decoding rounds) for a back-off
period (8, 16, ... 64 rounds), then tries speculation again. (A margin, not 0: with marginal gains the
estimate is noise, and a plain round wrongly chosen costs as much as a speculative one.)
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from policies.base import POLICIES, DraftStep, RoundCosts
from policies.specdecpp.estimates import (SHARED_COSTS, SHARED_RATES, CostModel, RateMeter, auto_threshold,  # noqa: F401
                                          load_cached_head, optimal_threshold, reset_shared_costs)  # noqa: F401
from policies.specdecpp.head import BUNDLED, BUNDLED_CONF, HeadMismatchError, bundled_head, check_identity, deweight
from specdec.errors import InputError

DEFAULT_THRESHOLD = 0.7  # used with threshold="auto" until enough rounds were timed, when nothing else is known


def _read_costs(path: str) -> dict[str, float]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"costs file {path!r} not found")
    d = json.loads(p.read_text())
    d = d.get("costs", d)
    return {k: float(d[k]) for k in ("c1", "c2", "delta", "c_draft", "verify_a", "verify_b") if d.get(k) is not None}


# --------------------------------------------------------------------------------------------- policy
@POLICIES.register("specdecpp")
@dataclass
class SpecDecPPPolicy:
    """Options: head (path; default the bundled head of `draft`, or the only bundled head), threshold
    (float in (0,1), "auto", or None = the head's recommended value), k_min / k_max (2 / 20), eos_ids
    (default: the head file's), draft (the draft's name: refuse a head trained for another draft),
    c1 / c2 / delta or costs=FILE (fixed costs in seconds for "auto"), calibrate (undo the training loss's reject weight, so that the
    product is a probability; False = the raw head output, as in the paper's code). -k sets k_max. Falling back
    to plain decoding where speculation does not pay is the engine's guard for every policy (--guard)."""

    head: str | None = None
    threshold: float | str | None = None
    k_min: int = 2
    k_max: int = 20
    eos_ids: Any = None
    draft: str | None = None
    c1: float | None = None
    c2: float | None = None
    delta: float | None = None
    costs: str | None = None
    calibrate: bool = True
    name: str = "specdecpp"
    needs_hidden = True  # the acceptance head reads the draft's hidden state

    _conf_variant = False  # specdecpp-conf: the bundled head that also sees the draft's confidence

    def __post_init__(self) -> None:
        self.k_min, self.k_max = int(self.k_min), int(self.k_max)
        if not 1 <= self.k_min <= self.k_max:
            raise InputError(f"need 1 <= k_min <= k_max, got k_min={self.k_min}, k_max={self.k_max}")
        if isinstance(self.calibrate, str):
            self.calibrate = self.calibrate.lower() not in ("0", "false", "no", "off")
        # ---- the head
        if self.head is None:
            table = BUNDLED_CONF if self._conf_variant else BUNDLED
            path = bundled_head(self.draft, conf=self._conf_variant) if self.draft else None
            if path is None and self.draft and Path(str(self.draft)).name not in table:
                raise InputError(f"no bundled acceptance head for draft {self.draft!r}; train one "
                                 "(`specdec head build-data` + `specdec head train`) and pass head=PATH")
            if path is None:
                path = next((p for p in table.values() if p.is_file()), None)
            if path is None:
                raise InputError("the bundled acceptance head is missing; pass head=PATH")
            self.head = str(path)
        hf = load_cached_head(str(self.head))
        if self.draft:
            check_identity(hf.identity, {"name": str(self.draft)})
        self._hf = hf
        self._net = hf.head
        self._align = hf.meta.get("align", "pre")
        self._extras = list(hf.meta.get("extra_features", []))
        self._w = hf.meta.get("reject_weight") if self.calibrate else None
        # ---- eos
        eos = self.eos_ids if self.eos_ids is not None else hf.meta.get("eos_token_ids", [])
        if isinstance(eos, str):
            eos = [int(x) for x in eos.replace(";", ",").split(",") if x.strip()]
        elif isinstance(eos, int):
            eos = [eos]
        self._eos = {int(e) for e in eos}
        # ---- threshold / costs
        seed = _read_costs(self.costs) if self.costs else {}
        for k in ("c1", "c2", "delta"):
            if getattr(self, k) is not None:
                seed[k] = float(getattr(self, k))
        thr = self.threshold if self.threshold is not None else hf.meta.get("threshold", "auto")
        if isinstance(thr, str) and thr.strip().lower() not in ("auto", "theorem"):
            try:
                thr = float(thr)
            except ValueError:
                raise InputError(f"threshold must be a number in (0, 1), 'auto' or 'theorem', got {thr!r}") from None
        self._auto = isinstance(thr, str)
        self._mode = thr.strip().lower() if self._auto else "fixed"
        if not self._auto and not 0.0 < float(thr) < 1.0:
            raise InputError(f"threshold must be in (0, 1), 'auto' or 'theorem', got {thr}")
        self._fixed_h = None if self._auto else float(thr)
        key = str(Path(self.head).resolve())
        if key not in SHARED_COSTS or seed:
            c_draft = seed.get("c_draft")
            if c_draft is None and "c1" in seed:
                c_draft = seed["c1"] - seed.get("verify_b", 0.0)
            a = seed.get("verify_a", seed.get("c2"))
            b = seed.get("verify_b", 0.0 if "c1" in seed else None)
            SHARED_COSTS[key] = CostModel(c_draft=c_draft, a=a, b=b, delta=seed.get("delta"))
        self._costs = SHARED_COSTS[key]
        self._shared_costs = self._costs
        self._given_costs = bool(seed)
        self._given_threshold = self.threshold is not None
        self._head_mode, self._head_h = self._mode, self._fixed_h
        self._rate = SHARED_RATES.setdefault((key, self._mode, self._fixed_h, self.k_min, self.k_max), RateMeter())
        self.start()

    # ---- per generation / per round state
    def start(self, costs: RoundCosts | None = None) -> None:
        """`costs`: the runner's measured costs. Unless costs were given as options, they replace the online
        estimates (c1 = a draft token + the verify pass's slope over 4 drafts, c2 = a plain step, delta = 0),
        and unless a threshold was given, the stop rule is Theorem 3.1's threshold from them (the head
        file's recorded threshold was tuned on another machine's costs)."""
        if costs is not None and not self._given_costs:
            slope = max(0.0, (costs.verify(5) - costs.verify(1)) / 4)
            self._costs = CostModel(c_draft=costs.draft_token, a=costs.verify(1), b=slope, delta=0.0)
            if not self._given_threshold:
                self._mode, self._auto, self._fixed_h = "theorem", True, None
        elif costs is None:
            self._costs = self._shared_costs
            self._mode, self._fixed_h = self._head_mode, self._head_h
            self._auto = self._fixed_h is None
        self._prod = 1.0
        self._calls = 0
        self._t_last: float | None = None  # time of the last keep_drafting call in this round
        self._t_observe: float | None = None
        self._first_round = True
        self.history: list[tuple[int, int]] = []  # (drafted, accepted) per round of this generation
        self.rejection_prob: list[float] = []  # 1 - prod at each stop (diagnostics)

    def _new_round(self) -> None:
        self._prod = 1.0
        self._calls = 0

    @property
    def current_threshold(self) -> float:
        if self._fixed_h is not None:
            return self._fixed_h
        if not self._costs.ready:
            return float(self._hf.meta.get("threshold_prior", DEFAULT_THRESHOLD))
        c1, c2, delta = self._costs.costs()
        if self._mode == "theorem":
            h = optimal_threshold(c1, c2, delta)
        else:
            t = self._rate.throughput()
            h = auto_threshold(c1, t if t is not None else 1.0 / max(c2 + delta, 1e-9))
        return min(max(h, 0.05), 0.98)

    def max_draft(self) -> int:
        return self.k_max

    @torch.no_grad()
    def accept_prob(self, hidden: torch.Tensor, top_prob: float | None = None) -> float:
        x = hidden.reshape(-1, hidden.shape[-1])[:1].float()
        if self._extras:  # "top_logprob": the draft's own confidence, appended to the hidden state
            x = torch.cat([x, torch.tensor([[math.log(max(top_prob if top_prob is not None else 1.0, 1e-30))]])], 1)
        if x.shape[-1] != self._net.hidden_size:
            raise HeadMismatchError(
                f"the acceptance head {self.head!r} was trained for draft {self._hf.identity.get('name')!r} "
                f"(hidden size {self._net.hidden_size - len(self._extras)}), but this draft's hidden size is "
                f"{hidden.shape[-1]}; "
                "pass head=PATH to a head trained for this draft"
            )
        p = float(self._net.accept_prob(x)[0])
        return float(deweight(p, self._w))

    def keep_drafting(self, step: DraftStep) -> bool:
        now = time.perf_counter()
        if step.index == 0:
            self._new_round()
            if self._t_observe is not None and not self._first_round:
                self._costs.add_gap(now - self._t_observe)
        elif self._t_last is not None:
            self._costs.add_draft_step(now - self._t_last)
        self._calls += 1
        n = step.index + 1  # tokens drafted so far in this round
        stop = False
        if step.token in self._eos:
            stop = True
        else:
            if step.hidden is None:
                raise InputError("the specdecpp policy needs the draft model's hidden states (drafter draft-model)")
            if self._align == "post":  # the hidden state at token i has consumed token i-1: it scores i-1
                p = 1.0 if step.index == 0 else self.accept_prob(step.hidden, step.top_prob)
            else:
                p = self.accept_prob(step.hidden, step.top_prob)
            self._prod *= p
            if n >= self.k_max:
                stop = True
            elif n >= self.k_min and 1.0 - self._prod > self.current_threshold:
                stop = True
        if stop:
            self.rejection_prob.append(1.0 - self._prod)
        self._t_last = time.perf_counter()
        return not stop

    def observe(self, drafted: int, accepted: int, verify_s: float | None = None) -> None:
        """`verify_s`: the loop's measured seconds of this round's target pass. Without it (a caller that
        times nothing) a drafted round's verification is estimated from the last `keep_drafting` call."""
        now = time.perf_counter()
        if not self._first_round:
            if verify_s is not None:
                self._costs.add_verify(drafted, max(verify_s, 1e-6))
            elif drafted > 0 and self._t_last is not None:
                # the drafter does not ask about the last token it may draft (k_max bound): a step we did not see
                unseen = max(0, drafted - self._calls)
                extra = unseen * (self._costs.c_draft or 0.0)
                self._costs.add_verify(drafted, max(now - self._t_last - extra, 1e-6))
        self.history.append((drafted, accepted))
        if drafted > 0 and self._t_observe is not None and not self._first_round:
            self._rate.add_round(accepted + 1, now - self._t_observe)
        self._first_round = False
        self._t_observe = now
        self._t_last = None
        self._calls = 0

    # ---- diagnostics
    def cost_estimates(self) -> dict[str, Any]:
        d = self._costs.to_dict()
        t = self._rate.throughput()
        d["throughput"] = t
        if d["c1"] is not None:
            d["threshold_auto"] = auto_threshold(d["c1"], t or 1.0 / (d["c2"] + (d["delta"] or 0.0)))
        d["threshold_in_use"] = self.current_threshold
        return d


@POLICIES.register("specdecpp-conf")
@dataclass
class SpecDecPPConfPolicy(SpecDecPPPolicy):
    """`specdecpp` whose default head is the bundled one that also sees the draft's own confidence
    (log max q, from `DraftStep.top_prob`) next to the hidden state -- not in the paper; see
    docs/specdecpp.md for why (on our small training set the paper's head ranks worse than that confidence)."""

    name: str = "specdecpp-conf"
    _conf_variant = True
