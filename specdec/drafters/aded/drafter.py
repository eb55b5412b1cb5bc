"""`aded`: the ADED drafter (Liu et al., AAAI 2025): tri-gram store + online adaptation + MCTS token tree.

Budget per round (docs/aded.md):
    nodes <= min(ctx.max_draft, cfg.max_nodes)                      default max_nodes 16 (7 if compiled)
    depth <= min(cfg.max_depth, nodes, policy k)                   default max_depth 4
(policy k = ctx.policy_k, the policy's max_draft() this round, used as the depth cap when depth_from_policy). ctx.max_draft is what
the loop allows: min(policy k, remaining tokens - 1, cache room - 1). If the loop asks a drafter with
`draft_limit(policy_k)` for its own wish (proposed loop change), the node budget comes from this config and
k only caps the depth; until then k caps the node count too (pass k >= nodes for larger trees).

Deterministic: q = None (verify() treats each node as one-hot, which keeps sampling lossless).
"""
from __future__ import annotations

from pathlib import Path

import torch

from specdec.budget import TreeSizer
from specdec.drafters.aded.config import COMPILED_NODES, AdedConfig
from specdec.drafters.aded.search import search
from specdec.drafters.aded.store import TrigramStore, check_tokenizer
from specdec.drafters.base import Draft, DraftContext, DrafterBase, DraftTree, VerifyResult
from specdec.drafters.registry import DRAFTERS, DrafterEnv
from specdec.errors import InputError


