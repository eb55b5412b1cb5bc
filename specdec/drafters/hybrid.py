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
match draft from ADED (its tri-gram store, adapted to the prompt) instead of drafting nothing. With `first=aded`,
ADED is asked before the draft model on every prompt: where its sized tree expects at least `first_min` accepted
tokens (the sum of its kept nodes' calibrated chances) the round verifies that tree, for no draft-model pass;
otherwise ADED's tree is withdrawn and the draft model drafts (docs/aded.md, "ADED as the hybrid's first source").

Lossless like its parts: every token is verified by the target.
"""
from __future__ import annotations

import torch

from specdec.drafters.aded.drafter import AdedDrafter
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
                 long: AdedDrafter | None = None, first: AdedDrafter | None = None, first_min: float = 2.0) -> None:
        """long: the drafter for rounds of prompts past `model_prompt_max` that find no long match (None: no
        draft, a plain step). first: asked before the draft model on prompts it drafts for; its tree is taken
        where it expects >= `first_min` accepted tokens (may be the same ADED as `long`)."""
        self.model, self.lookup, self.long, self.first = model, lookup, long, first
        self.model_prompt_max, self.first_min = model_prompt_max, first_min
        self.runner = model.runner  # its measured cost is the cost of a drafted token (RoundCosts)
        self._second: DrafterBase | None = model  # this generation's drafter after the lookup: model, long or none

    @property
    def compile_seconds(self) -> float:
        return self.model.compile_seconds

    def _active(self) -> list[DrafterBase]:
        """This generation's drafters after the lookup, each once: the second (model, long or none), then `first`
        where the draft model is the second."""
        out = [self._second] if self._second is not None else []
        if self.first is not None and self._second is self.model:
            out.append(self.first)
        return out

    @property
    def target_topk(self) -> int:
        """What this generation's drafters read of the target's top tokens (ADED with recycle: `long` or `first`)."""
        return max((d.target_topk for d in self._active()), default=0)

    def start(self, prompt_ids: torch.Tensor) -> None:
        self._second = self.model if prompt_ids.shape[1] <= self.model_prompt_max else self.long
        self.lookup.start(prompt_ids)
        for d in self._active():
            d.start(prompt_ids)

    def propose(self, ctx: DraftContext) -> Draft:
        d = self.lookup.propose(ctx)
        if d.length and d.info.get("ngram", 0) >= self.lookup.min_ngram:
            d.info["source"] = "lookup"
            return d
        if self._second is None:
            return Draft.empty()
        if self.first is not None and self._second is self.model:
            d = self.first.propose(ctx)
            if d.length and d.info["expected"] >= self.first_min:
                d.info["source"] = "aded-first"
                return d
            self.first.withdraw()
        d = self._second.propose(ctx)
        d.info["source"] = "model" if self._second is self.model else self._second.name
        return d

    def observe(self, result: VerifyResult) -> None:
        self.lookup.observe(result)
        for d in self._active():
            d.observe(result)


LONG = ("none", "aded")  # what drafts a long prompt's rounds without a long match
FIRST = ("none", "aded")  # what is asked before the draft model


def _check(draft: str | None = None, min_match: int = 3, max_ngram: int = 6, model_prompt_max: int = 512,
           vocab: int | None = None, draft_weights: str | None = None, draft_backend: str | None = None,
           guess: int | None = None, guess_from: str = "context", guess_sync: bool = True,
           long: str = "none", first: str = "none", first_min: float = 2.0) -> None:
    if long not in LONG:
        raise InputError(f"hybrid: long must be one of {', '.join(LONG)}, got {long!r}")
    if first not in FIRST:
        raise InputError(f"hybrid: first must be one of {', '.join(FIRST)}, got {first!r}")
    if not 0 < first_min < float("inf"):
        raise InputError(f"hybrid: first_min (expected accepted tokens) must be > 0, got {first_min}")
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
           guess_sync: bool = True, long: str = "none", first: str = "none",
           first_min: float = 2.0) -> HybridDrafter:
    """Options: min_match (shortest n-gram match that is copied, default 3), max_ngram (longest tried, 6),
    model_prompt_max (prompts longer than this never wake the draft model, 512 tokens), long (what drafts those
    prompts' rounds without a long match: none, or aded with its default store and options), first (none, or aded:
    asked before the draft model, its tree taken where it expects >= first_min accepted tokens, default 2.0), and
    the draft-model drafter's draft / vocab / draft_weights / draft_backend / guess / guess_from / guess_sync."""
    _check(draft, min_match, max_ngram, model_prompt_max, vocab, draft_weights, draft_backend, guess, guess_from,
           guess_sync, long, first, first_min)
    model = build_draft_model(env, draft=draft, vocab=vocab, draft_weights=draft_weights,
                               draft_backend=draft_backend, guess=guess, guess_from=guess_from,
                               guess_sync=guess_sync)
    aded = build_aded(env) if "aded" in (long, first) else None  # one store and one calibration for both roles
    return HybridDrafter(model, PromptLookupDrafter(max_ngram=max_ngram, min_ngram=min_match), model_prompt_max,
                         aded if long == "aded" else None, aded if first == "aded" else None, first_min)
