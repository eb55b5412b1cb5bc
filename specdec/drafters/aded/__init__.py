"""ADED (Liu et al., AAAI 2025): a model-free drafter. A tri-gram store approximates the target's next
token, adapts online to what is generated, and a PUCT tree search over it drafts a token tree."""
from specdec.drafters.aded.config import AdedConfig
from specdec.drafters.aded.drafter import AdedDrafter
from specdec.drafters.aded.search import SearchResult
from specdec.drafters.aded.store import TrigramStore, tokenizer_fingerprint

__all__ = ["AdedConfig", "AdedDrafter", "SearchResult", "TrigramStore", "tokenizer_fingerprint"]
