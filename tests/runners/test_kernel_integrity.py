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
