"""prompt-lookup: the most recent earlier occurrence of the longest matching n-gram, its continuation as the draft."""
from __future__ import annotations

import pytest
import torch

import spec_helpers  # noqa: F401  (imports specdec before policies)
from policies.simple import ConstantPolicy
from specdec.config import SamplingConfig
from specdec.drafters import DRAFTERS, DrafterEnv
from specdec.drafters.base import DraftContext
from specdec.drafters.prompt_lookup import PromptLookupDrafter
from specdec.errors import InputError


def propose(seq, max_draft=10, prompt_len=None, **opts):
    d = PromptLookupDrafter(**opts)
    t = torch.tensor([seq])
    d.start(t)
    ctx = DraftContext(t, len(seq) if prompt_len is None else prompt_len, max_draft, ConstantPolicy(k=max_draft),
                       SamplingConfig())
    return d.propose(ctx)


def test_copies_the_continuation_of_the_most_recent_match():
    #        0  1  2  3  4  5  6  7  8
    seq = [1, 2, 3, 1, 2, 4, 9, 1, 2]  # suffix (1, 2) occurs at 0 and 3: the latest (3) continues with 4, 9, 1, 2
    out = propose(seq)
    assert out.tokens.tolist() == [[4, 9, 1, 2]]
    assert out.q is None and out.tree is None  # deterministic chain
    assert out.info["ngram"] == 2


def test_prefers_the_longer_ngram_over_a_more_recent_shorter_one():
    seq = [5, 6, 7, 10, 0, 6, 7, 11, 3, 5, 6, 7]  # 3-gram (5,6,7) at 0 -> 10...; 2-gram (6,7) latest at 5 -> 11
    out = propose(seq, max_ngram=3)
    assert out.tokens.tolist() == [[10, 0, 6, 7, 11, 3, 5, 6, 7]]
    assert out.info["ngram"] == 3
    out = propose(seq, max_ngram=2)  # with bigrams at most, the latest bigram wins
    assert out.tokens.tolist() == [[11, 3, 5, 6, 7]]


def test_respects_max_draft():
    seq = [1, 2, 3, 4, 5, 6, 7, 1, 2]
    assert propose(seq, max_draft=3).tokens.tolist() == [[3, 4, 5]]
    assert propose(seq, max_draft=1).tokens.tolist() == [[3]]


def test_searches_generated_tokens_too():
    seq = [8, 9, 20, 21, 22, 20, 21]  # prompt is [8, 9]; the match is in the output
    assert propose(seq, prompt_len=2).tokens.tolist() == [[22, 20, 21]]


def test_the_suffix_itself_is_not_a_match():
    out = propose([3, 4, 5, 6])  # every n-gram ending at the last token occurs only there
    assert out.length == 0


def test_empty_draft_when_nothing_matches():
    out = propose([10, 11, 12, 13, 14])
    assert out.length == 0
    assert out.tokens.shape == (1, 0) and out.tokens.dtype == torch.long  # no sentinel token
    assert out.q is None and out.tree is None


def test_one_token_context_gives_an_empty_draft():
    assert propose([7]).length == 0


def test_min_ngram():
    seq = [4, 1, 2, 9, 2]  # only a unigram (2) matches
    assert propose(seq, min_ngram=1).tokens.tolist() == [[9, 2]]
    assert propose(seq, min_ngram=2).length == 0


def test_the_match_can_overlap_the_suffix():
    seq = [7, 7, 7, 7]  # (7,7,7) at 0 is followed by 7
    assert propose(seq).tokens.tolist() == [[7]]


@pytest.mark.parametrize("mn,mx", [(0, 3), (3, 2)])
def test_invalid_ngram_range(mn, mx):
    with pytest.raises(InputError, match="min_ngram"):
        PromptLookupDrafter(max_ngram=mx, min_ngram=mn)


def test_registered_with_options():
    env = DrafterEnv(target_tokenizer=None, target_runner=None, load_model=lambda name: None)
    d = DRAFTERS.create("prompt-lookup", env=env, max_ngram=5, min_ngram=2)
    assert isinstance(d, PromptLookupDrafter) and (d.max_ngram, d.min_ngram) == (5, 2)
