"""Frozen configuration dataclasses, one per concern. Defaults are declared here once;
the CLI and the Python API read them from here."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from specdec.errors import InputError

DEFAULT_TARGET = "qwen2.5-coder-1.5b-instruct"
DEFAULT_DRAFT = "qwen2.5-coder-0.5b-instruct"


@dataclass(frozen=True)
class SamplingConfig:
    """How tokens are chosen. temperature == 0 means greedy (argmax); top-k / top-p are applied
    identically to the target (p) and the draft (q) distributions."""

    temperature: float = 0.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1.0 = off
    seed: int | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise InputError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise InputError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:  # also refuses nan
            raise InputError(f"top_p must be in (0, 1], got {self.top_p}")

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
        if self.max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


BACKENDS = ("auto", "torch", "llamacpp")
WEIGHTS = ("auto", "bf16", "int8", "int4", "int4-all")


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
        if self.backend not in BACKENDS:
            raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.weights not in WEIGHTS:
            raise InputError(f"weights must be one of {', '.join(WEIGHTS)}, got {self.weights!r}")
        if self.dtype not in ("bfloat16", "float32", "float16"):
            raise InputError(f"dtype must be bfloat16, float32 or float16, got {self.dtype!r}")
        if self.max_context < 8:
            raise InputError(f"max_context must be >= 8, got {self.max_context}")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"threads must be >= 1, got {self.threads}")
        if self.weights in ("int8", "int4", "int4-all") and self.dtype == "float16":
            raise InputError("int8/int4 weights compute in bfloat16 or float32, not float16")


@dataclass(frozen=True)
class SpecConfig:
    """Which drafter and candidate-length policy, with their options."""

    drafter: str | None = None  # None = plain decoding (no speculation)
    policy: str = "constant"
    k: int = 4  # (initial) number of draft tokens per round
    # switch speculation off while it loses time against plain decoding (specdec.engine.guard)
    guard: bool = True
    drafter_options: dict = field(default_factory=dict)
    policy_options: dict = field(default_factory=dict)

    def __hash__(self) -> int:  # dict fields; identity hashing is enough for a config object
        return id(self)


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
