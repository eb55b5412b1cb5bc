"""This project's model-free drafters as vLLM proposers (vLLM's `custom_class` speculative method).

    from vllm import LLM
    llm = LLM(model=DIR, speculative_config={"method": "custom_class", "num_speculative_tokens": 4,
                                             "model": "specdec.backends.vllm_proposers.AdedProposer"})
    vllm serve DIR --speculative-config '{"method": "custom_class", ...}'     (or `specdec serve`)

Drafter options come from the environment, as JSON (vLLM builds the proposer from its own config object and
has no field for them): SPECDEC_DRAFTER_OPTIONS='{"store": "bundled", "max_ngram": 4}'. They are checked
with the drafter's own check when the proposer is built, so a typo fails vLLM's start-up with one line.

How a registered drafter runs inside vLLM: vLLM calls `propose(sampled_token_ids, num_tokens_no_spec,
token_ids_cpu)` once per step for the whole batch; row i holds request i's committed tokens
token_ids_cpu[i, :num_tokens_no_spec[i]] and sampled_token_ids[i] the tokens this step committed (accepted
drafts + one target token; empty while the request is still in prefill). Each request gets its own drafter
object, found by the hash of the tokens it had before this step (rows move when vLLM condenses its batch):
a new request calls `drafter.start(prompt + first token)`, a continuing one `drafter.observe(...)` with the
step's tokens, so ADED's tri-gram store adapts per request exactly as in this engine (each request adapts its
own overlay over one shared base store: `TrigramStore.fork`). vLLM verifies chains, so tree drafters run as
chains (ADED's best path, `chain=true`). Greedy output equals vLLM's plain greedy output (vLLM's
rejection sampler); sampling goes through vLLM's own lossless rejection sampling with one-hot drafts.

At batch > 1 a drafted token costs a row of a pass the batch already fills: the proposer times its own steps
and keeps only the tokens whose chance of acceptance pays for their row (specdec.budget; options
in SPECDEC_PROPOSER_OPTIONS, e.g. '{"budget": "off"}' to verify every drafted token).

Acceptance counts come back through vLLM's speculative-decoding metrics (the worker reads them per request).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from specdec.budget import BudgetConfig, Calibration, StepCosts, chain_parents, first_node_threshold, select
from specdec.drafters.base import Draft
from specdec.errors import InputError

OPTIONS_ENV = "SPECDEC_DRAFTER_OPTIONS"
PROPOSER_ENV = "SPECDEC_PROPOSER_OPTIONS"  # the batch budget's options (specdec.budget)
MAX_REQUESTS = 4096  # per-request drafter states kept (least recently used dropped)
LOG_EVERY = 200  # steps between the proposer's log lines (in vLLM's log: the "vllm." logger's handlers)
_log = logging.getLogger("vllm.specdec_proposer")


def drafter_options(env: dict | None = None) -> dict:
    """The drafter options in SPECDEC_DRAFTER_OPTIONS (a JSON object), {} when unset."""
    opts, text = _env_json(OPTIONS_ENV, env)
    if not isinstance(opts, dict):
        raise InputError(f"{OPTIONS_ENV} must be a JSON object of drafter options, got {text[:80]!r}")
    return opts


def _env_json(name: str, env: dict | None) -> tuple[Any, str]:
    """(the JSON value of environment variable `name`, its text); ({}, "") when unset or blank."""
    text = (env if env is not None else os.environ).get(name, "").strip()
    if not text:
        return {}, ""
    try:
        return json.loads(text), text
    except json.JSONDecodeError as e:
        raise InputError(f"{name} is not JSON ({e.msg}): {text[:80]!r}") from None


@dataclass
class _ModelFree:
    """The DrafterEnv's runner for a model-free drafter inside vLLM: its vocabulary size, nothing to run."""

    vocab_size: int


def _key(tokens: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(tokens, dtype=np.int64).tobytes(), digest_size=16).digest()


@dataclass
class _Request:
    """One request's drafter and what it proposed last step (the kept nodes' scores, None where unscored)."""

    drafter: Any
    prompt_len: int
    proposed: list = field(default_factory=list)


