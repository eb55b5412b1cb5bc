"""The Python API: `specdec.load(...)` then `.generate(...)` / `.stream(...)`."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import torch

from specdec.config import DEFAULT_TARGET, EngineConfig, RunConfig, SamplingConfig, SpecConfig, StopConfig, override
from specdec.drafters import DRAFTERS, DrafterEnv
from specdec.engine.loop import decode
from specdec.runners import is_runner, load_runner
from specdec.runners.torch_runner import TorchRunner
from specdec.engine.stopping import StopChecker
from specdec.errors import InputError
from specdec.prompt import Prompt, check_prompt, encode_prompt  # noqa: F401  (re-exported)
from specdec.spec_check import build_policy, check_run, check_spec
from specdec.validate import set_threads
from specdec.sampling import make_generator
from specdec.stats import GenerationStats



@dataclass
class Result:
    text: str
    token_ids: list[int]
    stats: GenerationStats
    prompt_ids: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"text": self.text, "token_ids": self.token_ids, "stats": self.stats.to_dict()}


@dataclass
class Piece:
    """A piece of streamed text. origin: "draft" (accepted draft tokens) or "target" (bonus/recovered/plain)."""

    text: str
    token_ids: list[int]
    origin: str


def load_tokenizer(name: str, engine: EngineConfig = EngineConfig()):
    """The tokenizer of a zoo name, local folder or hub id, without its model (e.g. to size a KV cache)."""
    return _load_tokenizer(name, engine)


def _load_tokenizer(name: str, engine: EngineConfig):
    from specdec.zoo.load import load_tokenizer as zoo_tokenizer

    return zoo_tokenizer(name, cache_dir=engine.cache_dir, trust_remote_code=engine.trust_remote_code)


def _load_hf(name: str, engine: EngineConfig):
    from specdec.zoo import load_causal_lm

    return load_causal_lm(
        name, dtype=engine.dtype, cache_dir=engine.cache_dir, trust_remote_code=engine.trust_remote_code,
        device=engine.device, weights=engine.weights,
    )


def load_runner_for(name: str, engine: EngineConfig, max_context: int | None = None):
    """(runner, tokenizer) of `name` as `engine` says (backend, weights): the one model loader of the API."""
    return load_runner(name, engine, max_context=max_context, load_hf=_load_hf, load_tokenizer=_load_tokenizer)


class SpecDecoder:
    """A loaded target (plus whatever drafters were asked for). Drafters and policies are built per call
    from `spec`; drafter objects (e.g. a loaded draft model) are reused, their per-generation state reset every
    call (what a drafter learns about the target, e.g. ADED's sized-tree calibration, is kept: a seeded sampled
    output repeats on a fresh SpecDecoder; greedy output never depends on the drafts).

    `model`: a runner (specdec.runners) or an HF causal LM (wrapped in the torch runner).
    `model_loader(name) -> (runner or HF model, tokenizer)` loads draft models (default: as `engine` says)."""

    def __init__(self, model, tokenizer, spec: SpecConfig = SpecConfig(), engine: EngineConfig = EngineConfig(),
                 draft: str | None = None, model_loader=None) -> None:
        set_threads(engine.threads)
        self.tokenizer = tokenizer
        self.engine = engine
        self.spec = spec
        self.target = model if is_runner(model) else TorchRunner(
            model, max_context=engine.max_context, compile=engine.compile, query_len=engine.exact_query_len)
        self._loader = model_loader or (lambda name, **over: load_runner_for(name, replace(engine, **over),
                                                                             self.target.max_context))
        self.env = DrafterEnv(tokenizer, self.target, self._load_draft, draft=draft, compile=engine.compile,
                              cache_dir=engine.cache_dir, engine=engine)
        self.say = None  # callable(str) for one-off notices (e.g. measuring this machine's costs), or None
        self.load_seconds: float | None = None  # open_run's seconds to load the target (None: built from a model)
        self._drafters: dict[tuple, Any] = {}
        self.drafter_for(spec)  # fail early on unknown names / missing draft models

    # ---- building blocks
    def _load_draft(self, name: str, **engine_overrides):
        """(runner, tokenizer) of a draft model, its cache as long as the target's; `engine_overrides`
        (e.g. weights="int4-all") change how the draft alone is run."""
        model, tok = self._loader(name, **engine_overrides) if engine_overrides else self._loader(name)
        if not is_runner(model):
            model = TorchRunner(model, max_context=self.target.max_context, compile=self.engine.compile)
        return model, tok

    def drafter_for(self, spec: SpecConfig):
        if spec.drafter in (None, "none", "plain"):
            return None
        key = (spec.drafter, tuple(sorted(spec.drafter_options.items())))
        if key not in self._drafters:
            self._drafters[key] = DRAFTERS.create(spec.drafter, env=self.env, **spec.drafter_options)
        return self._drafters[key]

    def policy_for(self, spec: SpecConfig):
        return build_policy(spec)

    def round_costs(self, drafter) -> "RoundCosts":
        """The measured costs of a round with `drafter`: the target's pass costs by row count and, for a
        draft-model drafter, its one-row pass (specdec.runners.costs; measured once per machine, cached)."""
        from policies.base import RoundCosts
        from specdec.runners.costs import pass_costs

        def costs_of(runner):  # once per runner in this process (pass_costs remembers)
            return pass_costs(runner, self.engine.cache_dir, say=self.say)

        runner = drafter.runner  # declared by the Drafter protocol (None: a model-free drafter)
        return RoundCosts(costs_of(self.target), costs_of(runner)(1) if runner is not None else 0.0)

    def encode(self, prompt: Prompt, chat: bool | None = None) -> torch.Tensor:
        """str (raw text, or a user turn if chat) or a list of {"role", "content"} messages -> ids (1, T)."""
        return torch.tensor([encode_prompt(self.tokenizer, prompt, chat)])

    def eos_ids(self) -> set[int]:
        """The tokenizer's EOS and the model's own (generation config / GGUF) end-of-generation tokens."""
        from specdec.zoo.load import eos_token_ids

        return set(eos_token_ids(self.tokenizer, extra=self.target.eos_token_ids))

    # ---- public API
    def stream_ids(self, prompt_ids: torch.Tensor, *, sampling: SamplingConfig = SamplingConfig(),
                   stop: StopConfig = StopConfig(), spec: SpecConfig | None = None, stats: GenerationStats | None = None):
        spec = spec or self.spec
        eos = set(stop.eos_token_ids) if stop.eos_token_ids is not None else self.eos_ids()
        stopper = StopChecker(stop.max_new_tokens, set() if stop.ignore_eos else eos, stop.stop_strings,
                              lambda ids: self.tokenizer.decode(ids, skip_special_tokens=True))
        stats = stats if stats is not None else GenerationStats()
        gen = make_generator(sampling)
        drafter = self.drafter_for(spec)
        costs = self.round_costs(drafter) if drafter is not None else None
        return decode(self.target, prompt_ids, stopper, sampling, drafter, self.policy_for(spec), stats, gen,
                      costs=costs, guard=spec.guard)

    def generate_ids(self, prompt_ids: torch.Tensor, *, sampling: SamplingConfig = SamplingConfig(),
                     stop: StopConfig = StopConfig(), spec: SpecConfig | None = None,
                     stats: GenerationStats | None = None) -> list[int]:
        """The generated token ids after `prompt_ids` (1, T); `stats`, when given, is filled."""
        return [t for rnd in self.stream_ids(prompt_ids, sampling=sampling, stop=stop, spec=spec, stats=stats)
                for t in rnd.tokens]

    def generate(self, prompt: Prompt, *, chat: bool | None = None, sampling: SamplingConfig | None = None,
                 stop: StopConfig | None = None, spec: SpecConfig | None = None, **overrides) -> Result:
        """Generate a continuation. `overrides` are fields of SamplingConfig / StopConfig / SpecConfig
        (temperature=, top_p=, seed=, max_new_tokens=, stop_strings=, drafter=, policy=, k=, ...)."""
        sampling, stop, spec = self._configs(sampling, stop, spec, overrides)
        ids = self.encode(prompt, chat)
        stats = GenerationStats()
        out = self.generate_ids(ids, sampling=sampling, stop=stop, spec=spec, stats=stats)
        text = self.tokenizer.decode(out, skip_special_tokens=True)
        return Result(text=text, token_ids=out, stats=stats, prompt_ids=ids[0].tolist())

    def stream(self, prompt: Prompt, *, chat: bool | None = None, sampling: SamplingConfig | None = None,
               stop: StopConfig | None = None, spec: SpecConfig | None = None, stats: GenerationStats | None = None,
               **overrides) -> Iterator[Piece]:
        """Yield text pieces as rounds are committed, each tagged with its origin."""
        sampling, stop, spec = self._configs(sampling, stop, spec, overrides)
        ids = self.encode(prompt, chat)
        out: list[int] = []
        shown = ""
        dec = lambda toks: self.tokenizer.decode(toks, skip_special_tokens=True)  # noqa: E731
        for rnd in self.stream_ids(ids, sampling=sampling, stop=stop, spec=spec, stats=stats):
            parts = [(rnd.tokens[: rnd.num_accepted], "draft"), (rnd.tokens[rnd.num_accepted:], "target")]
            for toks, origin in parts:
                if not toks:
                    continue
                out += toks
                text = dec(out)
                if text.endswith("\ufffd"):  # an incomplete UTF-8 sequence: wait for the next token
                    continue
                yield Piece(text[len(shown):], toks, origin)
                shown = text

    def _configs(self, sampling, stop, spec, overrides):
        for name, cfg, cls in (("sampling", sampling, SamplingConfig), ("stop", stop, StopConfig), ("spec", spec, SpecConfig)):
            if cfg is not None and not isinstance(cfg, cls):
                raise InputError(f"{name} must be a {cls.__name__}, got {type(cfg).__name__}")
        spec = spec or self.spec
        sampling, stop, new_spec = override((sampling or SamplingConfig(), stop or StopConfig(), spec), overrides)
        if new_spec is not spec:
            check_spec(new_spec)  # a drafter or policy changed per call: checked before it runs
        return sampling, stop, new_spec


def load(target: str = DEFAULT_TARGET, draft: str | None = None, *, spec: SpecConfig | None = None,
         engine: EngineConfig | None = None, **options) -> SpecDecoder:
    """Load a target (zoo name, local folder or hub id) and, optionally, a draft model, with the speculative
    setup `spec` and the runner settings `engine`, each taken whole. `options` are single fields of
    SpecConfig (drafter=, policy=, k=, guard=, drafter_options=, policy_options=) or EngineConfig (dtype=,
    backend=, weights=, max_context=, ...) applied over them. With `draft` and no drafter named anywhere, the
    drafter is "draft-model". Everything is checked (`check_run`) before the first model loads."""
    if spec is None and "drafter" not in options and draft is not None:
        options = {**options, "drafter": "draft-model"}
    spec, engine = override((spec or SpecConfig(), engine or EngineConfig()), options, "load option")
    return load_run(RunConfig(target=target, draft=draft, spec=spec, engine=engine, stop=None))


def load_run(run: RunConfig) -> SpecDecoder:
    """Load what `run` names (its sampling and stop settings are the caller's to pass to generate)."""
    if not isinstance(run, RunConfig):
        raise InputError(f"load_run takes a RunConfig, got {type(run).__name__}")
    check_run(run)
    return open_run(run)


def open_run(run: RunConfig) -> SpecDecoder:
    """`load_run` without its checks, for callers that ran `check_run` on this run before (bench and eval check
    once, before reading any prompt, then load per runner group)."""
    t0 = time.perf_counter()
    runner, tokenizer = load_runner_for(run.target, run.engine)
    dec = SpecDecoder(runner, tokenizer, spec=run.spec, engine=run.engine, draft=run.draft)
    dec.load_seconds = time.perf_counter() - t0
    return dec
