"""Non-autoregressive generation with a masked LM.

* Mask-Predict (Ghazvininejad et al., 2019): fill every masked position in parallel, then for
  t = 1..T-1 re-mask the n = N*(T-t)/T least confident tokens and predict them again; several length
  candidates are decoded in one batch and the one with the best mean log-probability wins.
* Block-wise confidence unmasking (LLaDA-style semi-autoregressive decoding): the answer is split into
  blocks, left to right; inside the current block each step commits the most confident predictions
  (ceil(remaining / steps_left) of them); later blocks stay masked.
* `refine`: start from a whole draft produced elsewhere (or by one parallel pass) and improve it with
  mask-predict iterations -- the MLM as the initializer/refiner of a non-autoregressive generator.

Every function returns real token ids: special tokens (mask, pad, cls, sep, unk...) can never be
produced, so no mask survives.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

import torch

from mlm_generate.models import MLM
from specdec.errors import InputError


@dataclass(frozen=True)
class GenerationConfig:
    method: str = "mask-predict"  # mask-predict | block
    lengths: tuple[int, ...] = (16,)
    iterations: int = 10  # mask-predict T
    block_size: int = 4  # block: tokens per block
    steps_per_block: int = 2  # block: unmasking steps per block

    def __post_init__(self) -> None:
        if self.method not in ("mask-predict", "block"):
            raise InputError(f"method must be 'mask-predict' or 'block', got {self.method!r}")
        if not self.lengths or min(self.lengths) < 1:
            raise InputError(f"lengths must be positive, got {self.lengths}")
        if self.iterations < 1 or self.block_size < 1 or self.steps_per_block < 1:
            raise InputError("iterations, block_size and steps_per_block must be >= 1")


@dataclass
class Candidate:
    length: int
    text: str
    tokens: list[int]
    avg_logprob: float


@dataclass
class GenerationResult:
    text: str  # the chosen continuation
    tokens: list[int]
    length: int
    avg_logprob: float
    method: str
    iterations: int
    forward_passes: int
    seconds: float
    candidates: list[Candidate] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)  # the MLM's log-probability of each token

    @property
    def tokens_per_second(self) -> float:
        return self.length / self.seconds if self.seconds > 0 else float("inf")

    def stats(self):
        """The engine's GenerationStats of this non-autoregressive generation (one metrics type for every
        generator): tokens, forward passes of the masked LM (as target calls), seconds."""
        from specdec.stats import GenerationStats

        return GenerationStats(new_tokens=self.length, rounds=self.iterations, target_calls=self.forward_passes,
                               total_s=self.seconds, stop_reason=self.method)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tokens_per_second"] = self.tokens_per_second
        d["stats"] = self.stats().to_dict()
        return d


def _forbidden(mlm: MLM) -> torch.Tensor:
    return torch.tensor(mlm.special_ids(), dtype=torch.long)


def _predict(mlm: MLM, ids: torch.Tensor, attn: torch.Tensor, where: torch.Tensor,
             forbid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax token and its log-probability at the `where` positions (row-major)."""
    logits = mlm.logits_at(ids, attn, where).float()
    lp = torch.log_softmax(logits, -1)
    lp[:, forbid] = float("-inf")
    best, tok = lp.max(-1)
    return tok, best


