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
    fixed_options: dict[str, Any] = {}  # options the vLLM path needs (ADED: chains)
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
        self.options = {**(drafter_options() if options is None else options), **self.fixed_options}
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
        self.costs, self.calibration = StepCosts(self.budget.ema), Calibration(self.budget.prior)
        self.drafted = self.kept = 0  # tokens the drafters proposed / the budget kept
        self._clock, self._last_call, self._expected_rows = clock, None, -1
        self.steps = 0

    # ---- vLLM's hooks
    def load_model(self, *args, **kwargs) -> None:
        """vLLM calls this with the target model; a model-free drafter needs nothing from it."""

    def propose(self, sampled_token_ids: list[list[int]], num_tokens_no_spec: np.ndarray, token_ids_cpu: np.ndarray,
                slot_mappings=None, **kwargs) -> list[list[int]]:
        """One draft (a list of at most k token ids) per request row of the batch; [] where nothing is proposed."""
        now = self._clock()
        idle = self._nothing_pays(sum(1 for x in sampled_token_ids if x))
        clean, rows_before = True, 0  # the step just run: only decoding rows, the ones proposed for (timed then)
        live: list[tuple[int, _Request, Any]] = []
        out: list[list[int]] = []
        for i, sampled in enumerate(sampled_token_ids):
            n = int(num_tokens_no_spec[i])
            out.append([])
            if not sampled or n < 1:
                clean = False  # still in prefill (chunked) or nothing committed yet
                continue
            seq = np.asarray(token_ids_cpu[i, :n], dtype=np.int64)  # (n,) prompt + committed output
            req, new = self._request_for(seq, list(sampled))
            if new:
                clean = False
            else:
                rows_before += 1 + len(req.proposed)
                self.calibration.observe(req.proposed, len(sampled) - 1)
            live.append((i, req, Draft.empty() if idle else self._draft(req, seq)))
        if self._last_call is not None and clean and rows_before == self._expected_rows:
            self.costs.observe(rows_before, now - self._last_call)
        keep = self._keep([d for _, _, d in live])
        self._expected_rows = 0
        for (i, req, draft), n_keep in zip(live, keep):
            tokens = [int(t) for t in draft.tokens[0, :n_keep].tolist()]
            scores = _scores(draft, n_keep)
            out[i], req.proposed = tokens, scores
            self._expected_rows += 1 + len(tokens)
            self.drafted += min(draft.length, self.k)
            self.kept += len(tokens)
        self._last_call = now
        self.steps += 1
        if self.steps % LOG_EVERY == 0:
            _log.info("specdec %s proposer: %d steps, %d requests, kept %d of %d drafted tokens (budget %s, %s)",
                      self.drafter, self.steps, self.requests, self.kept, self.drafted, self.budget.budget,
                      self.costs.describe())
        return out

    def _budget_ready(self) -> bool:
        """The budget cuts drafts: on, past its warm-up, with a cost curve to read."""
        return self.budget.budget != "off" and self.costs.steps >= self.budget.warmup and self.costs.known

    def _nothing_pays(self, rows: int) -> bool:
        """Whether no drafted token can pay this step (then no drafter searches: at 32 requests on 2 CPU cores
        ADED's searches, about 1 ms each against a step of about 430 ms, were estimated at 7% of a step while
        nearly every token was cut). Drafters still observe."""
        if not self._budget_ready() or rows < 1:
            return False
        return first_node_threshold(rows, self.costs.line) >= self.calibration.max_p(self.scored)

    def _keep(self, drafts: list) -> list[int]:
        """Tokens kept of each draft: all of them (up to k) until the step costs are known, then the budget's."""
        full = [min(d.length, self.k) for d in drafts]
        if not self._budget_ready():
            return full
        chains = []
        for d, n in zip(drafts, full):
            scores = _scores(d, n)
            chains.append((chain_parents(n), [self.calibration.p(s, depth) for depth, s in enumerate(scores)]))
        return [len(kept) for kept in select(chains, self.costs.line)]

    # ---- one request
    def _request_for(self, seq: np.ndarray, new: list[int]) -> tuple[_Request, bool]:
        before = _key(seq[: len(seq) - len(new)])
        req = self._states.pop(before, None)
        fresh = req is None
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
