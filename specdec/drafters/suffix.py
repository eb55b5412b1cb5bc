"""`suffix`: drafts from the longest suffix match (SuffixDecoding, Oliaro et al. 2024; SAM-Decoding), model-free.

Prompt lookup matches the last 1..3 tokens and copies one continuation. This drafter matches the longest suffix of
the committed tokens (up to `max_match`) anywhere in the prompt and output so far and, with `persist`, in the
outputs of earlier generations (the "global" tree of SuffixDecoding: what a server has answered before), then
builds a tree from the continuations of *every* occurrence of that match, each node scored by the share of
occurrences that continue through it (an empirical probability), best-first up to `nodes` nodes, nodes below
`min_prob` left out. Long matches make long, likely drafts: the regime where verification on a CPU pays.

Search (per round, numpy): the positions where the last token occurs, then those that also match one more token
back, and so on while any remain: O(occurrences x match length), no index to keep up to date.

Deterministic (q = None): lossless for greedy and sampling through the shared verify().
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import torch

from specdec.drafters.base import Draft, DraftContext, DrafterBase, DraftTree, VerifyResult
from specdec.drafters.registry import DRAFTERS, DrafterEnv
from specdec.errors import InputError


@dataclass(frozen=True)
class SuffixConfig:
    max_match: int = 32  # longest suffix matched (tokens)
    min_match: int = 2  # shorter matches draft nothing (a single token repeats everywhere)
    nodes: int = 8  # tree node budget per round (chain: the path's length is the policy's k)
    depth: int = 8  # longest continuation read per occurrence
    min_prob: float = 0.1  # nodes whose empirical probability is below this are not drafted
    chain: bool = False  # draft the most likely path only (vLLM verifies chains)
    persist: bool = False  # keep earlier generations' outputs (of this drafter and its forks) as a corpus
    max_corpus: int = 200_000  # tokens of earlier outputs kept (oldest dropped first)

    def __post_init__(self) -> None:
        for name in ("max_match", "min_match", "nodes", "depth", "max_corpus"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"suffix: {name} must be a whole number >= 1, got {v!r}")
        if self.min_match > self.max_match:
            raise InputError(f"suffix: need min_match <= max_match, got {self.min_match}, {self.max_match}")
        if not 0.0 <= float(self.min_prob) < 1.0:
            raise InputError(f"suffix: min_prob must be in [0, 1), got {self.min_prob!r}")


MAX_OCCURRENCES = 64


class _Corpus:
    """Earlier generations' outputs, one array with -1 between them (a match never crosses a separator)."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self.tokens = np.zeros(0, dtype=np.int64)

    def add(self, seq: list[int]) -> None:
        if seq:
            self.tokens = np.concatenate([self.tokens, np.asarray(seq, dtype=np.int64), [-1]])[-self.max_tokens:]


def longest_match(hay: np.ndarray, seq: np.ndarray, end: int, max_match: int) -> tuple[int, np.ndarray]:
    """The longest L <= max_match such that seq[-L:] occurs in hay[:end] ending before `end`, and the end
    positions (indices of the occurrence's last token) of all its occurrences. (0, empty) when seq[-1] never does."""
    if len(seq) == 0 or end <= 0:
        return 0, np.zeros(0, dtype=np.int64)
    cand = np.flatnonzero(hay[:end] == seq[-1])  # (n,) occurrences of the last token
    length = 1
    while len(cand) and length < min(max_match, len(seq)):
        back = cand - length
        ok = back >= 0
        nxt = cand[ok][hay[back[ok]] == seq[-1 - length]]
        if not len(nxt):
            break
        cand, length = nxt, length + 1
    return (length, cand) if len(cand) else (0, cand)


class Continuations(NamedTuple):
    """A draft tree in topological order: tokens, parents (-1: child of the root), and each node's share of the
    match's occurrences that continue through it (the drafter's estimate of its path probability)."""

    tokens: list[int]
    parents: list[int]
    scores: list[float]