def budget_config(env: dict | None = None) -> BudgetConfig:
    """The batch budget's options in SPECDEC_PROPOSER_OPTIONS (a JSON object; default: budget auto)."""
    opts, text = _env_json(PROPOSER_ENV, env)
    known = set(BudgetConfig.__dataclass_fields__)
    if not isinstance(opts, dict) or set(opts) - known:
        raise InputError(f"{PROPOSER_ENV} must be a JSON object with keys among {', '.join(sorted(known))}, "
                         f"got {text[:80]!r}")
    return BudgetConfig(**opts)


class DrafterProposer:
    """A registered model-free drafter (`drafter`, set by each subclass) behind vLLM's proposer interface."""

    drafter = ""
    default_options: dict[str, Any] = {}  # the vLLM path's defaults, under the user's options
    fixed_options: dict[str, Any] = {}  # options the vLLM path needs (ADED: chains), over the user's options
    scored = True  # the drafter's drafts carry scores (Draft.scores); else the budget calibrates by depth

    def __init__(self, vllm_config=None, *, k: int | None = None, tokenizer=None, vocab_size: int | None = None,
                 options: dict | None = None, budget: BudgetConfig | None = None, clock=time.perf_counter) -> None:
        from policies import POLICIES
        from specdec.config import SamplingConfig
        from specdec.drafters import DRAFTERS, DrafterEnv

        if vllm_config is not None:  # built by vLLM: its config object, whole
            spec, model = vllm_config.speculative_config, vllm_config.model_config
            k = spec.num_speculative_tokens
            vocab_size = model.get_vocab_size()
            if tokenizer is None:
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(model.tokenizer, trust_remote_code=model.trust_remote_code)
        if not isinstance(k, int) or k < 1:
            raise InputError(f"num_speculative_tokens must be >= 1, got {k!r}")
        self.k = k
        self.options = {**self.default_options, **(drafter_options() if options is None else options),
                        **self.fixed_options}
        DRAFTERS.check(self.drafter, **self.options)  # before anything runs: one line for a bad option
        self.budget = budget if budget is not None else budget_config()

        def no_models(name: str):
            raise InputError(f"{self.drafter} inside vLLM is model-free: it cannot load {name!r}")

        vocab = max(vocab_size or 0, len(tokenizer) if tokenizer is not None else 0)
        self._env = DrafterEnv(target_tokenizer=tokenizer, target_runner=_ModelFree(vocab), load_model=no_models)
        self._prototype = DRAFTERS.create(self.drafter, env=self._env, **self.options)
        self._policy = POLICIES.create("constant", k=k)
        self._sampling = SamplingConfig()
        self._states: OrderedDict[bytes, _Request] = OrderedDict()  # tokens' hash -> the request
        self.requests = 0  # requests seen (tests, logs)
        self.costs, self.calibration = StepCosts(self.budget.window), Calibration(self.budget.prior)
        self.drafted = self.kept = 0  # tokens the drafters proposed / the budget kept
        self._clock, self._last_call, self._expected_rows, self._context = clock, None, -1, 0.0
        self.steps, self.busy = 0, 0.0  # calls; seconds spent inside propose()

    # ---- vLLM's hooks
    def load_model(self, *args, **kwargs) -> None:
        """vLLM calls this with the target model; a model-free drafter needs nothing from it."""

    def propose(self, sampled_token_ids: list[list[int]], num_tokens_no_spec: np.ndarray, token_ids_cpu: np.ndarray,
                slot_mappings=None, **kwargs) -> list[list[int]]:
        """One draft (a list of at most k token ids) per request row of the batch; [] where nothing is proposed."""
        now = self._clock()
        decoding = [i for i, x in enumerate(sampled_token_ids) if x and int(num_tokens_no_spec[i]) >= 1]
        clean = len(decoding) == len(sampled_token_ids)  # the step just run: only decoding rows, the ones proposed for
        rows_before = 0
        requests: list[tuple[int, _Request, np.ndarray]] = []
        for i in decoding:  # each request's drafter learns what the step committed
            sampled = list(sampled_token_ids[i])
            seq = np.asarray(token_ids_cpu[i, :int(num_tokens_no_spec[i])], dtype=np.int64)  # (n,) prompt + output
            req, new = self._request_for(seq, sampled)
            if new:
                clean = False
            else:
                rows_before += 1 + len(req.proposed)
                self.calibration.observe(req.proposed, len(sampled) - 1)
            requests.append((i, req, seq))
        if self._last_call is not None and clean and rows_before == self._expected_rows:
            self.costs.observe(rows_before, now - self._last_call, self._context)
        context = float(sum(len(seq) for _, _, seq in requests))  # committed tokens this step's pass attends to
        line, explore = self._line(context)
        bar = None if line is None or explore else first_node_threshold(len(requests), line)  # a first node's price
        idle = bar is not None and bar >= self.calibration.max_p(self.scored)
        live = [(i, req, Draft.empty() if idle or not self._worth(req, seq, bar) else self._draft(req, seq))
                for i, req, seq in requests]
        out: list[list[int]] = [[] for _ in sampled_token_ids]
        keep = self._keep([d for _, _, d in live], line, explore)
        self._expected_rows, self._context = 0, context
        for (i, req, draft), n_keep in zip(live, keep):
            tokens = [int(t) for t in draft.tokens[0, :n_keep].tolist()]
            out[i], req.proposed = tokens, _scores(draft, n_keep)
            self._expected_rows += 1 + len(tokens)
            self.drafted += min(draft.length, self.k)
            self.kept += len(tokens)
        self._last_call = now
        self.steps += 1
        self.busy += self._clock() - now
        if self.steps % LOG_EVERY == 0:
            _log.info("specdec %s proposer: %d steps, %d requests, kept %d of %d drafted tokens, %.1f ms a step in the "
                      "proposer (budget %s; %s)", self.drafter, self.steps, self.requests, self.kept, self.drafted,
                      self.busy / self.steps * 1e3, self.budget.budget, self.costs.describe())
        return out

    def _budget_ready(self) -> bool:
        """The budget cuts drafts: on, past its warm-up, with a cost slope to read."""
        return self.budget.budget != "off" and self.costs.steps >= self.budget.warmup and self.costs.known

    def _line(self, context: float):
        """(the cost line this step's cuts use, or None: keep every drafted token; whether this step explores).
        Until the slope is known, every other step keeps only the exploring few and the others nothing (keeping
        every token then cost 2.6% of a batch-32 run: 8 steps of 160 rows instead of 32, 1.3 s each instead of
        0.3 s); past it, every `explore`-th step explores."""
        if self.budget.budget == "off":
            return None, False
        if not self._budget_ready():
            return _NOTHING_PAYS, self.steps % 2 == 0
        return self.costs.at(context), self.budget.explore > 0 and self.steps % self.budget.explore == 0

    def _worth(self, req: _Request, seq: np.ndarray, bar: float | None) -> bool:
        """Whether request `req` may draft a token that pays: its drafter's bound on a node's score, calibrated,
        beats the first node's threshold `bar` (None: no threshold yet). One store lookup instead of a search:
        at 32 requests on 2 CPU cores ADED's searches took about 0.8 ms each (26 ms of a 430 ms step)."""
        if bar is None:
            return True
        bound = req.drafter.score_bound(torch.from_numpy(seq)[None])
        return bound is None or (bound > 0 and self.calibration.max_p_upto(bound) > bar)  # 0: nothing to draft

    def _keep(self, drafts: list, line, explore: bool) -> list[int]:
        """Tokens kept of each draft: all of them (up to k) until the step costs are known (`line` None), then the
        budget's (plus a few past it on an exploring step)."""
        full = [min(d.length, self.k) for d in drafts]
        if line is None:
            return full
        chains = []
        for d, n in zip(drafts, full):
            scores = _scores(d, n)
            chains.append((chain_parents(n), self.calibration.chances(chain_parents(n), scores)))
        extra = max(2, len(drafts) // 8) if explore else 0
        return [len(kept) for kept in select(chains, line, extra)]

    # ---- one request
    def _request_for(self, seq: np.ndarray, new: list[int]) -> tuple[_Request, bool]:
        before = _key(seq[: len(seq) - len(new)])
        req = self._states.pop(before, None)  # two rows with the same tokens (same prompt, same output so far):
        fresh = req is None  # the second finds nothing and starts afresh each step (output unchanged; counted anew)
        if fresh:  # a new request: this engine's start() on prompt + its first token
            req = _Request(self._new_drafter(), len(seq) - len(new))
            req.drafter.start(torch.from_numpy(seq.copy())[None])
            self.requests += 1
        else:
            req.drafter.observe(_committed(new))
        self._states[_key(seq)] = req
        while len(self._states) > MAX_REQUESTS:
            self._states.popitem(last=False)
        return req, fresh

    def _draft(self, req: _Request, seq: np.ndarray):
        from specdec.drafters.base import DraftContext

        ctx = DraftContext(tokens=torch.from_numpy(seq.copy())[None], prompt_len=req.prompt_len, max_draft=self.k,
                           policy=self._policy, sampling=self._sampling, policy_k=self.k)
        return req.drafter.propose(ctx)

    def _new_drafter(self):
        """A drafter for one request. ADED: its own adaptation overlay over the one shared base store."""
        return self._prototype.fork()


def _NOTHING_PAYS(rows: float) -> tuple[float, float]:
    """A cost line on which no drafted token pays (before the slope is known): only exploring nodes are kept."""
    return 1.0, float("inf")


def _scores(draft, n: int) -> list:
    """The first n nodes' scores of a one-row draft (None each where the drafter has none)."""
    return draft.scores[0, :n].tolist() if draft.scores is not None else [None] * n


def _committed(tokens: list[int]):
    """The VerifyResult a drafter's observe() reads for one vLLM step: the tokens it committed (vLLM does not say
    which of them were drafts; drafters that adapt read only the tokens)."""
    from specdec.drafters.base import VerifyResult

    t = torch.tensor([tokens], dtype=torch.long)  # (1, A+1)
    return VerifyResult(tokens=t, num_accepted=len(tokens) - 1, draft_length=len(tokens) - 1,
                        accepted_nodes=list(range(len(tokens) - 1)), bonus=True)


class PromptLookupProposer(DrafterProposer):
    """`prompt-lookup` (this project's: the latest earlier occurrence of the longest matching n-gram)."""

    drafter = "prompt-lookup"
    scored = False


class AdedProposer(DrafterProposer):
    """`aded`: the tri-gram store (bundled for the target's tokenizer by default) adapted per request; chains."""

    drafter = "aded"
    # 16 search iterations, not 150: a chain is the most visited path, and 16 found as many accepted tokens in a
    # replay of GSM8K-100 at batch 1 and 8 (11351 vs 11449; 7655 with 12 vs 7684) at a third of the time (batch 32:
    # 4.8 vs 8 ms a step); docs/scale.md
    # suffix off: the proposer's figures (docs/scale.md, runs d and e) were measured with tri-gram chains only;
    # this engine's default (suffix matches first) has not been measured inside vLLM yet
    default_options = {"iterations": 16, "suffix": False}
    fixed_options = {"chain": True, "sized": False}  # chains; the batch budget sizes them


class SuffixProposer(DrafterProposer):
    """`suffix`: the longest suffix match's most frequent continuation (chains); vLLM's own `suffix` method needs
    arctic-inference, which has no wheel for this platform."""

    drafter = "suffix"
    fixed_options = {"chain": True}


PROPOSERS = {"aded": AdedProposer, "prompt-lookup": PromptLookupProposer, "suffix": SuffixProposer}


def class_path(drafter: str) -> str:
    """The `speculative_config["model"]` naming the proposer of `drafter`."""
    if drafter not in PROPOSERS:
        raise InputError(f"drafter {drafter!r} has no vLLM proposer; known: {', '.join(sorted(PROPOSERS))}")
    return f"{__name__}.{PROPOSERS[drafter].__name__}"
