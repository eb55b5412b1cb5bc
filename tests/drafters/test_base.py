"""The drafter protocol's pieces: the base class's defaults, the tree's verify-pass mask and positions, and
that every registered drafter declares every hook the loop calls (no hasattr probing in the loop)."""
from __future__ import annotations

import pytest
import torch

from specdec.drafters import DRAFTERS
from specdec.drafters.base import Drafter, DrafterBase, DraftTree


def test_defaults_of_the_base_class():
    d = DrafterBase()
    assert d.runner is None and d.compile_seconds == 0.0 and d.draft_limit(7) == 7
    assert d.score_bound(torch.tensor([[1, 2, 3]])) is None  # no bound: callers search
    assert isinstance(d, Drafter)


def test_attention_mask_and_positions_of_a_tree():
    # root -> a(0) -> b(1); root -> c(2)
    t = DraftTree(parents=[-1, 0, -1])
    m = t.attention_mask()
    want = torch.tensor([[1, 0, 0, 0],   # the root sees itself
                         [1, 1, 0, 0],   # a: root, a
                         [1, 1, 1, 0],   # b: root, a, b
                         [1, 0, 0, 1]],  # c: root, c
                        dtype=torch.bool)
    assert torch.equal(m, want)
    assert t.positions().tolist() == [0, 1, 2, 1]
    chain = DraftTree.chain(3).attention_mask()
    assert torch.equal(chain, torch.ones(4, 4, dtype=torch.bool).tril())


def test_every_registered_drafter_declares_the_hooks_the_loop_calls():
    import inspect

    for name in DRAFTERS.names():
        factory = DRAFTERS.get(name)
        cls = inspect.signature(factory).return_annotation
        if isinstance(cls, str):
            cls = factory.__globals__[cls]
        assert issubclass(cls, DrafterBase), name
        for hook in ("draft_limit", "start", "propose", "observe", "compile_seconds", "runner"):
            assert hasattr(cls, hook), (name, hook)


def test_merge_trees_keeps_the_first_trees_nodes_first_and_each_path_once():
    from specdec.drafters.base import merge_trees

    first = ([5, 6, 7], [-1, 0, 0])  # 5 -> (6, 7)
    second = ([5, 6, 9, 8], [-1, 0, 1, -1])  # 5 -> 6 -> 9, and 8
    tokens, parents = merge_trees(first, second, budget=10)
    assert list(zip(tokens, parents)) == [(5, -1), (6, 0), (7, 0), (9, 1), (8, -1)]
    tokens, parents = merge_trees(first, second, budget=4)
    assert list(zip(tokens, parents)) == [(5, -1), (6, 0), (7, 0), (9, 1)]
    assert merge_trees(([], []), second, budget=2) == ([5, 6], [-1, 0])
    # columns travel with their nodes; a path both hold keeps the first tree's
    merged = merge_trees((*first, [0.9, 0.5, 0.4], ["a"] * 3), (*second, [0.8, 0.7, 0.6, 0.1], ["b"] * 4), budget=10)
    assert merged == ([5, 6, 7, 9, 8], [-1, 0, 0, 1, -1], [0.9, 0.5, 0.4, 0.6, 0.1], ["a", "a", "a", "b", "b"])
    with pytest.raises(ValueError):
        merge_trees((*first, [1.0] * 3), second, budget=4)
    DraftTree(parents)  # topological: a valid tree


def test_subset_parents_reindexes_a_parent_closed_subtree():
    from specdec.drafters.base import DraftTree

    tree = DraftTree([-1, 0, 0, 1, -1, 4])  # two branches from the root
    assert tree.subset_parents([0, 2, 4, 5]) == [-1, 0, -1, 2]
    assert tree.subset_parents([]) == []