class AdedDrafter(DrafterBase):
    name = "aded"

    def __init__(self, store: TrigramStore, config: AdedConfig = AdedConfig(), costs=None) -> None:
        """costs: for `sized` trees, the target's pass costs (anything with `line(rows) -> (seconds, seconds per
        extra row)`, e.g. specdec.runners.costs.PassCosts), or None (nothing is cut)."""
        self.store = store
        self.config = config
        self._hist: list[int] = []  # committed tokens (prompt + output) of this generation
        self._proposed: tuple[list[int], list[int]] | None = None  # the last draft's (tokens, parents), until observed
        self.rounds: list[dict] = []  # per-round record of this generation (tree size, accepted depth, ms)
        self.costs = costs
        # store path probability -> chance of acceptance, kept across generations (what the store's scores mean
        # for this target, not one text's state). Measured (docs/aded.md, 2026-12-05 e, 22 prompts, one run): reset
        # each generation, ADED ran 1.03x plain (alpha 0.37); kept, with the store's adaptation kept too (persist),
        # 1.09x (alpha 0.53); kept with the store reset (this default) 1.11x in the 85-prompt run. The price: a
        # seeded *sampled* run repeats itself only on a fresh drafter (greedy output never depends on drafts).
        self.sizer = TreeSizer(costs)

    @property
    def target_topk(self) -> int:
        """The target's likeliest tokens per verified row that `observe` learns from (config `recycle`)."""
        return self.config.recycle if self.config.adapt else 0

    # ---- the loop's budget hook
    def draft_limit(self, policy_max: int) -> int:
        """Draft tokens wanted this round when the policy allows `policy_max`: the tree's node budget
        (the policy's k then caps the depth, not the node count). Chain mode: the policy's k."""
        return policy_max if self.config.chain else self.config.max_nodes

    def fork(self) -> "AdedDrafter":
        """Another generation's drafter beside this one: the same base store and config, its own adaptation."""
        return AdedDrafter(self.store.fork(), self.config, self.costs)

    # ---- protocol
    def start(self, prompt_ids: torch.Tensor) -> None:
        cfg = self.config
        if not cfg.persist:
            self.store.reset()
        self._hist = prompt_ids[0].tolist()
        self._proposed = None
        self.rounds = []
        self.sizer.reset_streak()
        if cfg.adapt and cfg.learn_prompt:
            self.store.update(self._hist, cfg.increment, cfg.cap, cfg.top_k, bigrams=cfg.backoff)

    def propose(self, ctx: DraftContext) -> Draft:
        cfg = self.config
        seq = ctx.tokens[0]  # (T,)
        nodes = min(ctx.max_draft, cfg.max_nodes)
        depth = min(cfg.max_depth, nodes)
        if cfg.depth_from_policy and ctx.policy_k is not None:
            depth = min(depth, max(int(ctx.policy_k), 1))
        if nodes < 1 or len(seq) == 0:
            return Draft.empty()
        b = int(seq[-1])
        a = int(seq[-2]) if len(seq) >= 2 else None
        res = search(self.store, a, b, cfg, max_nodes=nodes, max_depth=depth)
        info = {"tree_size": len(res), "tree_depth": res.depth, "search_ms": res.ms}
        if cfg.suffix:
            res, info["suffix_nodes"] = self._with_suffix(seq, res, nodes, depth)
            info["tree_size"] = len(res)
        expected = None
        if cfg.sized and len(res):
            res, expected = self._sized(res)
            info["tree_size"], info["tree_depth"] = len(res), res.depth
        info["expected"] = res.expected_accepted if expected is None else expected
        self.rounds.append(dict(info))
        if len(self.rounds) == 1:  # once per generation (stats.extra gets one-element lists)
            info.update(store_pairs=self.store.num_pairs, store_bytes=self.store.nbytes(), store_live_pairs=len(self.store.live))
        self._proposed = (res.tokens, res.parents)
        if not len(res):
            return Draft(tokens=torch.zeros(1, 0, dtype=torch.long), info=info)
        tokens = torch.tensor([res.tokens], dtype=torch.long)  # (1, N)
        tree = None if cfg.chain else DraftTree(parents=res.parents)
        scores = torch.tensor([res.scores], dtype=torch.float32) if None not in res.scores else None  # (1, N)
        return Draft(tokens=tokens, tree=tree, info=info, scores=scores)

    def score_bound(self, tokens: torch.Tensor) -> float | None:
        """The first node's prior at most (a path's probability is a product of priors): the largest share of the
        store's successors of the last two tokens, one lookup. None with `suffix` (its nodes score otherwise)."""
        if self.config.suffix:
            return None
        seq = tokens[0]  # (T,)
        if len(seq) == 0:
            return 0.0
        succ, w = self.store.successors(int(seq[-2]) if len(seq) >= 2 else None, int(seq[-1]), self.config.backoff)
        return w[0] / (sum(w) or 1.0) if succ else 0.0

    def _sized(self, res):
        """The nodes of `res` that pay for their row (specdec.budget.TreeSizer on the target's pass costs), each
        node's chance of acceptance from its score (store path probability, or a suffix match's share) as
        calibrated by this drafter's outcomes, per kind (tri-gram nodes, or suffix nodes by match length).
        Returns (the kept nodes, their calibrated expected accepted tokens: the sum of their chances)."""
        from specdec.drafters.aded.search import SearchResult

        kinds = res.kinds or None
        kept = self.sizer.cut(res.parents, res.scores, res.tokens, kinds=kinds)
        chances = self.sizer.chances(res.parents, res.scores, kinds)
        expected = sum(chances[j] for j in kept)
        if len(kept) == len(res):
            return res, expected
        pick = lambda xs: [xs[j] for j in kept] if xs else []  # noqa: E731
        return (SearchResult(tokens=pick(res.tokens), parents=DraftTree(res.parents).subset_parents(kept),
                             path_probs=pick(res.path_probs), visits=pick(res.visits), kinds=pick(res.kinds),
                             ms=res.ms), expected)

    def withdraw(self) -> None:
        """The last proposal was not verified (the hybrid drafted from another source this round): `observe` then
        learns only the committed text (no recycled rows of this tree, no accepted depth for its round). The
        sizer still labels the withdrawn tree's nodes by what the target commits (TreeSizer.LEARN = "all")."""
        self._proposed = None
        if self.rounds:
            self.rounds[-1]["withdrawn"] = True

    def _with_suffix(self, seq: torch.Tensor, res, nodes: int, depth: int):
        """The longest suffix match's continuation tree first (when the match is long enough), then the tri-gram
        tree's nodes, within the same budget; each node keeps its score (the match's share of occurrences through
        it, or the store's path probability) and its kind (`suffix_kind(match length)`, or "" for the store's).
        Returns (the merged result, how many nodes came from the match)."""
        import numpy as np

        from specdec.drafters.aded.search import SearchResult
        from specdec.drafters.base import merge_trees
        from specdec.drafters.suffix import SuffixConfig, continuation_tree, longest_match

        cfg = self.config
        hay = seq.numpy().astype(np.int64, copy=False)  # (T,)
        length, ends = longest_match(hay, hay, len(hay) - 1, cfg.suffix_max_match)
        if length < cfg.suffix_min_match:
            return res, 0
        scfg = SuffixConfig(max_match=cfg.suffix_max_match, nodes=nodes, depth=depth, chain=cfg.chain)
        first = continuation_tree(hay, ends, len(hay), scfg)
        kind = suffix_kind(length)
        if cfg.chain:  # one path: the match's, where it has one
            found = SearchResult(tokens=first.tokens, parents=first.parents, path_probs=first.scores,
                                 kinds=[kind] * len(first.tokens))
            return (found if first.tokens else res), len(first.tokens)
        tokens, parents, scores, kinds = merge_trees(
            (first.tokens, first.parents, first.scores, [kind] * len(first.tokens)),
            (res.tokens, res.parents, res.scores, res.kinds or [""] * len(res)), nodes)
        return (SearchResult(tokens=tokens, parents=parents, path_probs=scores, kinds=kinds, ms=res.ms),
                min(len(first.tokens), len(tokens)))

    def observe(self, result: VerifyResult) -> None:
        cfg = self.config
        if result.top_ids is not None and cfg.adapt:
            self._recycle(result)
        self._proposed = None
        self._hist += result.tokens[0].tolist()
        if self.rounds and "accepted" not in self.rounds[-1] and not self.rounds[-1].get("withdrawn"):
            self.rounds[-1]["accepted"] = result.num_accepted
        if cfg.sized:  # what was committed calibrates the store's path probabilities
            self.sizer.observe(result.accepted_nodes, result.tokens[0].tolist())
        if cfg.adapt:
            self.store.update(self._hist[-cfg.window:], cfg.increment, cfg.cap, cfg.top_k, bigrams=cfg.backoff)
        if len(self._hist) > 4 * cfg.window:
            self._hist = self._hist[-cfg.window:]

    def _recycle(self, result: VerifyResult) -> None:
        """Each verified row's tri-gram (the two tokens before the row's prediction: the committed text's last two
        for row 0, a node's parent and itself for the others) learns the target's guesses there."""
        h = self._hist
        b = h[-1]
        rows = [(h[-2] if len(h) >= 2 else None, b)]  # row 0: after the committed context
        if self._proposed is not None and len(self._proposed[0]) == result.draft_length:
            toks, parents = self._proposed
            rows += [(toks[p] if p >= 0 else b, t) for t, p in zip(toks, parents)]
        ids, probs = result.top_ids.tolist(), result.top_probs.tolist()  # (K+1, k) each
        for (a, c), succ, p in zip(rows, ids, probs):
            self.store.recycle(a, c, succ, p, self.config.top_k, bigrams=self.config.backoff)

    # ---- reporting
    def summary(self) -> dict:
        """This generation's ADED figures: mean tree size / depth / accepted depth, search time, store size."""
        r = self.rounds
        mean = lambda k: sum(x.get(k, 0) for x in r) / len(r) if r else 0.0  # noqa: E731
        return {"rounds": len(r), "mean_tree_size": mean("tree_size"), "mean_tree_depth": mean("tree_depth"),
                "mean_accepted_depth": mean("accepted"), "mean_search_ms": mean("search_ms"),
                "mean_expected_accepted": mean("expected"), "store": self.store.size_report()}


