"""Model runners behind one protocol (`base.Runner`), and the one place a model name becomes a runner.

    torch     PyTorch modules of the HF model, our static KV cache (bf16 / float32, or int8 / int4 weights
              built from the GGUF's codes: `quant.py`)
    llamacpp  the GGUF file through llama.cpp (llama-cpp-python)

`--backend auto` is the fastest runner installed for the model and the device, as measured
(docs/runners.md): torch with int4 weights on specdec's kernel for a zoo GGUF model where the CPU runs one of its
builds: AVX512-VNNI (the bundled 1.5B: 68 ms a token and 104 ms for an 8-row verification, against llama.cpp's 71
and 168 ms through its own llama-bench) or AVX2 (a 2-core Zen 3 EPYC: 33 ms a token and 58 ms for a 4-row
verification against llama-bench's 49 and 106; plain decoding 21.9 tok/s against llama-server's 16.0); else
llamacpp when llama-cpp-python is installed and the model has a GGUF; else torch.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from specdec.errors import InputError, ModelLoadError
from specdec.registry import Registry
from specdec.runners.base import Runner

RUNNERS: Registry[Callable[..., tuple[Runner, Any]]] = Registry("runner")


def check_backend(backend: str, flag: str = "--backend") -> None:
    """`auto` or a registered runner (specdec.runners.RUNNERS: torch, llamacpp and any plug-in's)."""
    if backend != "auto" and backend not in RUNNERS:
        raise InputError(f"{flag} must be one of auto, {', '.join(RUNNERS.names())}, got {backend!r}")


def is_runner(obj) -> bool:
    """Whether `obj` is a runner (the Runner protocol, declared in runners/base.py) rather than an HF model."""
    return isinstance(obj, Runner)


def _gguf_of(name: str, cache_dir) -> Path | None:
    """The GGUF behind a zoo name or a .gguf path, else None."""
    from specdec.zoo import ZOO
    from specdec.zoo.load import gguf_path

    if name.endswith(".gguf"):
        p = Path(name).expanduser()
        if not p.is_file():
            raise ModelLoadError(f"no such GGUF file: {p}")
        return p
    if name in ZOO and ZOO[name].fmt == "gguf":
        return gguf_path(name, cache_dir)
    return None


def resolve_backend(engine, name: str) -> str:
    """The runner `engine.backend` means for model `name` ("auto": see the module docstring)."""
    from specdec.runners import llamacpp_runner
    from specdec.weights import kernels
    from specdec.zoo import ZOO

    b = engine.backend
    if b != "auto":
        return b
    zoo_gguf = name in ZOO and ZOO[name].fmt == "gguf"
    if name.endswith(".gguf"):
        return "llamacpp"
    cpu_bf16 = engine.device == "cpu" and engine.dtype == "bfloat16"
    if zoo_gguf and cpu_bf16 and kernels.on_kernel(kernels.mode()):
        return "torch"  # int4 on our kernel, either build (resolve_weights)
    if (llamacpp_runner.available() and zoo_gguf and cpu_bf16 and engine.exact_query_len is None
            and engine.weights in ("auto", "int4")):
        return "llamacpp"
    return "torch"


def resolve_weights(engine, name: str) -> str:
    """The torch runner's weights: "auto" is int4 for a zoo GGUF model in bf16, else the dtype as is."""
    from specdec.zoo import ZOO

    if engine.weights != "auto":
        return engine.weights
    if name in ZOO and ZOO[name].fmt == "gguf" and engine.dtype == "bfloat16" and engine.device == "cpu":
        return "int4"
    return "bf16"


def load_runner(name: str, engine, max_context: int | None = None, load_hf=None, load_tokenizer=None):
    """(runner, tokenizer) for a zoo name, local folder, hub id or .gguf file, as `engine` says.
    `load_hf(name, engine)` / `load_tokenizer(name, engine)`: the model loaders (specdec.api's)."""
    backend = resolve_backend(engine, name)
    if max_context is not None:
        engine = replace(engine, max_context=max_context)
    return RUNNERS.get(backend)(name, engine, load_hf=load_hf, load_tokenizer=load_tokenizer)


@RUNNERS.register("torch")
def _torch(name: str, engine, load_hf=None, load_tokenizer=None):
    from specdec.runners.torch_runner import TorchRunner

    if name.endswith(".gguf"):
        raise InputError("a .gguf file runs on --backend llamacpp (the torch runner loads zoo names, HF folders "
                         "and hub ids)")
    model, tokenizer = load_hf(name, replace(engine, weights=resolve_weights(engine, name)))
    return TorchRunner(model, max_context=engine.max_context, compile=engine.compile,
                       query_len=engine.exact_query_len), tokenizer


@RUNNERS.register("llamacpp")
def _llamacpp(name: str, engine, load_hf=None, load_tokenizer=None):
    from specdec.runners.llamacpp_runner import LlamaCppRunner

    if engine.device != "cpu":
        raise InputError(f"the llamacpp runner here runs on the CPU; got --device {engine.device}")
    if engine.weights not in ("auto", "int4"):
        raise InputError(f"the llamacpp runner runs the GGUF's own weights; --weights {engine.weights} needs "
                         "--backend torch")
    gguf = _gguf_of(name, engine.cache_dir)
    if gguf is None:
        raise InputError(f"{name!r} has no GGUF file; the llamacpp runner needs a zoo GGUF model or a .gguf path "
                         "(use --backend torch)")
    tokenizer = load_tokenizer(name, engine)
    eos = _generation_eos(gguf.parent) if not name.endswith(".gguf") else ()
    runner = LlamaCppRunner(gguf, max_context=engine.max_context, threads=engine.threads,
                            query_len=engine.exact_query_len, eos_token_ids=eos)
    return runner, tokenizer


def _generation_eos(folder: Path) -> tuple[int, ...]:
    import json

    f = folder / "generation_config.json"
    if not f.is_file():
        return ()
    e = json.loads(f.read_text()).get("eos_token_id")
    return tuple([e] if isinstance(e, int) else (e or []))
