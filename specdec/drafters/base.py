"""The drafter protocol: every source of draft tokens implements `start`, `propose` and `observe`.

A round of speculative decoding::

    ctx    = DraftContext(tokens=committed ids, policy=..., sampling=...)
    draft  = drafter.propose(ctx)              # K >= 0 candidate tokens (a chain, or a tree)
    result = verify(target_logits, draft, ...)  # the shared, lossless verification
    drafter.observe(result)                     # roll back / adapt

Extra inputs travel in `DraftContext` (never in widened signatures). An empty draft has length 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch

from specdec.config import SamplingConfig

if TYPE_CHECKING:  # pragma: no cover
    from policies.base import CandidatePolicy


@dataclass
class DraftTree:
    """A token tree. Node i (0-based, topological order: parent before child) holds `Draft.tokens[0, i]`.
    `parents[i]` is the parent node index, or -1 for a child of the root (the last committed token)."""

    parents: list[int]

    def __post_init__(self) -> None:
        for i, p in enumerate(self.parents):
            if not -1 <= p < i:
                raise ValueError(f"node {i} has parent {p}: parents must come first")

    def __len__(self) -> int:
        return len(self.parents)

    @property
    def depths(self) -> list[int]:
        d: list[int] = []
        for p in self.parents:
            d.append(0 if p < 0 else d[p] + 1)
        return d

    def subset_parents(self, kept: list[int]) -> list[int]:
        """The parents of the subtree of nodes `kept` (sorted, each node's parent kept too), re-indexed into it."""
        index = {j: i for i, j in enumerate(kept)}
        return [index[self.parents[j]] if self.parents[j] >= 0 else -1 for j in kept]

    def children(self, node: int) -> list[int]:
        """Children of `node` (-1 = root), in node order."""
        return [i for i, p in enumerate(self.parents) if p == node]

    def ancestor_mask(self) -> torch.Tensor:
        """(N, N) bool: mask[i, j] = node j is node i or one of its ancestors."""
        n = len(self.parents)
        m = torch.zeros(n, n, dtype=torch.bool)
        for i, p in enumerate(self.parents):
            m[i, i] = True
            if p >= 0:
                m[i] |= m[p]
        return m

    def attention_mask(self) -> torch.Tensor:
        """(1 + N, 1 + N) bool mask of a verify pass over [root, node 0..N-1] (the root = the pending token):
        every row sees the root and its own ancestors; the root sees only itself."""
        n = len(self.parents)
        mask = torch.zeros(1 + n, 1 + n, dtype=torch.bool)
        mask[:, 0] = True
        mask[1:, 1:] = self.ancestor_mask()
        return mask

    def positions(self) -> torch.Tensor:
        """(1 + N,) long: each row's offset from the root (the root 0, a node its depth + 1)."""
        return torch.tensor([0] + [d + 1 for d in self.depths])

    @staticmethod
    def chain(n: int) -> "DraftTree":
        return DraftTree(parents=list(range(-1, n - 1)))

    @staticmethod
    def of(parents: list[int]) -> "DraftTree | None":
        """The tree `parents` describe, or None where it is a chain (the loop's cheaper path)."""
        return None if parents == list(range(-1, len(parents) - 1)) else DraftTree(parents)


def merge_trees(first: tuple[list, ...], second: tuple[list, ...], budget: int) -> tuple[list, ...]:
    """The union of two draft trees (tokens, parents, *columns), `first`'s nodes before `second`'s, a path both hold
    kept once (with `first`'s columns), cut to `budget` nodes. Each input is in topological order, so every kept
    node's parent is kept before it. Columns (per-node lists, e.g. scores, kinds): as many in both inputs; each
    comes back merged like the tokens."""
    if len(first) != len(second):
        raise ValueError(f"merge_trees: {len(first) - 2} columns against {len(second) - 2}")
    paths: dict[tuple[int, ...], int] = {}
    tokens: list[int] = []
    parents: list[int] = []
    columns: list[list] = [[] for _ in first[2:]]
    for toks, pars, *cols in (first, second):
        own: list[tuple[int, ...]] = []
        for j, (t, p) in enumerate(zip(toks, pars)):
            path = (own[p] if p >= 0 else ()) + (t,)
            own.append(path)
            if path in paths or len(tokens) >= budget:
                continue
            if p >= 0 and path[:-1] not in paths:
                continue  # its parent was cut: so is the node
            paths[path] = len(tokens)
            tokens.append(t)
            parents.append(paths[path[:-1]] if p >= 0 else -1)
            for out, col in zip(columns, cols):
                out.append(col[j])
    return (tokens, parents, *columns)


@dataclass
class Draft:
    """Candidate tokens proposed by a drafter.

    tokens: (B, K) long. K == 0 is a valid, empty draft.
    q:      (B, K, V) float draft distributions the tokens were sampled from (after temperature/top-k/top-p),
            or None for a deterministic drafter (then q is one-hot at each token, which keeps sampling lossless).
    tree:   None for a chain; else the tree the K nodes form.
    scores: None, or (B, K) float: the drafter's own estimate of each node's path probability (the chance that the
            node and all its ancestors are accepted), e.g. ADED's product of tri-gram priors, the suffix drafter's
            share of occurrences. Read by callers that ration drafted tokens (the vLLM proposers at batch > 1);
            never by verification, so a wrong estimate costs speed, not correctness.
    """

    tokens: torch.Tensor
    q: torch.Tensor | None = None
    tree: DraftTree | None = None
    scores: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)  # drafter-specific stats (tree size, search time...)

    @property
    def length(self) -> int:
        return int(self.tokens.shape[1])

    @staticmethod
    def empty(batch: int = 1) -> "Draft":
        return Draft(tokens=torch.zeros(batch, 0, dtype=torch.long))


