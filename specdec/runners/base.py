"""The model-runner protocol: everything the loop, `verify()`, the drafters and the policies rely on from a
model, whichever engine runs it (PyTorch modules, llama.cpp, ...).

A runner holds one model and one KV cache for one sequence. It never advances on its own:

    logits, hidden = runner.forward(tokens)        # a pass over T new tokens after the committed cache
    runner.commit(n, keep)                          # keep n of them (a tree: the offsets of the kept path)
    runner.rollback(length)                         # forget everything after `length` committed tokens

One decode/verify pass is the pending token plus the draft (a chain, or a tree with `tree_mask` and
`depths`); it returns float32 logits for every row, and the final hidden states when asked
(`need_hidden=True`; a runner for which they are free may always return them).

Costs: `pass_costs(runner)` is the runner's measured seconds per pass by row count, measured once per
machine, model and runner settings and cached on disk (see `specdec.runners.costs`): drafting and
verification are not free on a CPU, and how much to speculate is decided from them.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Runner(Protocol):
    name: str  # registry name: "torch", "llamacpp"
    vocab_size: int  # logits rows (may exceed the tokenizer's vocabulary)
    max_context: int  # KV cache length (prompt + generated + draft)
    max_pass: int  # most rows one decode/verify pass takes (exact mode: its query length)
    length: int  # committed tokens
    query_len: int | None  # exact mode: every decode/verify pass is padded to this many rows; None = fast mode
    compile_seconds: float  # one-off warm-up spent compiling (kept out of steady-state timings)
    eos_token_ids: tuple[int, ...]  # the model's end-of-generation tokens
    weights: str  # what the passes multiply: bf16 / float32 / float16 / int8 / int4 (torch), gguf (llama.cpp)
    compute_dtype: str  # the activations' dtype: bfloat16 / float32 / float16 (torch), gguf (llama.cpp's own)
    vocab_ids: torch.Tensor | None  # (V,) the token id of each logits row after `restrict_vocab`; None: row i is id i

    def reset(self) -> None:
        """Forget the whole sequence (length 0)."""

    def prefill(self, tokens: torch.Tensor) -> None:
        """Run and commit a prompt (1, T)."""

    def forward(self, tokens: torch.Tensor, tree_mask: torch.Tensor | None = None,
                depths: torch.Tensor | None = None, need_hidden: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run `tokens` (1, T) after the committed cache: logits (1, T, V) float32 and, when asked, the final
        hidden states (1, T, H). Chain: token t sees the cache and tokens 0..t at position length + t.
        Tree: `tree_mask` (T, T) bool says which new tokens each one sees, `depths` (T,) gives positions
        length + depth. Nothing is committed."""

    def commit(self, n: int, keep: list[int] | None = None) -> None:
        """Keep n of the tokens just run: the first n (chain), or those at offsets `keep` (tree path)."""

    def rollback(self, length: int) -> None:
        """Forget everything after `length` committed tokens."""

    def space_left(self) -> int:
        """Tokens the cache can still take."""

    def restrict_vocab(self, ids: list[int]) -> None:
        """Compute logits only for token `ids` (a draft's smaller output layer; sets `vocab_ids`); a runner that
        cannot raises InputError in one line."""

    def fingerprint(self) -> str:
        """Identifies model, weights and settings that change speed (the key of the cost cache)."""


def chain_mask(n: int) -> torch.Tensor:
    """(n, n) causal mask of a chain."""
    return torch.ones(n, n, dtype=torch.bool).tril()
