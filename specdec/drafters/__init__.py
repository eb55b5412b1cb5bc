"""Drafters: every source of candidate tokens, behind one protocol (see base.py)."""
from specdec.drafters.base import Draft, DraftContext, Drafter, DrafterBase, DraftTree, VerifyResult
from specdec.drafters.registry import DRAFTERS, DrafterEnv
from specdec.drafters import draft_model as _draft_model  # noqa: F401  (registers "draft-model")
from specdec.drafters import prompt_lookup as _prompt_lookup  # noqa: F401  (registers "prompt-lookup")
from specdec.drafters import aded as _aded  # noqa: F401  (registers "aded")
from specdec.drafters import hybrid as _hybrid  # noqa: F401  (registers "hybrid")
from specdec.drafters import suffix as _suffix  # noqa: F401  (registers "suffix")

__all__ = ["DRAFTERS", "Draft", "DraftContext", "Drafter", "DrafterBase", "DrafterEnv", "DraftTree", "VerifyResult"]
# Plug-ins (the masked-LM drafter `mlm`, from mlm_generate) register themselves through the
# "specdec.drafters" entry-point group when the registry is first asked for a name (specdec.registry).