def continuation_tree(hay: np.ndarray, ends: np.ndarray, limit: int, cfg: SuffixConfig) -> Continuations:
    """A draft tree from what follows each occurrence in `hay` (up to `limit`, the end of usable text): nodes
    scored by the share of occurrences through them, best-first, `cfg.nodes` at most."""
    ends = ends[-MAX_OCCURRENCES:]  # the most recent ones: a short, common match is not worth a long scan
    total = len(ends)
    trie: dict[tuple[int, ...], int] = {}  # token path -> occurrences through it
    for e in ends.tolist():
        stop = min(e + 1 + cfg.depth, limit)
        path: tuple[int, ...] = ()
        for t in hay[e + 1: stop].tolist():
            if t < 0:
                break  # a separator: the occurrence's text ended
            path = path + (t,)
            trie[path] = trie.get(path, 0) + 1
    budget = cfg.nodes
    chosen: list[tuple[int, ...]] = []
    frontier = [p for p in trie if len(p) == 1]
    while frontier and len(chosen) < budget:
        best = max(frontier, key=lambda p: (trie[p], -len(p)))
        if trie[best] / total < cfg.min_prob:
            break
        chosen.append(best)
        frontier.remove(best)
        if cfg.chain:
            frontier = []
        frontier += [p for p in trie if len(p) == len(best) + 1 and p[:-1] == best]
    index = {p: i for i, p in enumerate(chosen)}  # parents are chosen before their children (best-first)
    return Continuations([p[-1] for p in chosen], [index.get(p[:-1], -1) for p in chosen],
                         [trie[p] / total for p in chosen])


class SuffixDrafter(DrafterBase):
    name = "suffix"

    def __init__(self, config: SuffixConfig = SuffixConfig(), corpus: _Corpus | None = None) -> None:
        self.config = config
        self.corpus = corpus if corpus is not None else _Corpus(config.max_corpus)
        self._hist: list[int] = []
        self._prompt_len = 0

    def draft_limit(self, policy_max: int) -> int:
        """Chain: the policy's k. Tree: the node budget (the policy's k caps the depth)."""
        return policy_max if self.config.chain else self.config.nodes

    def fork(self) -> "SuffixDrafter":
        """Another request beside this one: its own history, the same corpus of earlier outputs."""
        return SuffixDrafter(self.config, self.corpus)

    def start(self, prompt_ids: torch.Tensor) -> None:
        if self.config.persist and len(self._hist) > self._prompt_len:
            self.corpus.add(self._hist[self._prompt_len:])  # the previous generation's output
        self._hist = prompt_ids[0].tolist()
        self._prompt_len = len(self._hist)

    def observe(self, result: VerifyResult) -> None:
        self._hist += result.tokens[0].tolist()

    def propose(self, ctx: DraftContext) -> Draft:
        cfg = self.config
        seq = ctx.tokens[0].numpy().astype(np.int64, copy=False)  # (T,) every committed token
        depth = min(cfg.depth, ctx.policy_k or cfg.depth, ctx.max_draft)
        nodes = min(cfg.nodes if not cfg.chain else depth, ctx.max_draft)
        if nodes < 1 or len(seq) < cfg.min_match + 1:
            return Draft.empty()
        best = (0, None, None, 0)  # (length, hay, ends, limit)
        length, ends = longest_match(seq, seq, len(seq) - 1, cfg.max_match)  # this generation (not the suffix itself)
        if length:
            best = (length, seq, ends, len(seq))
        if len(self.corpus.tokens):
            c = self.corpus.tokens
            clen, cends = longest_match(c, seq, len(c), cfg.max_match)
            if clen > best[0]:
                best = (clen, c, cends, len(c))
        length, hay, ends, limit = best
        if length < cfg.min_match:
            return Draft(tokens=torch.zeros(1, 0, dtype=torch.long), info={"match": length})
        tokens, parents, shares = continuation_tree(hay, ends, limit, replace(cfg, nodes=nodes, depth=depth))
        info = {"match": length, "occurrences": int(len(ends)), "tree_size": len(tokens)}
        if not tokens:
            return Draft(tokens=torch.zeros(1, 0, dtype=torch.long), info=info)
        return Draft(tokens=torch.tensor([tokens], dtype=torch.long), tree=DraftTree.of(parents), info=info,
                     scores=torch.tensor([shares], dtype=torch.float32))  # (1, N)


def _config(**options) -> SuffixConfig:
    from specdec.validate import config_from_options

    return config_from_options(SuffixConfig, options, "suffix")


def _check(**options) -> None:
    _config(**options)


@DRAFTERS.register("suffix", check=_check)  # its checks need no model
def _build(env: DrafterEnv, **options) -> SuffixDrafter:
    """Options: max_match, min_match, nodes, depth, min_prob, chain, persist, max_corpus (SuffixConfig)."""
    return SuffixDrafter(_config(**options))
