"""`mlm`: a masked LM drafts K tokens in one parallel pass: [CLS] context [MASK]*K [SEP] -> argmax fill.

Where the MLM's vocabulary differs from the target's (the usual case: WordPiece bert-tiny vs Qwen's
byte-level BPE) the draft is translated through text: target ids -> text -> MLM ids, fill, MLM ids ->
text -> target ids; the time spent translating is reported in `draft.info`. The drafter is
deterministic (`q=None`), so the shared `verify()` keeps the output exactly the target's.

Mask-predict as the non-autoregressive initializer: with `refine=N` the parallel fill is refined by N more
mask-predict passes (`nar.refine`: the least confident tokens re-masked and predicted again) before the
target verifies it -- the same `verify()` as every drafter. The MLM's per-token probability goes to the
policy as the draft's confidence (`DraftStep.top_prob`): `confidence` cuts the draft at the first token below
its threshold. (Policies that need the draft model's hidden states, SpecDec++, are not asked: an MLM has none
of the target family's.)

Limits (stated, not hidden): an uncased WordPiece MLM loses case, newlines and indentation; the
optional `restore_case` puts back the case of words seen in the context. Expect low acceptance on
code and chat, where the target's next tokens are often whitespace or punctuation.
"""
from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import torch

from policies.base import DraftStep
from specdec.drafters.base import Draft, DraftContext, DrafterBase, VerifyResult
from specdec.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from mlm_generate.models import MLM

from specdec.drafters.registry import DRAFTERS, DrafterEnv

# A plug-in: the "specdec.drafters" entry point (pyproject.toml) names this module, which registers `mlm`
# when the drafter registry is first asked for a name; the engine never imports mlm_generate.

_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")


