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
        seq = ctx.tokens[0].numpy()  # (T,)
        T = len(seq)
        for n in range(min(self.max_ngram, T - 1), self.min_ngram - 1, -1):
            suffix = seq[T - n :]
            windows = np.lib.stride_tricks.sliding_window_view(seq[: T - 1], n)  # (T-n, n): starts 0..T-n-1
            hits = np.flatnonzero((windows == suffix).all(axis=1))
            if len(hits):
                start = int(hits[-1]) + n  # the most recent earlier occurrence
                cont = seq[start : start + ctx.max_draft]
                if len(cont):
                    return Draft(tokens=torch.from_numpy(cont.copy()).long()[None], info={"ngram": n})
        return Draft.empty()


@DRAFTERS.register("prompt-lookup", check=PromptLookupDrafter)  # its checks need no model
def _build(env: DrafterEnv, max_ngram: int = 3, min_ngram: int = 1) -> PromptLookupDrafter:
    return PromptLookupDrafter(max_ngram=max_ngram, min_ngram=min_ngram)
