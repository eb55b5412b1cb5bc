"""Fixtures for the SpecDec++ tests."""
from __future__ import annotations

import pytest

import specdec  # noqa: F401  (import before `policies`)

from specdecpp_helpers import probe_head_file


@pytest.fixture
def probe_head(tmp_path):
    return str(probe_head_file(tmp_path / "probe.safetensors"))


@pytest.fixture(autouse=True)
def _fresh_costs():
    from policies.specdecpp.policy import reset_shared_costs

    reset_shared_costs()
    yield
    reset_shared_costs()