class MLMDrafter(DrafterBase):
    name = "mlm"

    def __init__(self, mlm: MLM | str = "bert-tiny-splade", target_tokenizer=None, *, iterations: int = 1,
                 context_tokens: int = 96, extra_masks: int = 0, restore_case: bool = True, refine: int = 0) -> None:
        if target_tokenizer is None:
            raise InputError("the mlm drafter needs the target's tokenizer")
        _check(iterations=iterations, context_tokens=context_tokens, extra_masks=extra_masks, refine=refine)
        self.refine = refine
        from mlm_generate.models import MLM, load_mlm  # noqa: PLC0415

        self.mlm = mlm if isinstance(mlm, MLM) else load_mlm(mlm)
        self.tt = target_tokenizer
        self.iterations = iterations
        self.context_tokens = context_tokens
        self.extra_masks = extra_masks
        self.restore_case = restore_case
        self.shared_vocab = self.mlm.tokenizer.get_vocab() == target_tokenizer.get_vocab()
        self.totals = {"rounds": 0, "translate_s": 0.0, "mlm_s": 0.0}

    def start(self, prompt_ids: torch.Tensor) -> None:
        self.totals = {"rounds": 0, "translate_s": 0.0, "mlm_s": 0.0}

    def observe(self, result: VerifyResult) -> None:
        pass

    # ------------------------------------------------------------------ helpers
    def _fill(self, ctx_ids: list[int], n: int) -> tuple[list[int], list[float]]:
        """(MLM ids, their log-probabilities): n masks after the context (the context loses its beginning to
        fit), then `refine` mask-predict passes over the filled draft (nar.refine)."""
        from mlm_generate.nar import iterative_fill, refine  # noqa: PLC0415

        frame = self.mlm.tokenizer("", add_special_tokens=True)["input_ids"]
        head, tail = frame[:1], frame[1:]  # [CLS] .. [SEP] (BERT, ModernBERT), <s> .. </s> (RoBERTa)
        room = self.mlm.max_length - len(frame) - n
        ctx_ids = ctx_ids[-room:] if room > 0 else []
        ids = torch.tensor([head + ctx_ids + [self.mlm.mask_id] * n + tail])
        fill = ids == self.mlm.mask_id
        out, conf, _ = iterative_fill(self.mlm, ids, torch.ones_like(ids), fill, self.iterations)
        toks, lps = out[fill].tolist(), conf[fill].tolist()
        if self.refine:
            res = refine(self.mlm, self.mlm.tokenizer.decode(ctx_ids), toks, iterations=self.refine + 1)
            toks, lps = res.tokens, res.token_logprobs
        return toks, lps

    @staticmethod
    def _by_policy(ctx: DraftContext, toks: list[int], lps: list[float]) -> list[int]:
        """The draft cut where the policy stops drafting, shown each token's MLM probability as confidence."""
        import math

        if ctx.policy is None or ctx.policy.needs_hidden:  # None: asked outside the loop
            return toks
        for i, tok in enumerate(toks):
            p = math.exp(lps[min(i, len(lps) - 1)]) if lps else 1.0
            if not ctx.policy.keep_drafting(DraftStep(index=i, token=int(tok), token_prob=p, top_prob=p)):
                return toks[: i + 1]  # the token just drafted is still verified
        return toks

    @staticmethod
    def _recase(text: str, context: str) -> str:
        cased: dict[str, str] = {}
        for w in _WORD.findall(context):
            cased[w.lower()] = w
        return _WORD.sub(lambda m: cased.get(m.group(0).lower(), m.group(0)), text)

    def _to_target(self, ctx_text: str, draft_text: str, k: int) -> list[int]:
        """Target ids of `draft_text` continuing `ctx_text` (tokenized together, so that the boundary
        merges as the target would merge it)."""
        tail = ctx_text[-64:]
        t_tail = self.tt(tail, add_special_tokens=False)["input_ids"]
        t_full = self.tt(tail + draft_text, add_special_tokens=False)["input_ids"]
        if t_full[:len(t_tail)] == t_tail:
            ids = t_full[len(t_tail):]
        else:  # the boundary merged differently: tokenize the continuation alone
            ids = self.tt(draft_text, add_special_tokens=False)["input_ids"]
        return ids[:k]

    # ------------------------------------------------------------------ protocol
    def propose(self, ctx: DraftContext) -> Draft:
        k = int(ctx.max_draft)
        if k <= 0:
            return Draft.empty()
        t0 = time.perf_counter()
        tail = ctx.tokens[0, -self.context_tokens:].tolist()
        if self.shared_vocab:
            t1 = time.perf_counter()
            ids, lps = self._fill(tail, k)
            t2 = time.perf_counter()
            toks, draft_text, t_in, t_out = ids, None, 0.0, 0.0
        else:
            ctx_text = self.tt.decode(tail, skip_special_tokens=True)
            mlm_ctx = self.mlm.tokenizer(ctx_text, add_special_tokens=False)["input_ids"]
            t1 = time.perf_counter()
            filled, lps = self._fill(mlm_ctx, k + self.extra_masks)
            t2 = time.perf_counter()
            mtok = self.mlm.tokenizer
            both = mtok.decode(mlm_ctx + filled)
            alone = mtok.decode(mlm_ctx)
            draft_text = both[len(alone):] if both.startswith(alone) else " " + mtok.decode(filled)
            if self.restore_case:
                draft_text = self._recase(draft_text, ctx_text)
            toks = self._to_target(ctx_text, draft_text, k)
            t_in, t_out = t1 - t0, time.perf_counter() - t2
        toks = self._by_policy(ctx, toks, lps)
        mlm_s = t2 - t1
        self.totals["rounds"] += 1
        self.totals["translate_s"] += t_in + t_out
        self.totals["mlm_s"] += mlm_s
        info = {"mlm_s": mlm_s, "translate_s": t_in + t_out, "translate_in_s": t_in, "translate_out_s": t_out,
                "shared_vocab": self.shared_vocab, "draft_text": draft_text}
        if not toks:
            return Draft(tokens=torch.zeros(1, 0, dtype=torch.long), info=info)
        return Draft(tokens=torch.tensor([toks], dtype=torch.long), q=None, info=info)


def _check(mlm: str = "bert-tiny-splade", iterations: int = 1, context_tokens: int = 96, extra_masks: int = 0,
           restore_case: bool = True, refine: int = 0) -> None:
    """Before any model loads: the ranges, and a masked LM that is a zoo name, a model folder or a hub id."""
    if iterations < 1 or context_tokens < 1 or extra_masks < 0 or refine < 0:
        raise InputError("iterations >= 1, context_tokens >= 1, extra_masks >= 0 and refine >= 0 are required")
    if isinstance(mlm, str):
        from specdec.zoo.load import check_model_name

        check_model_name(mlm, None, "mlm")


@DRAFTERS.register("mlm", check=_check)
def _build(env: DrafterEnv, mlm: str = "bert-tiny-splade", iterations: int = 1, context_tokens: int = 96,
           extra_masks: int = 0, restore_case: bool = True, refine: int = 0) -> MLMDrafter:
    return MLMDrafter(mlm, env.target_tokenizer, iterations=iterations, context_tokens=context_tokens,
                      extra_masks=extra_masks, restore_case=restore_case, refine=refine)
