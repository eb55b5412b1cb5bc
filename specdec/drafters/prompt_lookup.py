"""`prompt-lookup`: copy the continuation of the latest earlier occurrence of the current n-gram
(Saxena 2023, HF's prompt lookup decoding), searched over the prompt and the output so far."""
from __future__ import annotations

import numpy as np
import torch

from specdec.drafters.base import Draft, DraftContext, DrafterBase
from specdec.drafters.registry import DRAFTERS, DrafterEnv
from specdec.errors import InputError


class PromptLookupDrafter(DrafterBase):
    name = "prompt-lookup"

    def __init__(self, max_ngram: int = 3, min_ngram: int = 1) -> None:
        if not 1 <= min_ngram <= max_ngram:
            raise InputError(f"need 1 <= min_ngram <= max_ngram, got {min_ngram}, {max_ngram}")
        self.max_ngram, self.min_ngram = max_ngram, min_ngram

    def fork(self) -> "PromptLookupDrafter":
        return self  # no state between rounds: one object serves every request

    def propose(self, ctx: DraftContext) -> Draft:
        cont, n = continuation(ctx.tokens[0].numpy(), self.max_ngram, self.min_ngram, ctx.max_draft)
        if not len(cont):
            return Draft.empty()
        return Draft(tokens=torch.from_numpy(cont).long()[None], info={"ngram": n})


def continuation(seq: np.ndarray, max_ngram: int, min_ngram: int, limit: int) -> tuple[np.ndarray, int]:
    """Up to `limit` tokens that followed the latest earlier occurrence of the longest n-gram (max_ngram down to
    min_ngram) that ends `seq` (T,), and that n; (empty, 0) without a match."""
    T = len(seq)
    if limit < 1:
        return seq[:0].copy(), 0
    for n in range(min(max_ngram, T - 1), min_ngram - 1, -1):
        suffix = seq[T - n :]
        windows = np.lib.stride_tricks.sliding_window_view(seq[: T - 1], n)  # (T-n, n): starts 0..T-n-1
        hits = np.flatnonzero((windows == suffix).all(axis=1))
        if len(hits):
            start = int(hits[-1]) + n  # the most recent earlier occurrence
            cont = seq[start : start + limit]
            if len(cont):
                return cont.copy(), n
    return seq[:0].copy(), 0


@DRAFTERS.register("prompt-lookup", check=PromptLookupDrafter)  # its checks need no model
def _build(env: DrafterEnv, max_ngram: int = 3, min_ngram: int = 1) -> PromptLookupDrafter:
    return PromptLookupDrafter(max_ngram=max_ngram, min_ngram=min_ngram)
