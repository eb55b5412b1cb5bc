"""Turning logits into the distributions that verification compares.

The same transformation (temperature, then top-k, then top-p) is applied to the target's logits (-> p)
and to the draft's logits (-> q); speculative sampling is lossless with respect to that processed p.
"""
from __future__ import annotations

import torch

from specdec.config import SamplingConfig


def process_logits(logits: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """logits (..., V) -> probabilities (..., V) float32 after temperature / top-k / top-p.
    Greedy (temperature 0) gives the one-hot of the argmax."""
    logits = logits.float()
    if cfg.greedy:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    logits = logits / cfg.temperature
    if cfg.top_k and cfg.top_k < logits.shape[-1]:
        kth = torch.topk(logits, cfg.top_k, dim=-1).values[..., -1:]  # (..., 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if cfg.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (..., V)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        # drop a token when the mass strictly before it already reaches top_p (the first token always stays)
        drop_sorted = (cum - sorted_logits.softmax(-1)) >= cfg.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits.softmax(-1)


def sample(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """probs (B, V) -> token ids (B,)."""
    if generator is not None and probs.device != generator.device:  # a CUDA runner's probabilities, a CPU generator
        probs = probs.to(generator.device)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def make_generator(cfg: SamplingConfig) -> torch.Generator:
    g = torch.Generator()
    if cfg.seed is not None:
        g.manual_seed(cfg.seed)
    else:
        g.seed()  # non-deterministic; unlike torch.seed() it leaves torch's global RNG alone
    return g
