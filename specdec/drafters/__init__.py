"""Drafters: every source of candidate tokens, behind one protocol (see base.py)."""
from specdec.drafters.base import Draft, DraftContext, Drafter, DraftTree, VerifyResult
from specdec.drafters.registry import DRAFTERS, DrafterEnv
from specdec.drafters import draft_model as _draft_model  # noqa: F401  (registers "draft-model")
from specdec.drafters import prompt_lookup as _prompt_lookup  # noqa: F401  (registers "prompt-lookup")
from specdec.drafters import aded as _aded  # noqa: F401  (registers "aded")
from specdec.drafters import hybrid as _hybrid  # noqa: F401  (registers "hybrid")

__all__ = ["DRAFTERS", "Draft", "DraftContext", "Drafter", "DrafterEnv", "DraftTree", "VerifyResult"]

try:  # the masked-LM drafter lives in mlm_generate (it imports this package, so register it last)
    from mlm_generate import drafter as _mlm_drafter  # noqa: F401  (registers "mlm")
except ImportError as exc:  # pragma: no cover - only when mlm_generate is not installed
    if exc.name != "mlm_generate":
        raise
