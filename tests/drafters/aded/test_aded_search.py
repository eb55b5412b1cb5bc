"""ADED's PUCT search: valid, deduplicated, topological trees within the budget; chain mode; speed."""
from __future__ import annotations


import numpy as np
import pytest

from specdec.drafters.aded.config import AdedConfig
from specdec.drafters.aded.search import search
from specdec.drafters.aded.store import TrigramStore
from specdec.drafters.base import DraftTree


def random_store(vocab: int = 40, tokens: int = 20_000, seed: int = 0, top_k: int = 12) -> TrigramStore:
    """A corpus from a random sparse Markov chain: every pair has a few likely successors."""
    rng = np.random.default_rng(seed)
    nxt = rng.integers(0, vocab, size=(vocab, 4))  # (V, 4) likely successors of each token
    p = np.array([0.55, 0.25, 0.12, 0.08])
    seq = [0]
    for _ in range(tokens):
        seq.append(int(nxt[seq[-1], rng.choice(4, p=p)]) if rng.random() < 0.9 else int(rng.integers(vocab)))
    return TrigramStore.build([seq], vocab, top_k=top_k)


def check_tree(res, store: TrigramStore, a: int, b: int, max_nodes: int, max_depth: int) -> None:
    assert 0 < len(res) <= max_nodes and res.depth <= max_depth
    tree = DraftTree(res.parents)  # raises unless topological
    assert len(tree) == len(res.tokens)
    for node in [-1, *range(len(res))]:
        kids = [res.tokens[i] for i in tree.children(node)]
        assert len(kids) == len(set(kids)), "siblings must be distinct tokens"
    # every node is a successor (in the store) of the two tokens before it
    ctx = {-1: (a, b)}
    for i, (t, p) in enumerate(zip(res.tokens, res.parents)):
        x, y = ctx[p]
        assert t in store.successors(x, y, backoff=True)[0]
        ctx[i] = (y, t)
    # path probabilities never grow along a path; better siblings come first
    for i, p in enumerate(res.parents):
        if p >= 0:
            assert res.path_probs[i] <= res.path_probs[p] + 1e-12


@pytest.mark.parametrize("how", ["mcts", "best"])
@pytest.mark.parametrize("nodes,depth", [(1, 1), (4, 2), (7, 3), (12, 4), (24, 5), (64, 5)])
def test_tree_valid_within_budget(nodes, depth, how):
    store = random_store()
    cfg = AdedConfig(search=how)
    for a, b in [(0, 1), (3, 7), (11, 2), (5, 5)]:
        succ = store.successors(a, b, backoff=True)[0]
        if not succ:
            continue
        res = search(store, a, b, cfg, max_nodes=nodes, max_depth=depth)
        check_tree(res, store, a, b, nodes, depth)
        if nodes >= 4 and depth >= 2:
            assert res.depth >= 2  # a sharp chain: the search goes deeper than one level
        assert res.tokens[0] == succ[0]  # the most likely first token is the first node


def test_published_defaults_give_a_bushy_tree():
    cfg = AdedConfig()
    assert (cfg.iterations, cfg.search_depth, cfg.c1, cfg.c2, cfg.top_paths) == (150, 4, 32.0, 8.0, 24)
    store = random_store()
    res = search(store, 0, 1, cfg, max_nodes=64, max_depth=5)
    tree = DraftTree(res.parents)
    assert len(res) > 10 and len(tree.children(-1)) > 1 and res.depth == 5  # the extension adds a level
    leaves = [i for i in range(len(res)) if not tree.children(i)]
    assert len(leaves) <= cfg.top_paths


def test_chain_mode_is_the_best_path():
    store = random_store()
    cfg = AdedConfig(chain=True)
    res = search(store, 0, 1, cfg, max_nodes=8, max_depth=4)
    assert res.parents == list(range(-1, len(res) - 1)) and 1 <= len(res) <= 4
    # a deterministic store: the chain follows the single successor
    det = TrigramStore.build([[1, 2, 3, 4, 5, 6, 7, 8]], 10)
    assert search(det, 1, 2, cfg, max_nodes=10, max_depth=5).tokens == [3, 4, 5, 6, 7]
    assert search(det, 1, 2, AdedConfig(), max_nodes=10, max_depth=5).tokens == [3, 4, 5, 6, 7]


def test_unknown_context_and_empty_budget():
    store = TrigramStore.build([[1, 2, 3]], 10, bigrams=False)
    cfg = AdedConfig()
    assert len(search(store, 4, 5, cfg)) == 0
    assert len(search(store, 1, 2, cfg, max_nodes=0)) == 0
    assert search(store, 1, 2, cfg).tokens == [3]
    assert search(store, None, 2, cfg).tokens == []  # no tri-gram context and no bigrams stored
    assert search(TrigramStore.empty(10), 1, 2, cfg).tokens == []


@pytest.mark.parametrize("nodes,depth", [(4, 2), (8, 4), (16, 4), (32, 5)])
def test_best_first_takes_the_nodes_of_highest_path_probability(nodes, depth):
    """search="best": no node left out has a higher path probability than a node taken (within the depth), so
    its expected accepted length under the store (sum of path probabilities) is at least the MCTS tree's."""
    store = random_store(seed=3)
    for a, b in [(0, 1), (3, 7), (11, 2)]:
        if not store.successors(a, b, backoff=True)[0]:
            continue
        best = search(store, a, b, AdedConfig(search="best"), max_nodes=nodes, max_depth=depth)
        mcts = search(store, a, b, AdedConfig(), max_nodes=nodes, max_depth=depth)
        assert best.expected_accepted >= mcts.expected_accepted - 1e-12
        # every path of the store within the depth, by brute force: the taken ones are the most probable
        paths = []

        def walk(x, y, pp, d):
            succ, w = store.successors(x, y, backoff=True)
            z = sum(w) or 1.0
            for c, wc in zip(succ, w):
                paths.append(pp * wc / z)
                if d + 1 < depth:
                    walk(y, c, pp * wc / z, d + 1)

        walk(a, b, 1.0, 0)
        want = sorted(paths, reverse=True)[: len(best)]
        assert sorted(best.path_probs, reverse=True) == pytest.approx(want)
        assert len(best) == min(nodes, len(paths))


def test_unknown_search_is_refused():
    from specdec.errors import InputError

    with pytest.raises(InputError, match="search must be one of mcts, best"):
        AdedConfig(search="beam")
