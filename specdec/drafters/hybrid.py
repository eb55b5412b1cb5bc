"""`hybrid`: copy from the context when it repeats itself, ask the draft model otherwise.

Why: on this CPU a draft-model token costs about a third of a target step (21 vs 62 ms for the bundled pair
with int4 weights), so it pays only where its guesses are good (math, code: 1.5-1.9x measured), while
prompt lookup drafts for free and wins where the answer copies the prompt (summarization, translation,
extraction: 1.3-1.8x) but rarely finds a match elsewhere. Each round the hybrid first looks for an n-gram of
at least `min_match` tokens earlier in the context and proposes its continuation (a long match is a
likely draft); without one, the draft model drafts under the policy. A prompt longer than `model_prompt_max`
tokens (512) never wakes the draft model: its prefill (a third of the target's) would cost more than it can
save over a typical answer (Spec-Bench's first rag prompt, 671 tokens, 96 new, int4: 0.95x of plain with the
draft model under the earlier 768 limit, docs/results/bench/final_cpu.json; its rag and summarization prompts
are 664-741 tokens, every other category's under 230). With `long=aded`, rounds of such prompts that find no long
match draft from ADED (its tri-gram store, adapted to the prompt) instead of drafting nothing.

Lossless like its parts: every token is verified by the target.
"""
from __future__ import annotations

import torch

from specdec.drafters.aded.drafter import _build as build_aded
from specdec.drafters.base import Draft, DraftContext, DrafterBase, VerifyResult
from specdec.drafters.draft_model import DraftModelDrafter
from specdec.drafters.draft_model import _build as build_draft_model
from specdec.drafters.draft_model import check_options as check_draft_model
from specdec.drafters.prompt_lookup import PromptLookupDrafter
from specdec.drafters.registry import DRAFTERS, DrafterEnv
from specdec.errors import InputError


class HybridDrafter(DrafterBase):
    name = "hybrid"

    def __init__(self, model: DraftModelDrafter, lookup: PromptLookupDrafter, model_prompt_max: int = 512,
                 long: DrafterBase | None = None) -> None:
        """long: the drafter for rounds of prompts past `model_prompt_max` that find no long match (None: no
        draft, a plain step)."""
        self.model, self.lookup, self.long = model, lookup, long
        self.model_prompt_max = model_prompt_max
        self.runner = model.runner  # its measured cost is the cost of a drafted token (RoundCosts)
        self._second: DrafterBase | None = model  # this generation's drafter after the lookup: model, long or none

    @property
    def compile_seconds(self) -> float:
        return self.model.compile_seconds

    @property
    def target_topk(self) -> int:
        """What this generation's second drafter reads of the target's top tokens (`long=aded` with recycle)."""
        return self._second.target_topk if self._second is not None else 0

    def start(self, prompt_ids: torch.Tensor) -> None:
        self._second = self.model if prompt_ids.shape[1] <= self.model_prompt_max else self.long
        self.lookup.start(prompt_ids)
        if self._second is not None:
            self._second.start(prompt_ids)

    def propose(self, ctx: DraftContext) -> Draft:
        d = self.lookup.propose(ctx)
        if d.length and d.info.get("ngram", 0) >= self.lookup.min_ngram:
            d.info["source"] = "lookup"
            return d
        if self._second is None:
            return Draft.empty()
        d = self._second.propose(ctx)
        d.info["source"] = "model" if self._second is self.model else self._second.name
        return d

    def observe(self, result: VerifyResult) -> None:
        self.lookup.observe(result)
        if self._second is not None:
            self._second.observe(result)


LONG = ("none", "aded")  # what drafts a long prompt's rounds without a long match


def _check(draft: str | None = None, min_match: int = 3, max_ngram: int = 6, model_prompt_max: int = 512,
           vocab: int | None = None, draft_weights: str | None = None, draft_backend: str | None = None,
           guess: int | None = None, guess_from: str = "context", guess_sync: bool = True,
           long: str = "none") -> None:
    if long not in LONG:
        raise InputError(f"hybrid: long must be one of {', '.join(LONG)}, got {long!r}")
    if min_match < 1 or max_ngram < min_match:
        raise InputError(f"hybrid: need 1 <= min_match <= max_ngram, got {min_match}, {max_ngram}")
    if model_prompt_max < 1:
        raise InputError(f"hybrid: model_prompt_max must be >= 1, got {model_prompt_max}")
    check_draft_model(draft, vocab, draft_weights, draft_backend, guess=guess, guess_from=guess_from,
                      guess_sync=guess_sync)


@DRAFTERS.register("hybrid", check=_check)
def _build(env: DrafterEnv, draft: str | None = None, min_match: int = 3, max_ngram: int = 6,
           model_prompt_max: int = 512, vocab: int | None = None, draft_weights: str | None = None,
           draft_backend: str | None = None, guess: int | None = None, guess_from: str = "context",
           guess_sync: bool = True, long: str = "none") -> HybridDrafter:
    """Options: min_match (shortest n-gram match that is copied, default 3), max_ngram (longest tried, 6),
    model_prompt_max (prompts longer than this never wake the draft model, 512 tokens), long (what drafts those
    prompts' rounds without a long match: none, or aded with its default store and options), and the draft-model
    drafter's draft / vocab / draft_weights / draft_backend / guess / guess_from / guess_sync."""
    _check(draft, min_match, max_ngram, model_prompt_max, vocab, draft_weights, draft_backend, guess, guess_from,
           guess_sync, long)
    model = build_draft_model(env, draft=draft, vocab=vocab, draft_weights=draft_weights,
                               draft_backend=draft_backend, guess=guess, guess_from=guess_from,
                               guess_sync=guess_sync)
    fallback = build_aded(env) if long == "aded" else None
    return HybridDrafter(model, PromptLookupDrafter(max_ngram=max_ngram, min_ngram=min_match), model_prompt_max,
                         fallback)
