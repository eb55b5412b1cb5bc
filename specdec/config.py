"""Frozen configuration dataclasses, one per concern. Defaults are declared here once;
the CLI and the Python API read them from here."""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, replace

from specdec.errors import InputError, UnknownOptionError

DEFAULT_TARGET = "qwen2.5-coder-1.5b-instruct"
DEFAULT_DRAFT = "qwen2.5-coder-0.5b-instruct"
MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed's range


def whole(value, what: str, low: int | None = None, high: int | None = None) -> int:
    """`value` as an int (a bool, float or string is refused) within [low, high]; else one line naming `what`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{what} must be a whole number, got {value!r}")
    if low is not None and value < low:
        raise InputError(f"{what} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise InputError(f"{what} must be <= {high}, got {value}")
    return value


def number(value, what: str) -> float:
    """`value` as a finite real number (an int or float, not a bool or string); else one line naming `what`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{what} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class SamplingConfig:
    """How tokens are chosen. temperature == 0 means greedy (argmax); top-k / top-p are applied
    identically to the target (p) and the draft (q) distributions."""

    temperature: float = 0.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1.0 = off
    seed: int | None = None

    def __post_init__(self) -> None:
        if number(self.temperature, "temperature") < 0:
            raise InputError(f"temperature must be a finite number >= 0, got {self.temperature!r}")
        whole(self.top_k, "top_k", low=0)
        if not 0.0 < number(self.top_p, "top_p") <= 1.0:
            raise InputError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.seed is not None:
            whole(self.seed, "seed", low=0, high=MAX_SEED)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True)
class StopConfig:
    """When generation ends: exactly as plain decoding would."""

    max_new_tokens: int = 128
    stop_strings: tuple[str, ...] = ()
    eos_token_ids: tuple[int, ...] | None = None  # None = the tokenizer's / generation config's EOS
    ignore_eos: bool = False

    def __post_init__(self) -> None:
        whole(self.max_new_tokens, "max_new_tokens", low=1)
        if isinstance(self.stop_strings, str) or not all(isinstance(s, str) and s for s in self.stop_strings):
            raise InputError(f"stop strings must be a list of non-empty strings, got {self.stop_strings!r}")
        if self.eos_token_ids is not None and not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0
                                                      for i in self.eos_token_ids):
            raise InputError(f"eos_token_ids must be token ids (whole numbers >= 0), got {self.eos_token_ids!r}")


BACKENDS = ("auto", "torch", "llamacpp")  # the built-in runners; plug-ins add theirs to specdec.runners.RUNNERS
WEIGHTS = ("auto", "bf16", "int8", "int4", "int4-all")
MAX_PASS_ROWS = 128  # the longest pass a runner pads to (specdec.runners.torch_runner.BUCKETS)


