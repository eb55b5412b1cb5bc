"""Fixtures for the evaluation tests (helpers in evalhelpers.py)."""
from __future__ import annotations

import pytest
import torch

from evalhelpers import byte_tokenizer, tiny_model, write_gsm8k, write_mmlu


@pytest.fixture(scope="session")
def btok():
    return byte_tokenizer()


@pytest.fixture(scope="session")
def bmodel(btok):
    return tiny_model(len(btok))


@pytest.fixture()
def decoder(bmodel, btok):
    from specdec.api import SpecDecoder
    from specdec.config import EngineConfig

    torch.set_num_threads(1)
    return SpecDecoder(bmodel, btok, engine=EngineConfig(dtype="float32", max_context=4096))


@pytest.fixture()
def data_dir(tmp_path):
    root = tmp_path / "data"
    write_mmlu(root)
    write_gsm8k(root)
    return root

