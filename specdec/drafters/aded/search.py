"""ADED's draft search: PUCT Monte-Carlo tree search over the tri-gram store, from the last two tokens.

Each search node is a token; its children are the store's successors of (parent token, its token), with
priors P = the successors' weights normalised over the pair. One iteration walks down from the root
choosing, at every node s, the child a maximising the PUCT score (MuZero's form, ADED's constants):

    Q(s, a) + P(s, a) * sqrt(N(s)) / (1 + N(s, a)) * (c1 + log((N(s) + c2 + 1) / c2))

until it reaches an unexpanded node (expanded, unless at `search_depth`) and backs up the value of the
path: its expected number of accepted tokens under the store, sum over the path of prod(P). Q is the
mean backed-up value. With c1 = 32 the exploration term dominates, so visits spread about in proportion
to the path probabilities. Then the `top_paths` most visited root-to-leaf paths are kept, each extended by
its best successor, merged into a token tree (siblings are distinct tokens by construction) and cut to the
node/depth budget by visits (ties: path probability), which keeps ancestors before descendants.

Pure Python on small lists: ~150 iterations x depth 4 x <= 12 children per call (timed in docs/aded.md).
`search="best"` takes the nodes of highest path probability instead (best-first, one lookup per node).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from specdec.drafters.aded.config import AdedConfig
from specdec.drafters.aded.store import TrigramStore


@dataclass
class SearchResult:
    """A draft tree in topological order (parents[i] < i, -1 = child of the root)."""

    tokens: list[int] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    path_probs: list[float] = field(default_factory=list)  # prod of priors from the root, per node
    visits: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # per node, where a merge made them differ: its calibration kind
    search_nodes: int = 0  # nodes the MCTS created
    ms: float = 0.0

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def depth(self) -> int:
        d: list[int] = []
        for p in self.parents:
            d.append(1 if p < 0 else d[p] + 1)
        return max(d, default=0)

    @property
    def scores(self) -> list[float | None]:
        """Each node's path probability, None where it has none (a result built without them)."""
        return self.path_probs if len(self.path_probs) == len(self) else [None] * len(self)

    @property
    def expected_accepted(self) -> float:
        """Sum of the nodes' path probabilities: the store's estimate of accepted tokens per round."""
        return sum(p for p in self.path_probs if p is not None)


class _Tree:
    """Flat node table; node 0 is the root (the last committed token b, preceded by a)."""

    def __init__(self, store: TrigramStore, a: int | None, b: int, backoff: bool) -> None:
        self.store, self.backoff = store, backoff
        self.tok, self.prev, self.par, self.dep = [b], [a], [-1], [0]
        self.prior, self.pp, self.N, self.W = [1.0], [1.0], [0], [0.0]
        self.kids: list[list[int] | None] = [None]  # None = not expanded yet

    def lookup(self, i: int) -> tuple[list[int], list[float]]:
        return self.store.successors(self.prev[i], self.tok[i], self.backoff)

    def add(self, i: int, c: int, p: float) -> int:
        j = len(self.tok)
        self.tok.append(c)
        self.prev.append(self.tok[i])
        self.par.append(i)
        self.dep.append(self.dep[i] + 1)
        self.prior.append(p)
        self.pp.append(self.pp[i] * p)
        self.N.append(0)
        self.W.append(0.0)
        self.kids.append(None)
        return j

    def expand(self, i: int) -> None:
        succ, w = self.lookup(i)
        z = sum(w) or 1.0
        self.kids[i] = [self.add(i, c, wc / z) for c, wc in zip(succ, w)]

    def best_successor(self, i: int) -> int | None:
        """The child with the highest prior (created if node i was never expanded), or None."""
        if self.kids[i]:
            return self.kids[i][0]
        succ, w = self.lookup(i)
        if not succ:
            return None
        return self.add(i, succ[0], w[0] / (sum(w) or 1.0))


def _mcts(tree: _Tree, cfg: AdedConfig, depth: int) -> None:
    c1, c2 = cfg.c1, cfg.c2
    kids, N, W, prior, pp, dep = tree.kids, tree.N, tree.W, tree.prior, tree.pp, tree.dep
    for _ in range(cfg.iterations):
        i, path, value = 0, [0], 0.0
        while True:
            ch = kids[i]
            if ch is None:
                if dep[i] < depth:
                    tree.expand(i)
                break
            if not ch:  # dead end: the store knows no successor
                break
            n = N[i]
            coef = math.sqrt(n) * (c1 + math.log((n + c2 + 1) / c2))
            best, best_s = ch[0], -1.0
            for j in ch:
                nj = N[j]
                s = (W[j] / nj if nj else 0.0) + prior[j] * coef / (1 + nj)
                if s > best_s:
                    best, best_s = j, s
            i = best
            path.append(i)
            value += pp[i]
        for j in path:
            N[j] += 1
            W[j] += value


