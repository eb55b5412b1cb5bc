"""specdec.budget: the cost curve learnt from steps, the calibration of drafters' scores, and the
batch-wide choice of which drafted tokens to verify."""
from __future__ import annotations

import random

import pytest

from specdec.budget import BudgetConfig, Calibration, StepCosts, chain_parents, first_node_threshold, select


def chains(c: StepCosts, probs):
    """select() over chains: how many nodes of each are kept."""
    return [len(k) for k in select([(chain_parents(len(p)), p) for p in probs], c.line)]
from specdec.errors import InputError


def costs(points) -> StepCosts:
    """A fit through `points` (rows, seconds), each seen twice (the fit wants a few steps)."""
    c = StepCosts()
    for rows, t in list(points) * 2:
        c.observe(rows, t)
    return c


def plane(rows, ctx):
    return 0.1 + 0.01 * rows + 2e-5 * ctx


def test_step_costs_fit_the_slope_per_row_apart_from_context_growth():
    c = StepCosts()
    for step in range(60):  # the budget kicks in: rows fall while the context grows (buckets mixed the two up)
        rows, ctx = 40 - step // 3, 2000 + 50 * step
        c.observe(rows, plane(rows, ctx) + (0.002 if step % 2 else -0.002), ctx)
    t, slope = c.line(20, 5000)
    assert slope == pytest.approx(0.01, rel=0.05) and t == pytest.approx(plane(20, 5000), rel=0.02)
    assert c.at(5000)(20) == c.line(20, 5000)
    assert "ms a row" in c.describe()


def test_step_costs_need_rows_that_vary_and_follow_the_latest_steps():
    c = StepCosts(window=16)
    for _ in range(20):
        c.observe(32, 0.4, 8000)
    assert not c.known  # one row count: no slope
    with pytest.raises(ValueError):
        c.line(32)
    for step in range(16):  # the window holds only these: a new machine load, slope 0.02
        c.observe(30 + step % 4, 0.2 + 0.02 * (30 + step % 4), 8000)
    assert c.line(32)[1] == pytest.approx(0.02) and c.line(32)[0] == pytest.approx(0.84)
    down = costs([(8, 0.3), (16, 0.2)])  # noise that says more rows cost less: no slope below 0
    assert down.line(12)[1] == 0.0


def test_calibration_starts_at_the_score_and_follows_outcomes():
    cal = Calibration(prior=4)
    assert cal.q(0.92) == pytest.approx(Calibration.PRIOR_SCALE * 0.925)  # a share of the bucket's score
    assert cal.q(None, 0) == 0.5 and cal.chances([-1, 0, 1], [None] * 3)[2] == 0.125  # unscored: 0.5 a level
    for _ in range(100):
        cal.observe([0.92, 0.92, 0.92], accepted=0)  # a store that is sure and wrong
    assert cal.q(0.92) < 0.05
    for _ in range(100):
        cal.observe([None, None], accepted=2)
    assert cal.q(None, 1) > 0.95


def test_a_nodes_chance_is_the_product_of_its_paths_conditional_chances():
    cal = Calibration(prior=1e-9)
    # a store sure of every step (priors 1.0, so path scores 1.0) whose first step is right 30% of the time and
    # whose second, given the first, 50%: a chain of two counts 0.3 + 0.15 tokens, not 0.3 + 0.3
    for i in range(100):
        first = i < 30
        cal.observe([1.0, 1.0], accepted=(1 + (i < 15)) if first else 0)
    p = cal.chances([-1, 0], [1.0, 1.0])
    assert p == pytest.approx([0.3, 0.15])
    # only nodes whose parent was accepted were tested: the second node has 30 outcomes, not 100
    assert cal.counts[("", 0, "score", 19, 0)] == [30.0, 100.0] and cal.counts[("", 0, "score", 19, 1)] == [15.0, 30.0]
    # a node's conditional score is its path score over its parent's: path scores 0.8, 0.4 -> conditionals 0.8, 0.5
    assert Calibration.conditional([-1, 0, 0], [0.8, 0.4, None]) == [0.8, 0.5, None]


def test_calibration_keeps_each_kind_apart():
    cal = Calibration(prior=1e-9)
    for _ in range(50):  # long suffix matches always right, store nodes of the same score never
        cal.observe_tree([-1, 0], [1.0, 1.0], [True, True], kinds=["suffix:16", "suffix:16"])
        cal.observe_tree([-1], [1.0], [False])
    assert cal.chances([-1, 0], [1.0, 1.0], ["suffix:16", "suffix:16"]) == pytest.approx([1.0, 1.0])
    assert cal.chances([-1, 0], [1.0, 1.0]) == pytest.approx([0.0, 0.0], abs=1e-6)


