"""Helpers for the SpecDec++ tests (imported by name: no clash with other test folders' conftest)."""
from __future__ import annotations

import math

import torch

import specdec  # noqa: F401  (import before `policies`: policies.base -> specdec -> policies)

from policies.specdecpp.head import AcceptanceHead, draft_identity, save_head


def make_head_file(path, draft_model, name="tiny-draft", seed=0, meta=None, blocks=3):
    torch.manual_seed(seed)
    head = AcceptanceHead(draft_model.config.hidden_size, blocks)
    return save_head(path, head, draft_identity(draft_model, name), meta or {"eos_token_ids": [1]})


def probe_head_file(path, hidden_size=32, draft_name="probe"):
    """A head with no blocks whose P(accept) = sigmoid(hidden[0]): tests choose P by choosing hidden."""
    head = AcceptanceHead(hidden_size, 0)
    with torch.no_grad():
        head.out.weight.zero_()
        head.out.bias.zero_()
        head.out.weight[1, 0] = 1.0
    ident = {"name": draft_name, "model_type": "qwen2", "hidden_size": hidden_size, "num_hidden_layers": 2,
             "vocab_size": 64, "fingerprint": "0" * 16}
    return save_head(path, head, ident, {"eos_token_ids": [1]}, dtype=torch.float32)


def hidden_for(p: float, hidden_size: int = 32) -> torch.Tensor:
    h = torch.zeros(1, hidden_size)
    h[0, 0] = 50.0 if p >= 1 else -50.0 if p <= 0 else math.log(p / (1 - p))
    return h


def random_prompts(n: int, seed: int = 0, vocab: int = 64, lo: int = 2, hi: int = 12) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        T = int(torch.randint(lo, hi, (1,), generator=g))
        out.append(torch.randint(3, vocab, (1, T), generator=g))
    return out