def search(store: TrigramStore, a: int | None, b: int, cfg: AdedConfig, max_nodes: int | None = None,
           max_depth: int | None = None) -> SearchResult:
    """Draft tree continuing `... a, b` within `max_nodes` nodes and `max_depth` levels (default: cfg's)."""
    t0 = time.perf_counter()
    max_nodes = cfg.max_nodes if max_nodes is None else max_nodes
    max_depth = cfg.max_depth if max_depth is None else max_depth
    if max_nodes < 1 or max_depth < 1:
        return SearchResult(ms=(time.perf_counter() - t0) * 1e3)
    tree = _Tree(store, a, b, cfg.backoff)
    tree.expand(0)
    if not tree.kids[0]:  # unknown context: no draft (the common case with an empty store)
        return SearchResult(search_nodes=1, ms=(time.perf_counter() - t0) * 1e3)
    if cfg.chain:
        return _chain(tree, cfg, min(max_nodes, max_depth), t0)
    if cfg.search == "best":
        return _result(tree, _best_first(tree, max_nodes, max_depth), t0)
    _mcts(tree, cfg, min(cfg.search_depth, max_depth))
    N, pp, dep, par, kids = tree.N, tree.pp, tree.dep, tree.par, tree.kids
    # ---- the most visited root-to-leaf paths, each extended by its best successor
    leaves = [i for i in range(1, len(N)) if N[i] and not any(N[j] for j in (kids[i] or ()))]
    leaves.sort(key=lambda i: (-N[i], -pp[i]))
    cand: set[int] = set()
    for leaf in leaves[: cfg.top_paths]:
        i = leaf
        while i > 0 and i not in cand:
            cand.add(i)
            i = par[i]
        if cfg.extend and dep[leaf] < max_depth:
            ext = tree.best_successor(leaf)
            if ext is not None:
                cand.add(ext)
    # ---- cut to the budget: by visits, then path probability; a node enters only after its parent
    order = sorted((i for i in cand if dep[i] <= max_depth), key=lambda i: (-N[i], -pp[i], dep[i]))
    chosen: list[int] = []
    inside = {0}
    for i in order:
        if len(chosen) >= max_nodes:
            break
        if par[i] in inside:
            chosen.append(i)
            inside.add(i)
    return _result(tree, chosen, t0)


def _best_first(tree: _Tree, max_nodes: int, max_depth: int) -> list[int]:
    """The `max_nodes` nodes of highest path probability within `max_depth` (EAGLE-2's ranking): the tree whose
    sum of path probabilities, the store's expected accepted length, is largest for its size. A path's
    probability never grows along it (priors <= 1), so every node is taken after its parent. One store lookup
    per node taken, against MCTS's 150 walks."""
    import heapq

    frontier = [(-tree.pp[j], tree.dep[j], j) for j in tree.kids[0]]  # the root is expanded by search()
    heapq.heapify(frontier)
    chosen: list[int] = []
    while frontier and len(chosen) < max_nodes:
        _, d, i = heapq.heappop(frontier)
        chosen.append(i)
        if d < max_depth:
            tree.expand(i)
            for j in tree.kids[i]:
                heapq.heappush(frontier, (-tree.pp[j], tree.dep[j], j))
    return chosen


def _chain(tree: _Tree, cfg: AdedConfig, length: int, t0: float) -> SearchResult:
    """The best single path: the most visited child at each level, then the best successors."""
    _mcts(tree, cfg, min(cfg.search_depth, length))
    chosen, i = [], 0
    while len(chosen) < length:
        visited = [j for j in (tree.kids[i] or ()) if tree.N[j]]
        nxt = max(visited, key=lambda j: (tree.N[j], tree.pp[j])) if visited else tree.best_successor(i)
        if nxt is None:
            break
        chosen.append(nxt)
        i = nxt
    return _result(tree, chosen, t0)


def _result(tree: _Tree, chosen: list[int], t0: float) -> SearchResult:
    rank = {i: r for r, i in enumerate(chosen)}
    nodes = sorted(chosen, key=lambda i: (tree.dep[i], rank[i]))  # topological; better siblings first
    index = {i: k for k, i in enumerate(nodes)}
    return SearchResult(
        tokens=[tree.tok[i] for i in nodes],
        parents=[index.get(tree.par[i], -1) for i in nodes],
        path_probs=[tree.pp[i] for i in nodes],
        visits=[tree.N[i] for i in nodes],
        search_nodes=len(tree.tok),
        ms=(time.perf_counter() - t0) * 1e3,
    )