def test_select_keeps_a_token_while_its_chance_beats_the_rows_marginal_cost_per_committed_token():
    flat = costs([(1, 0.1), (64, 0.1)])
    assert chains(flat, [[0.01] * 4, [0.2, 0.1]]) == [4, 2]  # free rows: keep everything
    linear = costs([(1, 0.01), (64, 0.64)])  # a step costs its rows: only p > n / rows ~ 1 pays
    assert chains(linear, [[0.9, 0.8], [0.7]]) == [0, 0]
    # T = 0.1 + 0.01 r: at 2 rows T = 0.12, n = 2 -> p must beat 0.01 * 2 / 0.12 = 0.167, then rises as n grows
    half = costs([(1, 0.11), (65, 0.75)])
    keep = chains(half, [[0.9, 0.6, 0.3, 0.1], [0.5, 0.15]])
    assert keep == [3, 1]
    assert chains(half, []) == [] and chains(half, [[], []]) == [0, 0]


def test_select_takes_a_node_only_after_its_parent():
    half = costs([(1, 0.11), (65, 0.75)])
    assert chains(half, [[0.05, 0.9, 0.9]]) == [0]  # 0.09 to pay; a child cannot be likelier than its parent: capped by it


def test_budget_config_checks_its_values():
    with pytest.raises(InputError):
        BudgetConfig(budget="maybe")
    with pytest.raises(InputError):
        BudgetConfig(warmup=1)
    with pytest.raises(InputError):
        BudgetConfig(window=4)
    with pytest.raises(InputError):
        BudgetConfig(explore=-1)


def test_select_over_a_tree_takes_the_likely_branches_and_skips_the_rest():
    half = costs([(1, 0.11), (65, 0.75)])  # T = 0.1 + 0.01 r
    #        0: 0.6 (root child)   1: 0.3 (root child)   2: 0.5 (child of 0)   3: 0.04 (child of 1)  4: 0.45 (child of 2)
    parents, p = [-1, -1, 0, 1, 2], [0.6, 0.3, 0.5, 0.04, 0.45]
    kept = select([(parents, p)], half.line)[0]
    assert kept == [0, 1, 2, 4]  # 0.04 does not pay (threshold ~0.2 by then); the rest do, parents first
    assert select([(parents, p)], costs([(1, 0.1), (64, 0.1)]).line)[0] == [0, 1, 2, 3, 4]  # free rows: all


def test_first_node_threshold_and_the_highest_chance():
    assert first_node_threshold(8, costs([(8, 0.16), (16, 0.24)]).line) == pytest.approx(0.01 * 8 / 0.16)
    cal = Calibration(prior=4)
    k = Calibration.PRIOR_SCALE
    assert cal.max_p(scored=True) == pytest.approx(k * 0.975) and cal.max_p(scored=False) == 0.5
    assert cal.max_p_upto(0.3) == pytest.approx(k * 0.325)  # the bucket holding 0.3, [0.30, 0.35)
    for _ in range(50):
        cal.observe([None], accepted=0)
    assert cal.max_p(scored=False) < 0.05


def test_tree_sizer_counts_the_rounds_drafting_time_with_the_target_pass(monkeypatch):
    from specdec.budget import TreeSizer
    from specdec.runners.costs import PassCosts

    monkeypatch.setattr(Calibration, "PRIOR_SCALE", 1.0)  # the arithmetic below on the raw scores

    sizer = TreeSizer(PassCosts((1, 65), (0.1, 0.1 + 64 * 0.01)), prior=1e-9)  # 10 ms a row beside a 100 ms pass
    parents, scores = [-1, -1], [0.12, 0.08]  # calibrated to their buckets' 0.125, 0.075; the second needs
    # p > 0.01 * 1.125 / 0.11 = 0.10 (a 1-row round of 110 ms), 0.054 when the round spent 100 ms drafting
    assert sizer.keep(parents, scores) == [0]
    assert sizer.keep(parents, scores, spent=0.1) == [0, 1]  # a 200 ms round: a row is a smaller share of it


def test_deepening_pays_only_while_the_next_draft_pass_buys_its_time(monkeypatch):
    from specdec.budget import TreeSizer
    from specdec.runners.costs import PassCosts

    monkeypatch.setattr(Calibration, "PRIOR_SCALE", 1.0)  # the arithmetic below on the raw scores

    flat = TreeSizer(PassCosts((1, 64), (0.1, 0.1)), prior=1e-9)  # rows free: only the draft pass costs
    chain = [-1]
    # one likely node: the next depth's guess 0.9 * 0.9 = 0.81 of a token for 10 ms of a ~110 ms round pays
    assert flat.deepen_pays(chain, [0.9], [0], pass_seconds=0.01, spent=0.01)
    # the same pass at the price of a target pass: 0.81 * 0.11 < 1.9 * 0.1
    assert not flat.deepen_pays(chain, [0.9], [0], pass_seconds=0.1, spent=0.01)
    # a tree whose chances fall fast: depth 1 holds 0.2 of depth 0's 0.8, so depth 2 is guessed at 0.05
    parents, scores = [-1, 0], [0.8, 0.2]
    assert flat.deepen_pays(parents, scores, [1], pass_seconds=0.002, spent=0.01)
    assert not flat.deepen_pays(parents, scores, [1], pass_seconds=0.01, spent=0.01)
    # a frontier whose nodes are all cut by the target's costs never deepens
    steep = TreeSizer(PassCosts((1, 64), (0.01, 0.64)), prior=1e-9)
    assert not steep.deepen_pays(chain, [0.9], [0], pass_seconds=0.0, spent=0.0)
    assert TreeSizer(None).deepen_pays(chain, [0.1], [0], pass_seconds=1.0, spent=0.0)  # no costs: nothing cut


