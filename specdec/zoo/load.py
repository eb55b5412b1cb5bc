"""Resolving a zoo name, local folder or hub id, checking it before anything loads, and loading a model and its
tokenizer (bf16, or int8 / int4 weights packed from a zoo GGUF's codes) with one actionable line per failure."""
from __future__ import annotations

import difflib
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from specdec.errors import InputError, ModelLoadError
import specdec.zoo.convert as convert
from specdec.zoo.catalog import CAUSAL_LM, MASKED_LM, ZOO
from specdec.zoo.store import GGUF_FILE, PathLike, _console, check_cached, get_spec, model_path, pull


def _looks_like_path(s: str) -> bool:
    return s.startswith((".", "/", "~")) or s.count("/") > 1 or os.sep != "/" and os.sep in s


def resolve(name_or_path: PathLike, cache_dir: PathLike | None = None, pull_if_missing: bool = True) -> str:
    """Zoo name -> its cached folder (pulled if needed); local folder -> itself; else -> unchanged (hub id)."""
    s = os.fspath(name_or_path)
    if s in ZOO:
        folder = model_path(s, cache_dir)
        if folder is None:
            if not pull_if_missing:
                raise ModelLoadError(f"{s} is not pulled yet; run `specdec models pull {s}`")
            folder = pull(s, cache_dir)
        check_cached(s, folder)
        return str(folder)
    path = Path(s).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path} has no config.json: not a Hugging Face model folder "
                                 f"(expected config.json, *.safetensors and the tokenizer files)")
        return str(path)
    if path.exists():
        raise ModelLoadError(f"{path} is a file; pass the folder that holds config.json and the weights")
    if _looks_like_path(s):
        raise ModelLoadError(f"no such folder: {path}")
    return s


def check_model_name(name_or_path: PathLike, cache_dir: PathLike | None = None, role: str = "model") -> None:
    """Fail now, before anything loads, for a name that cannot be loaded: a zoo name passes (it is pulled when
    loaded), a local folder must look like a model, and a hub id must be in the local HF cache when the hub is
    unreachable. Why: an unknown --draft used to be reported only after the target had loaded (10 s to minutes)."""
    s = os.fspath(name_or_path)
    if s in ZOO:
        return
    try:
        where = resolve(s, cache_dir, pull_if_missing=False)
    except ModelLoadError as e:
        raise ModelLoadError(f"{role}: {e}") from None
    if Path(where).is_dir() or hub_reachable():
        return
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(s, "config.json")
    except Exception:  # noqa: BLE001 - a malformed repo id is not in the cache either
        cached = None
    if not isinstance(cached, str):
        raise ModelLoadError(f"{role}: " + _load_error(s, where, "causal-lm", True, False, FileNotFoundError()))


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connect (False when HF_HUB_OFFLINE is set)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _short(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:200] if lines else ''}"


def _dtype(dtype: str):
    import torch

    if dtype == "auto":
        return "auto"
    if dtype not in ("bfloat16", "float32", "float16"):
        raise InputError(f"dtype must be bfloat16, float32, float16 or auto, got {dtype!r}")
    return getattr(torch, dtype)


def _locate(s: str, cache_dir) -> tuple[str, bool, bool]:
    """(where to load from, is it a hub id, can the hub be reached) for a zoo name, local folder or hub id."""
    where = resolve(s, cache_dir)
    hub = s not in ZOO and not Path(where).is_dir()
    return where, hub, hub_reachable() if hub else True


def _load_error(s: str, where: str, kind: str, hub: bool, online: bool, e: BaseException) -> str:
    if s in ZOO:
        return f"the cached copy of {s} at {where} is unreadable ({_short(e)}); run `specdec models pull {s} --force`"
    if not hub:
        return f"could not load {kind} model from folder {where} ({_short(e)})"
    close = difflib.get_close_matches(s.lower(), list(ZOO), n=1, cutoff=0.5)
    close += [n for n, sp in ZOO.items() if sp.hf_id.lower() == s.lower()]
    hint = f"; did you mean the zoo's {close[-1]!r}?" if close else ""
    why = _short(e) if online else "the Hugging Face hub is unreachable (offline) and it is not in the local HF cache"
    return f"{s!r} is neither a zoo model ({', '.join(ZOO)}) nor a local folder, and {why}{hint}"


def load_tokenizer(name_or_path: PathLike, cache_dir: PathLike | None = None, trust_remote_code: bool = False):
    """The tokenizer alone (zoo name, local folder or hub id), with the same errors as the model loaders."""
    from transformers import AutoTokenizer

    s = os.fspath(name_or_path)
    where, hub, online = _locate(s, cache_dir)
    try:
        return AutoTokenizer.from_pretrained(where, trust_remote_code=trust_remote_code, local_files_only=not online)
    except Exception as e:  # noqa: BLE001 - one actionable line
        raise ModelLoadError(_load_error(s, where, "causal-lm", hub, online, e)) from None


