"""Fake bundled models for the zoo tests: small part files 'installed' through a patched part locator."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from specdec.zoo import ZOO, ModelSpec, Part
from specdec.zoo import convert, sources


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    """An empty cache folder, also set as $SPECDEC_CACHE so nothing touches ~/.cache."""
    c = tmp_path / "cache"
    monkeypatch.setenv("SPECDEC_CACHE", str(c))
    return c


@pytest.fixture
def installed(tmp_path: Path, monkeypatch) -> dict[str, Path]:
    """module name -> file; the patched locator finds a part only when its module is in here."""
    files: dict[str, Path] = {}
    monkeypatch.setattr(sources, "installed_path", lambda part: files.get(part.module))
    return files


@pytest.fixture
def fake_gguf(tmp_path: Path, installed, monkeypatch):
    """Register a fake GGUF model split over 3 'packages'; returns (name, parts' bytes)."""
    chunks = [b"GGUF" + bytes([i]) * (1000 + 37 * i) for i in range(3)]
    parts = []
    for i, data in enumerate(chunks, start=1):
        f = tmp_path / "site" / f"fake_part{i}" / "data" / f"part{i:02d}.bin"
        f.parent.mkdir(parents=True)
        f.write_bytes(data)
        installed[f"fake_part{i}"] = f
        parts.append(Part(f"fake-part{i}", "1.0", f"fake_part{i}", f"data/part{i:02d}.bin", len(data), sha(data)))
    whole = b"".join(chunks)
    spec = ModelSpec(name="fake-gguf", hf_id="x/fake", kind="causal-lm", source="test", parts=tuple(parts),
                     size=len(whole), sha256=sha(whole), params=1000)
    monkeypatch.setitem(ZOO, spec.name, spec)
    seen: dict[str, bytes] = {}

    def fake_build(gguf: Path, out: Path, spec, say) -> dict:
        seen["gguf"] = gguf.read_bytes()
        (out / "config.json").write_text(json.dumps({"model_type": "fake"}))
        save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, str(out / "model.safetensors"))
        return {"dtype": "bfloat16"}

    monkeypatch.setattr(convert, "build_from_gguf", fake_build)
    return spec, chunks, seen