@dataclass(frozen=True)
class EngineConfig:
    """How models are run."""

    # runner (specdec.runners): auto = llamacpp when llama-cpp-python is installed and the model has a GGUF
    # (CPU, bf16, fast mode), else torch
    backend: str = "auto"
    # torch runner weights: auto = int4 for a zoo GGUF model in bf16 on the CPU (built from the GGUF's codes),
    # else the dtype's; bf16 | int8 | int4
    weights: str = "auto"
    dtype: str = "bfloat16"  # bfloat16 | float32 | float16
    compile: bool = False  # torch.compile decode/verify steps (inductor freezing); warm-up ~1 min per shape
    max_context: int = 2048  # KV cache length (prompt + generated + draft)
    # bit-exact mode: every target decode/verify pass is padded to this many query rows (and attends over the
    # whole cache), so a token's logits never depend on how many tokens shared its pass; greedy speculative
    # chain output is then bit-identical to plain decoding in the same mode, in bf16 too (tree drafts: up to
    # near-ties, their ancestors sit at other cache slots). Drafts are capped to
    # exact_query_len - 1 tokens. None = fast mode (shapes fit each pass; near-ties may flip in bf16).
    exact_query_len: int | None = None
    threads: int | None = None  # torch threads; None = torch default
    device: str = "cpu"
    trust_remote_code: bool = False
    cache_dir: str | None = None  # model zoo cache; None = $SPECDEC_CACHE or the user cache dir

    def __post_init__(self) -> None:
        if not isinstance(self.backend, str) or not self.backend.strip():
            raise InputError(f"backend must be a runner name, got {self.backend!r}")  # known names: check_backend
        if self.weights not in WEIGHTS:
            raise InputError(f"weights must be one of {', '.join(WEIGHTS)}, got {self.weights!r}")
        if self.dtype not in ("bfloat16", "float32", "float16"):
            raise InputError(f"dtype must be bfloat16, float32 or float16, got {self.dtype!r}")
        if not isinstance(self.device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise InputError(f"--device must be cpu, cuda or cuda:N, got {self.device!r}")
        whole(self.max_context, "max_context", low=8)
        if self.threads is not None:
            whole(self.threads, "threads", low=1)
        if self.exact_query_len is not None:
            whole(self.exact_query_len, "--exact-len (rows of every pass)", low=1, high=min(MAX_PASS_ROWS, self.max_context // 2))
        if self.weights in ("int8", "int4", "int4-all") and self.dtype == "float16":
            raise InputError("int8/int4 weights compute in bfloat16 or float32, not float16")


DEFAULT_K = 4  # draft tokens per round where neither -k nor the policy says

@dataclass(frozen=True)
class SpecConfig:
    """Which drafter and candidate-length policy, with their options."""

    drafter: str | None = None  # None = plain decoding (no speculation)
    policy: str = "constant"
    # draft tokens per round: the first (or fixed) length of policies with a `k`, the longest draft (k_max) of
    # those without (specdecpp); None = DEFAULT_K, or the policy's own longest draft
    k: int | None = None
    # switch speculation off while it loses time against plain decoding (specdec.engine.guard)
    guard: bool = True
    drafter_options: dict = field(default_factory=dict)
    policy_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.drafter is not None and (not isinstance(self.drafter, str) or not self.drafter.strip()):
            raise InputError(f"drafter must be a drafter name (or None for plain decoding), got {self.drafter!r}")
        if self.drafter in ("none", "plain"):
            object.__setattr__(self, "drafter", None)
        if not isinstance(self.policy, str) or not self.policy.strip():
            raise InputError(f"policy must be a policy name, got {self.policy!r}")
        if self.k is not None and (isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1):
            raise InputError(f"-k (draft tokens per round) must be >= 1, got {self.k!r} (k must be a whole number >= 1)")
        if not isinstance(self.guard, bool):
            raise InputError(f"guard must be true or false, got {self.guard!r}")
        for name in ("drafter_options", "policy_options"):
            opts = getattr(self, name)
            if not isinstance(opts, dict) or not all(isinstance(k, str) for k in opts):
                raise InputError(f"{name} must be a dict of option names to values, got {opts!r}")

    def __hash__(self) -> int:  # dict fields; identity hashing is enough for a config object
        return id(self)


@dataclass(frozen=True)
class RunConfig:
    """One run, whole: which models, which speculation, how models run, how tokens are chosen, when to stop.
    The CLI builds it once from its options (specdec.cli.options), `specdec.load`, bench and eval take it
    whole, and `specdec.spec_check.check_run` validates all of it before any model loads."""

    target: str = DEFAULT_TARGET
    draft: str | None = None
    spec: SpecConfig = field(default_factory=SpecConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    stop: StopConfig | None = field(default_factory=StopConfig)  # None: per call (the API's load)

    def __post_init__(self) -> None:
        if not isinstance(self.target, str) or not self.target.strip():
            raise InputError(f"target must be a model name, folder or hub id, got {self.target!r}")
        if self.draft is not None and (not isinstance(self.draft, str) or not self.draft.strip()):
            raise InputError(f"draft must be a model name, folder or hub id, got {self.draft!r}")
        for name, cls in (("spec", SpecConfig), ("engine", EngineConfig), ("sampling", SamplingConfig),
                          ("stop", StopConfig)):
            if not isinstance(getattr(self, name), cls) and not (name == "stop" and self.stop is None):
                raise InputError(f"{name} must be a {cls.__name__}, got {type(getattr(self, name)).__name__}")

    def to_dict(self) -> dict:
        return {"target": self.target, "draft": self.draft, "engine": asdict(self.engine), "spec": asdict(self.spec),
                "sampling": asdict(self.sampling), "stop": asdict(self.stop) if self.stop is not None else None}


def override(configs: tuple, options: dict, what: str = "option") -> tuple:
    """`configs` (frozen dataclasses) with `options` applied, each key to the first config that has that field;
    a list becomes a tuple, a lone string for `stop_strings` a 1-tuple. An unknown key is one InputError
    naming the known ones. The one place keyword options of the API meet the config objects."""
    out = list(configs)
    for key, val in options.items():
        if key == "stop_strings" and isinstance(val, str):
            val = (val,)
        for i, cfg in enumerate(out):
            if key in cfg.__dataclass_fields__:
                out[i] = replace(cfg, **{key: tuple(val) if isinstance(val, list) else val})
                break
        else:
            known = sorted(f for cfg in configs for f in cfg.__dataclass_fields__)
            raise UnknownOptionError(f"unknown {what} {key!r}; known: {', '.join(known)}")
    return tuple(out)


def parse_kv(items: list[str] | None, flag: str) -> dict:
    """["threshold=0.3", "name=x"] -> {"threshold": 0.3, "name": "x"}; values parsed as JSON when they can be."""
    opts = {}
    for item in items or []:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise InputError(f"{flag} {item!r}: expected KEY=VALUE")
        try:
            val = json.loads(raw)
        except json.JSONDecodeError:
            val = {"True": True, "False": False, "None": None}.get(raw, raw)
        opts[key.strip().replace("-", "_")] = val
    return opts