def test_tree_sizer_calibrates_rounds_after_a_hit_apart_from_rounds_after_a_miss():
    from specdec.budget import TreeSizer
    from specdec.runners.costs import PassCosts

    sizer = TreeSizer(PassCosts((1, 64), (0.1, 0.1)), prior=1e-9)  # rows free: every node is verified
    rng = random.Random(0)
    for _ in range(3000):  # the store's node is right 85 % of the time after a hit and 10 % after a miss
        assert sizer.cut([-1], [1.0], [7]) == [0]
        hit = rng.random() < (0.85 if sizer.streak else 0.1)
        sizer.observe([0] if hit else [], [7, 8] if hit else [9])
    sizer.streak = 1
    assert sizer.chances([-1], [1.0])[0] == pytest.approx(0.85, abs=0.04)
    sizer.reset_streak()  # a new generation: counted as after a miss
    assert sizer.streak == 0 and sizer.chances([-1], [1.0])[0] == pytest.approx(0.1, abs=0.04)
    # on costs where a row is 20 % of a pass, the node is verified after a hit and not after a miss
    sizer.costs = PassCosts((1, 65), (0.1, 0.1 + 64 * 0.02))
    assert sizer.keep([-1], [1.0]) == []
    sizer.streak = 2
    assert sizer.keep([-1], [1.0]) == [0]


def test_tree_sizer_learns_from_the_nodes_it_did_not_keep_by_the_text_committed():
    from specdec.budget import TreeSizer
    from specdec.runners.costs import PassCosts

    rng = random.Random(1)
    for learn in ("all", "kept"):
        sizer = TreeSizer(PassCosts((1, 65), (0.1, 0.1 + 64 * 0.1)), prior=4)  # a row at a pass's price: none pays
        sizer.LEARN = learn
        for _ in range(400):  # the node (score 0.3) is the committed token 80 % of the time
            assert sizer.cut([-1], [0.3], [7]) == []
            sizer.observe([], [7] if rng.random() < 0.8 else [9])
        q = sizer.chances([-1], [0.3])[0]
        if learn == "all":
            assert q == pytest.approx(0.8, abs=0.05)  # learnt without ever being verified
            sizer.costs = PassCosts((1, 65), (0.1, 0.1 + 64 * 0.01))
            assert sizer.keep([-1], [0.3]) == [0]  # and now kept where a row costs a tenth of a pass
        else:
            assert q == pytest.approx(Calibration.PRIOR_SCALE * 0.325) and not sizer.calibration.counts  # never learnt


def test_tree_sizer_labels_deeper_nodes_from_later_rounds_and_counts_what_a_generation_decided():
    from specdec.budget import TreeSizer
    from specdec.runners.costs import PassCosts

    sizer = TreeSizer(PassCosts((1, 65), (0.1, 0.1 + 64 * 0.1)), prior=4)  # a row at a pass's price: none kept
    parents, scores, tokens = [-1, 0, 1, 0], [0.9, 0.45, 0.4, 0.135], [5, 6, 7, 8]  # a chain 5-6-7 and 5's child 8
    assert sizer.cut(parents, scores, tokens) == []  # nothing kept at these costs
    sizer.observe([], [5])  # the target commits 5: node 0 right; node 1 and 3 not decided yet
    assert not sizer.calibration.counts
    sizer.cut([-1], [0.1], [1])  # the next round's own tree: 1 is wrong
    sizer.observe([], [6])  # 5 6: node 1 right, node 3 wrong; node 2 waits for the third token
    cal = sizer.calibration
    assert cal.counts == {("", 0, "score", 2, 0): [0.0, 1.0]}  # the second tree only: the first is not decided
    sizer.reset_streak()  # the generation ends: what its text decided is counted, node 2 is not
    depth0 = sum(c[1] for k, c in cal.counts.items() if k[-1] == 0)
    depth1 = {k[3]: c for k, c in cal.counts.items() if k[-1] == 1}
    assert depth0 == 2  # node 0 (right) and the second tree's node (wrong)
    assert depth1 == {10: [1.0, 1.0], 3: [0.0, 1.0]}  # node 1 (0.45 / 0.9 = 0.5: right), node 3 (0.15: wrong)
    assert not sizer._pending