SUFFIX_CLASSES = (3, 4, 6, 10, 16)  # a suffix match's length class starts (tokens): its nodes' calibration kind


def suffix_kind(length: int) -> str:
    """The calibration kind of a suffix match's nodes: "suffix:<the class's shortest length>". Why by length: a
    match's continuation is as likely as the match is long (a 3-token match is often a common phrase, a 16-token
    one copies a passage), and with one occurrence every node's share is 1.0, so the share alone says nothing."""
    return f"suffix:{max(c for c in SUFFIX_CLASSES if c <= max(length, SUFFIX_CLASSES[0]))}"


BUNDLED_STORES = Path(__file__).parent / "stores"  # small self-distilled stores shipped with the package


def bundled_store(tokenizer) -> Path | None:
    """The shipped store built for this tokenizer (same vocabulary fingerprint), or None."""
    from specdec.errors import TokenizerMismatchError

    for path in sorted(BUNDLED_STORES.glob("*.safetensors")):
        try:
            check_tokenizer(TrigramStore.read_meta(path), tokenizer, path)
        except TokenizerMismatchError:
            continue
        return path
    return None


def _resolve_store(store: str | None, env: DrafterEnv, cfg: AdedConfig) -> TrigramStore:
    """store: "auto" (default: the bundled store when one matches the target's tokenizer, else empty),
    "bundled" (that store, or an error), None / "empty" (start empty), or a path."""
    tok = env.target_tokenizer
    vocab = max(env.target_runner.vocab_size if env.target_runner is not None else 0, len(tok) if tok is not None else 0)
    if store in ("auto", "bundled"):
        found = bundled_store(tok) if tok is not None else None
        if found is None and store == "bundled":
            names = ", ".join(p.name for p in sorted(BUNDLED_STORES.glob("*.safetensors"))) or "(none)"
            raise InputError(f"aded: no bundled store matches this target's tokenizer (shipped: {names}); "
                             "build one with `specdec aded build` or use store=empty")
        store = str(found) if found is not None else None
    if store in (None, "", "none", "empty"):
        return TrigramStore.empty(vocab, tokenizer=getattr(tok, "name_or_path", ""))
    path = Path(store).expanduser()
    if not path.exists():
        raise InputError(f"aded: no store file {path}; build one with `specdec aded build --from ... --out {path}` "
                         f"or pass store=None to start empty")
    loaded = TrigramStore.load(path)
    if tok is not None:
        check_tokenizer(loaded.meta, tok, path)
    return loaded