def _load(kind: str, name_or_path: PathLike, dtype: str, cache_dir, trust_remote_code: bool, device: str):
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    s = os.fspath(name_or_path)
    if s in ZOO and ZOO[s].kind != kind:
        other = "load_masked_lm" if ZOO[s].kind == MASKED_LM else "load_causal_lm"
        raise ModelLoadError(f"{s} is a {ZOO[s].kind} model; load it with {other}")
    torch_dtype = _dtype(dtype)
    where, hub, online = _locate(s, cache_dir)
    cls = AutoModelForCausalLM if kind == CAUSAL_LM else AutoModelForMaskedLM
    kw = dict(trust_remote_code=trust_remote_code, local_files_only=not online)
    try:
        with convert.quiet_transformers():  # no tqdm bar of transformers' own for a load of a few seconds
            model = cls.from_pretrained(where, dtype=torch_dtype, use_safetensors=True, **kw)
            tok = AutoTokenizer.from_pretrained(where, **kw)
    except Exception as e:  # noqa: BLE001 - turned into one actionable line below
        raise ModelLoadError(_load_error(s, where, kind, hub, online, e)) from None
    return model.to(device).eval(), tok


def load_causal_lm(name_or_path: PathLike, dtype: str = "bfloat16", cache_dir: PathLike | None = None,
                   trust_remote_code: bool = False, device: str = "cpu", weights: str = "bf16", say=None):
    """``(model, tokenizer)`` for a zoo name, a local folder or a hub id; the model in eval mode.
    weights int8 / int4 (CPU): linear layers quantized (specdec.weights.quant) -- a zoo GGUF model's from
    the GGUF's codes, packed once and cached next to the bf16 copy; any other model's by round-to-nearest."""
    from specdec.weights import quant

    if weights in ("auto", "bf16") or weights == str(dtype).removeprefix("torch."):
        return _load(CAUSAL_LM, name_or_path, dtype, cache_dir, trust_remote_code, device)
    quant.check_weights(weights)
    if device != "cpu":
        raise InputError(f"--weights {weights} runs on the CPU kernels only; got device {device}")
    model, tok = _load(CAUSAL_LM, name_or_path, dtype, cache_dir, trust_remote_code, device)
    s = os.fspath(name_or_path)
    say = say or (lambda msg: _console(True).print(msg, markup=False, highlight=False))
    from specdec.weights import kernels

    hint = kernels.slow_path_hint()
    if hint:
        say(f"{s}: {hint}")
    if s in ZOO and ZOO[s].fmt == "gguf" and dtype == "bfloat16":
        from specdec.zoo.packed import ensure_packed, load_packed

        tensors = load_packed(ensure_packed(s, Path(resolve(s, cache_dir)), weights, cache_dir, say))
    else:
        tensors = quant.quantize_from_weights(model, weights)
    model = quant.quantize_model(model, tensors)
    quant.fuse_projections(model)
    quant.to_hugepages(model)
    quant.compute_in_float32(model)
    return model, tok


def load_masked_lm(name_or_path: PathLike, dtype: str = "bfloat16", cache_dir: PathLike | None = None,
                   trust_remote_code: bool = False, device: str = "cpu"):
    """Like :func:`load_causal_lm`, with ``AutoModelForMaskedLM``."""
    return _load(MASKED_LM, name_or_path, dtype, cache_dir, trust_remote_code, device)


def gguf_path(name: str, cache_dir: PathLike | None = None) -> Path | None:
    """The GGUF file of a pulled GGUF zoo model (pulled now if needed); None for a model that has none."""
    spec = get_spec(name)
    if spec.fmt != "gguf":
        return None
    folder = Path(resolve(name, cache_dir))
    path = folder / GGUF_FILE
    if not path.is_file():
        raise ModelLoadError(f"{name} was pulled by an older specdec without its GGUF file; run "
                             f"`specdec models pull {name} --force`")
    return path


def eos_token_ids(tokenizer, model=None, extra=()) -> list[int]:
    """Every end-of-generation token: the tokenizer's EOS, an HF model's generation config's, and `extra` (a
    runner's own, e.g. from a GGUF). The one place they are gathered (API, bench, head data)."""
    ids = {int(i) for i in extra}
    if getattr(tokenizer, "eos_token_id", None) is not None:
        ids.add(int(tokenizer.eos_token_id))
    e = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if e is not None:
        ids.update(int(x) for x in ([e] if isinstance(e, int) else e))
    return sorted(ids)