@dataclass
class DraftContext:
    """What a drafter may look at when proposing.

    tokens:    (B, T) every committed token so far (prompt + generated).
    prompt_len: number of prompt tokens at the start of `tokens`.
    max_draft: upper bound on draft length for this round (from the policy and the remaining budget).
    policy:    the candidate-length policy; drafters that draft token by token ask
               `policy.keep_drafting(step)` after each token.
    policy_k:  what the policy's `max_draft()` said this round, before the loop's caps (tree drafters use it
               as a depth cap; drafters never call `max_draft()` themselves).
    """

    tokens: torch.Tensor
    prompt_len: int
    max_draft: int
    policy: "CandidatePolicy"
    sampling: SamplingConfig
    generator: torch.Generator | None = None
    policy_k: int | None = None


@dataclass
class VerifyResult:
    """The outcome of one verification (see `specdec.verify.verify`).

    tokens:        (B, A+1) the tokens to commit: A accepted draft tokens then one target token
                   (the *bonus* token if every drafted token on the path was accepted, else the
                   *recovered* token that replaces the first rejected one).
    num_accepted:  A, the number of accepted draft tokens.
    draft_length:  K, how many tokens were drafted (tree: number of nodes).
    accepted_nodes: indices (into the draft) of the accepted tokens, in order; for a chain this is [0..A).
    bonus:         True when the last token is a bonus token (all of the path accepted).
    top_ids:       None, or (K+1, k) long: the target's k likeliest tokens at each row of the verify pass (row 0
                   after the committed context, row i+1 after draft node i), filled by the loop when the drafter
                   asks for them (`Drafter.target_topk`); rows of rejected nodes included.
    top_probs:     None, or (K+1, k) float: their probabilities under the target (softmax of the raw logits).
    """

    tokens: torch.Tensor
    num_accepted: int
    draft_length: int
    accepted_nodes: list[int]
    bonus: bool
    top_ids: torch.Tensor | None = None
    top_probs: torch.Tensor | None = None


@runtime_checkable
class Drafter(Protocol):
    """Everything the loop, the API and the policies rely on. `DrafterBase` gives the defaults."""

    name: str
    runner: Any  # the draft model's Runner (its measured one-row pass is a drafted token's cost), or None
    compile_seconds: float  # warm-up compile time so far (reported apart from steady-state draft time)
    target_topk: int  # how many of the target's likeliest tokens per verified row `observe` reads (0: none)

    def draft_limit(self, policy_max: int) -> int:
        """Draft tokens wanted this round when the policy allows `policy_max` (tree drafters: a node budget)."""

    def start(self, prompt_ids: torch.Tensor) -> None:
        """Called once at the start of every generation; forget all per-generation state."""

    def propose(self, ctx: DraftContext) -> Draft:
        """Propose at most ctx.max_draft tokens continuing ctx.tokens."""

    def observe(self, result: VerifyResult) -> None:
        """Learn what was committed (roll back caches, adapt statistics)."""

    def score_bound(self, tokens: torch.Tensor) -> float | None:
        """A cheap upper bound on the score (`Draft.scores`) of any node the next `propose` after `tokens`
        (B, T) could return, or None where the drafter has none. A caller that rations rows skips the search
        when even the bound does not pay (vLLM's proposers at batch > 1); it never changes what is proposed."""

    def fork(self) -> "Drafter":
        """A drafter for another generation running beside this one (batched serving: vLLM's proposers keep one
        per request); per-generation state is its own, heavy read-only state (a store's base) may be shared."""


class DrafterBase:
    """The defaults of every hook the `Drafter` protocol declares (HF's candidate generator does the same):
    no draft model, no compile time, none of the target's top tokens, the policy's k as the budget, nothing to
    reset or learn. A drafter overrides what it needs and implements `propose`."""

    name: str = "drafter"
    runner: Any = None
    compile_seconds: float = 0.0
    target_topk: int = 0

    def draft_limit(self, policy_max: int) -> int:
        return policy_max

    def start(self, prompt_ids: torch.Tensor) -> None:
        pass

    def propose(self, ctx: DraftContext) -> Draft:  # pragma: no cover - every drafter implements it
        raise NotImplementedError

    def observe(self, result: VerifyResult) -> None:
        pass

    def score_bound(self, tokens: torch.Tensor) -> float | None:
        return None

    def fork(self) -> "DrafterBase":
        """Drafters with per-generation state (a draft model's KV cache) serve one generation at a time."""
        from specdec.errors import InputError

        raise InputError(f"drafter {self.name!r} runs one generation at a time: it cannot serve requests side by "
                         "side (model-free drafters can: prompt-lookup, aded)")