def _config(compiled: bool, nodes: int | None = None, depth: int | None = None, iterations: int | None = None,
            adapt: bool | None = None, chain: bool | None = None, **options) -> AdedConfig:
    """The AdedConfig the options ask for (short names: nodes, depth, iterations, adapt, chain), each value
    checked against its field's type first."""
    from specdec.validate import config_from_options

    if nodes is None and "max_nodes" not in options and compiled:
        nodes = COMPILED_NODES  # compiled target: the 8-token bucket costs the same for 1 + 5 and 1 + 7 tokens
    short = {"max_nodes": nodes, "max_depth": depth, "iterations": iterations, "adapt": adapt, "chain": chain}
    opts = {k: v for k, v in short.items() if v is not None} | options
    return config_from_options(AdedConfig, opts, "aded")


def _check(store: str | None = "auto", **options) -> None:
    """Before any model loads: the options' types and ranges, and a store path that exists as a store file."""
    _config(False, **options)
    if store is not None and not isinstance(store, str):
        raise InputError(f"--drafter-opt store={store!r}: expected auto, bundled, empty or a store file's path")
    if store not in (None, "", "none", "empty", "auto", "bundled"):
        path = Path(store).expanduser()
        if not path.is_file():
            what = "a folder" if path.is_dir() else "no such file"
            raise InputError(f"aded: store={store}: {what}; build one with `specdec aded build --from ... --out "
                             f"STORE.safetensors`, or pass store=empty to start empty")


@DRAFTERS.register("aded", check=_check)
def _build(env: DrafterEnv, store: str | None = "auto", **options) -> AdedDrafter:
    """Options: store ("auto" = the bundled store for the target's tokenizer if any, else empty; "bundled";
    "empty"; or the path of a `specdec aded build` file), nodes, depth, iterations,
    adapt, chain, and any other AdedConfig field (persist, backoff, increment, cap, window, c1, c2, ...)."""
    cfg = _config(env.compile, **options)
    costs = _target_costs(env) if cfg.sized and env.target_runner is not None else None  # no target: nothing cut
    return AdedDrafter(_resolve_store(store, env, cfg), cfg, costs)


def _target_costs(env: DrafterEnv):
    """The target runner's measured pass costs (once per machine, cached on disk), measured here, when the drafter is
    built, before any generation (measuring resets the runner's cache). Inside vLLM (model-free) the proposer
    sizes drafts itself and sets sized=false."""
    from specdec.runners.costs import pass_costs

    return pass_costs(env.target_runner, env.cache_dir)
