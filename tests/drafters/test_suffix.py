"""The `suffix` drafter: longest suffix match, continuation trees scored by occurrences, the corpus of earlier
outputs. (Greedy identity and the sampling test run for it from the registry in tests/runners/test_contract.py
and tests/engine/test_lossless.py like every drafter.)"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from policies import POLICIES
from specdec.config import SamplingConfig
from specdec.drafters import DRAFTERS
from specdec.drafters.base import DraftContext, VerifyResult
from specdec.drafters.suffix import SuffixConfig, SuffixDrafter, continuation_tree, longest_match
from specdec.errors import InputError


def ctx(seq, k=8):
    return DraftContext(tokens=torch.tensor([seq]), prompt_len=len(seq), max_draft=k,
                        policy=POLICIES.create("constant", k=k), sampling=SamplingConfig(), policy_k=k)


def test_longest_match_finds_every_occurrence_of_the_longest_suffix():
    hay = np.array([7, 1, 2, 3, 9, 5, 2, 3, 8, 1, 2, 3])
    length, ends = longest_match(hay, hay, len(hay) - 1, max_match=10)
    assert length == 3 and ends.tolist() == [3]  # "1 2 3" once before the suffix itself ("2 3" twice)
    length, ends = longest_match(hay, np.array([5, 2, 3]), len(hay), max_match=2)
    assert length == 2 and ends.tolist() == [3, 7, 11]  # capped at max_match
    assert longest_match(hay, np.array([42]), len(hay), 5)[0] == 0


def test_tree_nodes_are_scored_by_the_share_of_occurrences_through_them():
    hay = np.array([1, 2, 4, 5, -1, 1, 2, 4, 6, -1, 1, 2, 7, 7])
    tokens, parents, scores = continuation_tree(hay, np.array([1, 6, 11]), len(hay),
                                                SuffixConfig(nodes=8, depth=3, min_prob=0.3))
    assert tokens[0] == 4 and parents[0] == -1  # 2 of 3 occurrences continue with 4
    assert scores[0] == pytest.approx(2 / 3) and scores[tokens.index(7)] == pytest.approx(1 / 3)
    assert all(scores[i] <= scores[p] for i, p in enumerate(parents) if p >= 0)  # a path's share only shrinks
    assert set(zip(tokens, parents)) >= {(4, -1), (5, 0), (6, 0), (7, -1)}
    assert all(p < i for i, p in enumerate(parents))  # topological order
    chain, cp, _ = continuation_tree(hay, np.array([1, 6, 11]), len(hay), SuffixConfig(nodes=8, depth=3, chain=True))
    assert cp == list(range(-1, len(chain) - 1)) and chain[0] == 4


def test_drafts_long_repeats_and_learns_from_earlier_generations():
    d = DRAFTERS.create("suffix", env=None, persist=True)
    text = [3, 4, 5, 6, 7, 8, 9, 10, 11]
    d.start(torch.tensor([[1, 2] + text]))
    draft = d.propose(ctx([1, 2] + text + [3, 4, 5]))
    assert draft.tokens[0].tolist()[:6] == [6, 7, 8, 9, 10, 11] and draft.info["match"] == 3
    d.observe(VerifyResult(tokens=torch.tensor([text]), num_accepted=8, draft_length=8,
                           accepted_nodes=list(range(8)), bonus=True))
    assert d.propose(ctx([20, 21, 22])).length == 0  # a new request with nothing to match ...
    d.start(torch.tensor([[20, 21]]))  # ... but persist keeps the last generation's output as a corpus
    assert d.propose(ctx([20, 21, 5, 6, 7])).tokens[0].tolist()[:4] == [8, 9, 10, 11]
    other = d.fork()
    assert other.corpus is d.corpus and other._hist == []


@pytest.mark.parametrize("opts, phrase", [({"nodes": 0}, "nodes must be"), ({"min_match": 5, "max_match": 2},
                                          "min_match <= max_match"), ({"min_prob": 1.5}, "min_prob"),
                                         ({"nodez": 3}, "unknown option")])
def test_bad_options_are_refused_before_any_model(opts, phrase):
    with pytest.raises(InputError, match=phrase):
        DRAFTERS.check("suffix", **opts)


def test_short_matches_draft_nothing():
    d = SuffixDrafter(SuffixConfig(min_match=3))
    seq = [1, 2, 9, 8, 7, 1, 2]
    d.start(torch.tensor([seq]))
    assert d.propose(ctx(seq)).length == 0  # "1 2" repeats, but 2 < min_match
