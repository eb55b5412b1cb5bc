"""The drafter registry. A factory takes a `DrafterEnv` (what it may need from the engine) plus its options."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from specdec.drafters.base import Drafter
from specdec.registry import Registry

DRAFTERS: Registry[Drafter] = Registry("drafter", plugins="specdec.drafters")  # e.g. `mlm` (mlm_generate)


@dataclass
class DrafterEnv:
    """Resources a drafter factory may use: the target's tokenizer and runner, a model loader, settings."""

    target_tokenizer: Any
    target_runner: Any  # a specdec.runners.base.Runner
    load_model: Callable[[str], tuple[Any, Any]]  # name/path -> (Runner with the target's max_context, tokenizer)
    draft: str | None = None  # draft model name given to load()
    compile: bool = False
    cache_dir: str | None = None
    engine: Any = None  # the target's specdec.config.EngineConfig (drafters that load models follow it)