@torch.no_grad()
def iterative_fill(mlm: MLM, ids: torch.Tensor, attn: torch.Tensor, fill: torch.Tensor, iterations: int,
                   start_tokens: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Mask-predict over the bool positions `fill` (B, T). Returns (ids with every fill position
    holding a real token, (B, T) log-probabilities of those tokens (0 elsewhere), forward passes).
    With `start_tokens` (B, T) the fill positions start from that draft (scored with one pass, the
    draft visible) instead of from an all-mask parallel prediction."""
    if iterations < 1:
        raise InputError(f"iterations must be >= 1, got {iterations}")
    forbid = _forbidden(mlm)
    ids = ids.clone()
    conf = torch.zeros(ids.shape, dtype=torch.float32)
    if start_tokens is None:
        ids[fill] = mlm.mask_id
        tok, lp = _predict(mlm, ids, attn, fill, forbid)
    else:
        ids[fill] = start_tokens[fill]
        lp = torch.log_softmax(mlm.logits_at(ids, attn, fill).float(), -1)
        tok = ids[fill]
        lp = lp.gather(1, tok[:, None])[:, 0]
    ids[fill], conf[fill] = tok, lp
    passes = 1
    n_fill = fill.sum(1)  # (B,)
    for t in range(1, iterations):
        n = torch.div(n_fill * (iterations - t), iterations, rounding_mode="floor")
        if int(n.max()) == 0:
            break
        key = conf.masked_fill(~fill, float("inf"))
        order = key.argsort(dim=1, stable=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(ids.shape[1]).expand_as(order))
        remask = fill & (rank < n[:, None])
        ids[remask] = mlm.mask_id
        tok, lp = _predict(mlm, ids, attn, remask, forbid)
        ids[remask], conf[remask] = tok, lp
        passes += 1
    return ids, conf, passes


@torch.no_grad()
def block_fill(mlm: MLM, ids: torch.Tensor, attn: torch.Tensor, fill: torch.Tensor, block_size: int,
               steps_per_block: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Semi-autoregressive confidence unmasking over `fill` (B, T), blocks taken left to right."""
    forbid = _forbidden(mlm)
    ids = ids.clone()
    ids[fill] = mlm.mask_id
    conf = torch.zeros(ids.shape, dtype=torch.float32)
    order = torch.cumsum(fill.long(), 1) - 1  # index of each fill position within its row
    n_blocks = math.ceil(int(fill.sum(1).max()) / block_size) if bool(fill.any()) else 0
    passes = 0
    for b in range(n_blocks):
        block = fill & (order >= b * block_size) & (order < (b + 1) * block_size)
        for s in range(steps_per_block):
            masked = block & (ids == mlm.mask_id)
            if not bool(masked.any()):
                break
            tok, lp = _predict(mlm, ids, attn, masked, forbid)
            passes += 1
            cand_lp = torch.full(ids.shape, float("-inf"))
            cand_tok = ids.clone()
            cand_lp[masked], cand_tok[masked] = lp, tok
            remaining = masked.sum(1)
            k = torch.ceil(remaining.float() / (steps_per_block - s)).long()  # last step commits the rest
            order_c = cand_lp.argsort(dim=1, descending=True, stable=True)
            rank = torch.empty_like(order_c)
            rank.scatter_(1, order_c, torch.arange(ids.shape[1]).expand_as(order_c))
            commit = masked & (rank < k[:, None])
            ids[commit], conf[commit] = cand_tok[commit], cand_lp[commit]
    return ids, conf, passes


def _layout(mlm: MLM, prompt: str, length: int, suffix: str = "") -> tuple[list[int], int]:
    """The tokenizer's encoding of `prompt` + mask*length + `suffix` (with its own special tokens);
    returns the ids and the index of the first mask. The prompt loses its beginning where it would
    not fit."""
    tok = mlm.tokenizer
    text = prompt + tok.mask_token * length + suffix
    side = tok.truncation_side
    tok.truncation_side = "left"
    try:
        ids = tok(text, truncation=True, max_length=mlm.max_length)["input_ids"]
    finally:
        tok.truncation_side = side
    pos = [i for i, x in enumerate(ids) if x == mlm.mask_id]
    if len(pos) != length or pos != list(range(pos[0], pos[0] + length)):
        raise InputError(f"could not place {length} consecutive masks after the prompt within the model's "
                         f"{mlm.max_length} positions (the prompt must not contain {tok.mask_token!r})")
    return ids, pos[0]


def generate(mlm: MLM, prompt: str, config: GenerationConfig = GenerationConfig(), suffix: str = "") -> GenerationResult:
    """Continue `prompt` (optionally before `suffix`) with `config.lengths` candidate lengths, in parallel."""
    pad = mlm.tokenizer.pad_token_id if mlm.tokenizer.pad_token_id is not None else 0
    layouts = [_layout(mlm, prompt, n, suffix) for n in config.lengths]
    width = max(len(ids) for ids, _ in layouts)
    ids = torch.full((len(layouts), width), pad, dtype=torch.long)
    attn = torch.zeros_like(ids)
    fill = torch.zeros_like(ids, dtype=torch.bool)
    for r, ((row, start), n) in enumerate(zip(layouts, config.lengths)):
        ids[r, :len(row)] = torch.tensor(row)
        attn[r, :len(row)] = 1
        fill[r, start:start + n] = True
    t0 = time.perf_counter()
    if config.method == "mask-predict":
        out, conf, passes = iterative_fill(mlm, ids, attn, fill, config.iterations)
        iters = config.iterations
    else:
        out, conf, passes = block_fill(mlm, ids, attn, fill, config.block_size, config.steps_per_block)
        iters = passes
    seconds = time.perf_counter() - t0
    cands = []
    for r, n in enumerate(config.lengths):
        toks = out[r][fill[r]].tolist()
        cands.append(Candidate(length=n, text=mlm.tokenizer.decode(toks), tokens=toks,
                               avg_logprob=float(conf[r][fill[r]].mean())))
    best = max(cands, key=lambda c: c.avg_logprob)
    return GenerationResult(text=best.text, tokens=best.tokens, length=best.length, avg_logprob=best.avg_logprob,
                            method=config.method, iterations=iters, forward_passes=passes, seconds=seconds,
                            candidates=cands)


def fill_text(mlm: MLM, text: str, iterations: int = 1, top_k: int = 5) -> dict:
    """Fill every mask in `text` ("[MASK]" and "<mask>" both mean the tokenizer's mask token).
    Returns the filled text, the filled tokens, and each mask's top-k from the first (all-mask) pass."""
    tok = mlm.tokenizer
    if top_k < 1:
        raise InputError(f"--top-k must be >= 1, got {top_k}")
    for alias in ("[MASK]", "<mask>"):
        text = text.replace(alias, tok.mask_token)
    enc = tok(text, return_tensors="pt", truncation=True, max_length=mlm.max_length)
    ids, attn = enc["input_ids"], enc["attention_mask"]
    fill = ids == mlm.mask_id
    if not bool(fill.any()):
        if tok.mask_token in text:
            n = len(tok(text)["input_ids"])
            raise InputError(f"the text is {n} tokens and the model reads {mlm.max_length}: every mask lies past the "
                             "cut; shorten the text or move the mask earlier")
        raise InputError(f"no mask in the text: write {tok.mask_token!r} (or [MASK] / <mask>) where a token is missing")
    with torch.no_grad():
        lp = torch.log_softmax(mlm.logits_at(ids, attn, fill).float(), -1)
    lp[:, _forbidden(mlm)] = float("-inf")
    top = lp.topk(top_k, -1)
    out, conf, passes = iterative_fill(mlm, ids, attn, fill, iterations)
    filled = out[fill].tolist()
    return {
        "text": tok.decode(out[0][attn[0] == 1], skip_special_tokens=True),
        "filled_tokens": tok.convert_ids_to_tokens(filled),
        "filled_ids": filled,
        "iterations": iterations,
        "forward_passes": passes,
        "masks": [{"position": int(p), "top": [{"token": tok.convert_ids_to_tokens(int(i)), "id": int(i),
                                                "prob": float(v.exp())} for v, i in zip(vals, idx)]}
                  for p, vals, idx in zip(fill[0].nonzero()[:, 0], top.values, top.indices)],
    }


@torch.no_grad()
def refine(mlm: MLM, prompt: str, draft: str | Sequence[int], iterations: int = 4) -> GenerationResult:
    """Refine a whole draft continuation of `prompt` with mask-predict iterations (re-mask the least
    confident tokens of the draft, predict them again)."""
    tok = mlm.tokenizer
    d = tok(draft, add_special_tokens=False)["input_ids"] if isinstance(draft, str) else list(draft)
    if not d:
        raise InputError("the draft is empty")
    row, start = _layout(mlm, prompt, len(d))
    ids = torch.tensor([row])
    fill = torch.zeros_like(ids, dtype=torch.bool)
    fill[0, start:start + len(d)] = True
    init = ids.clone()
    init[fill] = torch.tensor(d)
    t0 = time.perf_counter()
    out, conf, passes = iterative_fill(mlm, ids, torch.ones_like(ids), fill, iterations, start_tokens=init)
    toks = out[fill].tolist()
    return GenerationResult(text=tok.decode(toks), tokens=toks, length=len(toks), avg_logprob=float(conf[fill].mean()),
                            method="refine", iterations=iterations, forward_passes=passes,
                            seconds=time.perf_counter() - t0, token_logprobs=conf[fill].tolist())


@torch.no_grad()
def pseudo_log_likelihood(mlm: MLM, text: str, batch_size: int = 64) -> tuple[float, int]:
    """Sum of log p(token_i | all others) over the text's tokens (Salazar et al., 2020) and the count."""
    enc = mlm.tokenizer(text, return_tensors="pt", truncation=True, max_length=mlm.max_length)
    ids = enc["input_ids"][0]
    special = torch.isin(ids, torch.tensor(mlm.special_ids()))
    pos = (~special).nonzero()[:, 0]
    total = 0.0
    for i in range(0, len(pos), batch_size):
        p = pos[i:i + batch_size]
        batch = ids.repeat(len(p), 1)
        batch[torch.arange(len(p)), p] = mlm.mask_id
        where = torch.zeros_like(batch, dtype=torch.bool)
        where[torch.arange(len(p)), p] = True
        lp = torch.log_softmax(mlm.logits_at(batch, torch.ones_like(batch), where).float(), -1)
        total += float(lp[torch.arange(len(p)), ids[p]].sum())
    return total, int(len(pos))
