"""ADED's numbers in one frozen dataclass: the published defaults (Liu et al., AAAI 2025) plus the
CPU tree budget measured on this project's machine (see docs/aded.md)."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from specdec.errors import InputError


SEARCHES = ("mcts", "best")
COMPILED_NODES = 7  # node budget with a compiled target: 1 + 7 tokens fill the 8-token bucket


@dataclass(frozen=True)
class AdedConfig:
    # ---- tri-gram store
    top_k: int = 12  # successors kept per token pair (published: 12)
    # ---- online adaptation (published rule)
    adapt: bool = True
    increment: float = 0.04  # added to w(a, b -> c) per occurrence of (a, b, c) in the window, per round
    cap: float = 3.0  # upper bound of an adapted weight
    window: int = 16  # the last `window` committed tokens are reinforced after each verification
    learn_prompt: bool = True  # reinforce every tri-gram of the prompt at start()
    persist: bool = False  # keep the store's adaptation across generate() calls (default: reset to the base store)
    backoff: bool = True  # pair (a, b) unknown -> use the bigram successors of b (not in the paper)
    # the target's k likeliest tokens at every row of each verify pass (rejected nodes' rows too) become the
    # weights of the row's tri-gram (Token Recycling, Luo et al. 2024): the store learns what the target itself
    # predicts, not only what it committed. 0: off. Measured in one process, 18 prompts (docs/aded.md, "Recycling
    # the target's guesses"): tau 1.27 -> 1.30 and 0.99x the time with this machine's sized trees (Zen 4), tau
    # 1.42 -> 1.49 with trees sized on a Sapphire Rapids curve, 1.59 -> 1.71 with 8 nodes verified every round;
    # 8 tokens a row gave no more than 4. The loop's top-k costs ~1.7 ms for a 5-row pass.
    recycle: int = 4
    # ---- the search: "mcts" (PUCT, the paper's) or "best" (the nodes of highest path probability, best-first).
    # Measured (docs/aded.md, 18 prompts, one process): best-first tau 1.33 vs 1.31 and 0.98x the time with this Zen 4
    # machine's sized trees (its search 0.4x the time), but tau 1.45 vs 1.49 with trees sized on a Sapphire Rapids curve
    search: str = "mcts"
    # ---- PUCT / MCTS search (published defaults)
    iterations: int = 150
    search_depth: int = 4  # depth of the MCTS tree
    c1: float = 32.0
    c2: float = 8.0
    top_paths: int = 24  # most-visited root-to-leaf paths kept ...
    extend: bool = True  # ... each extended by its best successor (one more level)
    # ---- tree budget. Published (GPU): 64 nodes, depth 5 (= search_depth + the extension); see `published()`.
    # CPU default: search up to 16 nodes, then keep only those that pay (`sized`), with the longest suffix
    # match's continuation first (`suffix`). Measured side by side (issue 13's full-size run, 85 prompts,
    # interleaved, docs/aded.md): 1.11x plain vs 1.02x for the earlier default (5 nodes, depth 4, neither),
    # identical outputs; it won in every ablation before it too. Compiled runners pad to buckets (1, 2, 4, 8, ...),
    # so the `aded` factory caps the search at COMPILED_NODES there (1 + 7 = bucket 8).
    max_nodes: int = 16
    max_depth: int = 4
    depth_from_policy: bool = True  # the policy's k (ctx.policy.max_draft()) caps the depth
    chain: bool = False  # ablation: draft only the best single path (a chain) instead of a tree
    # per round, keep only the nodes whose calibrated path probability pays for their row on the target's
    # measured pass costs (specdec.budget; max_nodes is then the search's cap). Without costs nothing is cut.
    sized: bool = True
    # ---- longer matches than a tri-gram (specdec/drafters/suffix.py): where the committed text's longest
    # suffix match is at least `suffix_min_match` tokens, that match's continuation tree goes first and the
    # tri-gram tree fills the rest of the node budget
    suffix: bool = True
    suffix_min_match: int = 3
    suffix_max_match: int = 32

    def __post_init__(self) -> None:
        positive = ("top_k", "iterations", "search_depth", "top_paths", "max_nodes", "max_depth", "window",
                    "suffix_min_match", "suffix_max_match")
        for name in positive:
            if getattr(self, name) < 1:
                raise InputError(f"aded: {name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.recycle <= self.top_k:
            raise InputError(f"aded: recycle must be between 0 (off) and top_k ({self.top_k}), got {self.recycle}")
        if self.search not in SEARCHES:
            raise InputError(f"aded: search must be one of {', '.join(SEARCHES)}, got {self.search!r}")
        if self.increment < 0 or self.cap <= 0:
            raise InputError(f"aded: need increment >= 0 and cap > 0, got {self.increment}, {self.cap}")
        if self.c1 <= 0 or self.c2 <= 0:
            raise InputError(f"aded: c1 and c2 must be > 0, got {self.c1}, {self.c2}")

    @classmethod
    def published(cls) -> "AdedConfig":
        """The paper's GPU setting: trees of up to 64 nodes, depth 5, every node verified, no suffix matches."""
        return cls(max_nodes=64, max_depth=5, sized=False, suffix=False)

    def with_options(self, **opts) -> "AdedConfig":
        """A copy with `opts` replaced; unknown names raise an InputError listing the known ones."""
        known = {f.name for f in fields(self)}
        bad = sorted(set(opts) - known)
        if bad:
            raise InputError(f"aded: unknown option(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
        return replace(self, **opts)
