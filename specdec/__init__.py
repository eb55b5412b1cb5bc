"""specdec: lossless speculative decoding.

    import specdec
    dec = specdec.load("qwen2.5-coder-1.5b-instruct", draft="qwen2.5-coder-0.5b-instruct")
    res = dec.generate("Write a haiku about caches.", max_new_tokens=64)
    print(res.text, res.stats.summary())

Exports are loaded lazily (PEP 562), so `import policies` or `import specdec.zoo` do not pull in the whole
engine, and the packages can be imported in any order.
"""
from importlib import import_module

_EXPORTS = {
    "load": "specdec.api", "load_run": "specdec.api", "SpecDecoder": "specdec.api", "Result": "specdec.api", "Piece": "specdec.api",
    "verify": "specdec.verify", "GenerationStats": "specdec.stats",
    "EngineConfig": "specdec.config", "SamplingConfig": "specdec.config", "SpecConfig": "specdec.config",
    "StopConfig": "specdec.config", "RunConfig": "specdec.config",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'specdec' has no attribute {name!r}")
