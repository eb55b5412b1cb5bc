"""ADED's cost-sized trees (`sized=true`): the tree the search finds, cut per round to the nodes whose calibrated
path probability pays for their row on the target's pass costs (specdec.budget.select)."""
from __future__ import annotations

import torch

from policies import POLICIES
from specdec.config import SamplingConfig
from specdec.drafters.aded.config import AdedConfig
from specdec.drafters.aded.drafter import AdedDrafter
from specdec.drafters.aded.store import TrigramStore
from specdec.drafters.base import DraftContext, VerifyResult
from specdec.runners.costs import PassCosts

V = 40
FLAT = PassCosts((1, 64), (0.1, 0.1))  # rows cost nothing beside the pass
DEAR = PassCosts((1, 65), (0.11, 0.75))  # each row adds 1/11 of a 1-row pass


def drafter(costs) -> AdedDrafter:
    # several continuations per pair: a tree of likely and unlikely branches
    text = [1, 2, 3, 4, 5, 1, 2, 3, 6, 7, 1, 2, 8, 9, 1, 2, 3, 4, 5, 1, 2, 3, 4, 10] * 3
    store = TrigramStore.build([text], V, meta={"tokenizer": "toy"})
    d = AdedDrafter(store, AdedConfig(max_nodes=16, max_depth=5, sized=True, adapt=False, suffix=False), costs)
    d.start(torch.tensor([[5, 1]]))
    return d


def propose(d: AdedDrafter, seq=(5, 1, 2)):
    ctx = DraftContext(tokens=torch.tensor([list(seq)]), prompt_len=1, max_draft=16,
                       policy=POLICIES.create("constant", k=5), sampling=SamplingConfig(), policy_k=5)
    return d.propose(ctx)


def test_sized_trees_keep_everything_on_a_flat_curve_and_cut_on_a_steep_one():
    full = propose(drafter(None))  # no costs: nothing cut
    flat, dear = propose(drafter(FLAT)), propose(drafter(DEAR))
    assert flat.length == full.length > 4
    assert 0 < dear.length < full.length
    assert propose(drafter(PassCosts((1, 64), (0.01, 0.64)))).length == 0  # a pass that costs its rows: none pays
    assert dear.scores is not None and torch.all(dear.scores[0] > 0)
    tree = dear.tree.parents if dear.tree is not None else list(range(-1, dear.length - 1))
    assert all(p < i for i, p in enumerate(tree))  # still a tree in topological order


def test_outcomes_calibrate_the_store_probabilities():
    d = drafter(PassCosts((1, 64), (0.1, 0.74)))  # T' = 0.01 s a row
    before = propose(d).length
    for _ in range(60):  # the store is sure and the target never agrees
        draft = propose(d)
        d.observe(VerifyResult(tokens=torch.tensor([[0]]), num_accepted=0, draft_length=draft.length,
                               accepted_nodes=[], bonus=False))
    after = propose(d).length
    assert before > 0 and after < before  # drafts that never pay shrink


def test_the_score_bound_covers_every_node_of_the_next_draft_in_one_lookup():
    d = drafter(None)
    for seq in ((5, 1, 2), (1, 2, 3), (2, 3, 4), (9, 1, 2), (3, 6, 7), (7, 39)):
        bound, draft = d.score_bound(torch.tensor([list(seq)])), propose(d, seq)
        assert bound is not None and 0 <= bound <= 1
        if draft.length:
            assert float(draft.scores.max()) <= bound + 1e-6  # a path's probability is at most its first prior
            assert float(draft.scores.max()) == bound or draft.tree is not None  # the likeliest first node
        else:
            assert bound == 0.0  # nothing known after these tokens
    suffix = AdedDrafter(d.store, AdedConfig(suffix=True))
    assert suffix.score_bound(torch.tensor([[1, 2]])) is None  # its match nodes score otherwise


def test_calibration_is_kept_across_generations_the_store_adaptation_only_with_persist():
    for persist in (False, True):
        text = [1, 2, 3, 4, 5, 1, 2, 3, 6, 7] * 3
        store = TrigramStore.build([text], V, meta={"tokenizer": "toy"})
        d = AdedDrafter(store, AdedConfig(max_nodes=16, max_depth=5, sized=True, suffix=False, persist=persist),
                        PassCosts((1, 64), (0.1, 0.74)))
        d.start(torch.tensor([[5, 1, 9, 9, 9]]))
        for _ in range(20):  # the target never agrees
            draft = propose(d)
            d.observe(VerifyResult(tokens=torch.tensor([[0]]), num_accepted=0, draft_length=draft.length,
                                   accepted_nodes=[], bonus=False))
        counts = {k: list(v) for k, v in d.sizer.calibration.counts.items()}
        assert counts  # outcomes were learnt
        d.start(torch.tensor([[5]]))  # one token: nothing of its own to learn
        assert d.sizer.calibration.counts == counts, f"persist={persist}: what the scores mean is kept"
        assert bool(d.store.live) == persist  # the first prompt's tri-grams: kept only with persist


def test_a_suffix_merged_tree_keeps_its_nodes_scores_and_kinds_and_calibrates_them_apart():
    from specdec.drafters.aded.drafter import suffix_kind

    text = [1, 2, 3, 4, 5, 22, 23, 30, 31] * 3  # the store's guess after (22, 23): 30
    store = TrigramStore.build([text], V, meta={"tokenizer": "toy"})
    d = AdedDrafter(store, AdedConfig(max_nodes=16, max_depth=4, sized=True, adapt=False, suffix=True), FLAT)
    seq = [20, 21, 22, 23, 24, 25, 30, 20, 21, 22, 23]  # the text repeats itself: a 4-token suffix match
    d.start(torch.tensor([seq[:1]]))
    seen, cut = {}, d.sizer.cut

    def spy(parents, scores, tokens, spent=0.0, kinds=None):  # what the sizer is given
        seen.update(kinds=list(kinds or []), scores=list(scores))
        return cut(parents, scores, tokens, spent, kinds)

    d.sizer.cut = spy
    draft = propose(d, seq)
    kinds = seen["kinds"]
    match = [k for k in kinds if k]
    assert match and set(match) == {suffix_kind(4)} and kinds[0] == suffix_kind(4)  # the match's nodes first
    assert draft.tokens[0, :2].tolist() == [24, 25]  # its continuation
    assert None not in seen["scores"] and len(kinds) == len(seen["scores"]) > len(match)  # store nodes too, scored
    assert draft.scores is not None and torch.all(draft.scores[0] > 0)
    # the target takes the match's first token and nothing of the store's: the kinds learn apart
    d.observe(VerifyResult(tokens=torch.tensor([[24, 0]]), num_accepted=1, draft_length=draft.length,
                           accepted_nodes=[0], bonus=False))
    counts = d.sizer.calibration.counts
    assert counts[(suffix_kind(4), 0, "score", 19, 0)] == [1.0, 1.0]
    assert sum(c[0] for k, c in counts.items() if k[0] == "") == 0.0  # store nodes: tested, none accepted
    assert sum(c[1] for k, c in counts.items() if k[0] == "") > 0


def test_suffix_kinds_group_match_lengths():
    from specdec.drafters.aded.drafter import suffix_kind

    assert [suffix_kind(n) for n in (1, 3, 4, 5, 6, 9, 10, 15, 16, 40)] == [
        "suffix:3", "suffix:3", "suffix:4", "suffix:4", "suffix:6", "suffix:6", "suffix:10", "suffix:10", "suffix:16",
        "suffix:16"]
