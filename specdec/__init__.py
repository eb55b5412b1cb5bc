"""specdec: lossless speculative decoding.

    import specdec
    dec = specdec.load("qwen2.5-coder-1.5b-instruct", draft="qwen2.5-coder-0.5b-instruct")
    res = dec.generate("Write a haiku about caches.", max_new_tokens=64)
    print(res.text, res.stats.summary())
"""
from specdec.api import Piece, Result, SpecDecoder, load
from specdec.config import EngineConfig, SamplingConfig, SpecConfig, StopConfig
from specdec.stats import GenerationStats
from specdec.verify import verify

__all__ = ["load", "SpecDecoder", "Result", "Piece", "verify", "GenerationStats",
           "EngineConfig", "SamplingConfig", "SpecConfig", "StopConfig"]
__version__ = "0.1.0"
