"""The compiled kernel in the (possibly shared) model cache is loaded only if it is the library this project
built: its sha256 is recorded at build time and checked before every load, as for model weights."""
from __future__ import annotations

import hashlib

import pytest

from specdec.errors import ModelLoadError
from specdec.weights import kernels


def test_a_changed_library_is_refused_and_an_unrecorded_one_rebuilt(tmp_path):
    so, stamp = tmp_path / f"{kernels.NAME}.so", tmp_path / f"{kernels.NAME}.so.sha256"
    so.write_bytes(b"\x7fELF built by us")
    kernels._record_built(tmp_path)
    assert stamp.read_text().strip() == hashlib.sha256(so.read_bytes()).hexdigest()
    kernels._check_built(tmp_path)  # unchanged: loads
    so.write_bytes(b"\x7fELF swapped by someone else")
    with pytest.raises(ModelLoadError, match="changed since it was built.*not loaded"):
        kernels._check_built(tmp_path)
    stamp.unlink()  # no record (an older build, or not ours): removed, so the load rebuilds it
    kernels._check_built(tmp_path)
    assert not so.exists()


def test_each_checkout_builds_in_its_own_folder(monkeypatch, tmp_path):
    """Two checkouts sharing a cache used to share one build folder: torch relinked the library for the other
    path, and the recorded sha256 then refused it. The folder now depends on the source's path too."""
    first = kernels.build_dir(tmp_path)
    other = tmp_path / "other" / "qmatmul.cpp"
    other.parent.mkdir()
    other.write_bytes(kernels.SOURCE.read_bytes())
    other.with_name(kernels.GLUE).write_bytes(kernels.SOURCE.with_name(kernels.GLUE).read_bytes())
    monkeypatch.setattr(kernels, "SOURCE", other)
    assert kernels.build_dir(tmp_path) != first


def test_the_shared_header_is_part_of_each_builds_key(monkeypatch, tmp_path):
    """glue.h (rope_write, forward_layers) is compiled into both builds: a change to it must rebuild each."""
    src = tmp_path / "src"
    src.mkdir()
    for name in (kernels.SOURCE.name, kernels.SOURCE_AVX2.name, kernels.GLUE):
        (src / name).write_bytes(kernels.SOURCE.with_name(name).read_bytes())
    monkeypatch.setattr(kernels, "SOURCE", src / kernels.SOURCE.name)
    monkeypatch.setattr(kernels, "SOURCE_AVX2", src / kernels.SOURCE_AVX2.name)
    before = (kernels.build_dir(tmp_path), kernels.build_dir(tmp_path, avx2=True))
    (src / kernels.GLUE).write_text((src / kernels.GLUE).read_text() + "// changed\n")
    after = (kernels.build_dir(tmp_path), kernels.build_dir(tmp_path, avx2=True))
    assert before[0] != after[0] and before[1] != after[1]
