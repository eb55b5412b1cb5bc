"""Tiny random models behind `specdec.api._load_hf` (the one place models get loaded), by name."""
from __future__ import annotations

import pytest

import specdec.api
from specdec.errors import ModelLoadError


@pytest.fixture
def tiny_zoo(monkeypatch, target_model, draft_model, tokenizer):
    """Names: tiny-target, tiny-draft (a noisy copy of the target), tiny-self (the target again)."""
    models = {"tiny-target": target_model, "tiny-draft": draft_model, "tiny-self": target_model}
    loaded: list[str] = []

    def fake_load(name, engine):
        if name not in models:
            raise ModelLoadError(f"no tiny model {name!r}; known: {', '.join(models)}")
        loaded.append(name)
        return models[name], tokenizer

    monkeypatch.setattr(specdec.api, "_load_hf", fake_load)
    return loaded
