"""specdec.verify.verify(): greedy (hand-made logits) and sampling (distribution tests, with negative controls)."""
from __future__ import annotations

import pytest
import torch

from spec_helpers import chi2_pvalue
from specdec.config import SamplingConfig
from specdec.drafters.base import Draft, DraftTree, VerifyResult
from specdec.sampling import process_logits
from specdec.verify import verify

GREEDY = SamplingConfig()
V = 8
a, b, c, d, x, y, z = 1, 2, 3, 4, 5, 6, 7  # token ids as in the docstring's examples


def rows(*argmaxes: int, vocab: int = V) -> torch.Tensor:
    """(1, len, V) logits whose argmax in row i is argmaxes[i], with decoys in every other entry."""
    g = torch.Generator().manual_seed(len(argmaxes))
    out = torch.rand(1, len(argmaxes), vocab, generator=g)
    for i, t in enumerate(argmaxes):
        out[0, i, t] = 2.0
    return out


def chain(*toks: int, q=None) -> Draft:
    return Draft(tokens=torch.tensor([list(toks)], dtype=torch.long).reshape(1, -1), q=q)


def tree(toks, parents, q=None) -> Draft:
    return Draft(tokens=torch.tensor([toks]), tree=DraftTree(parents), q=q)


def check(res: VerifyResult, tokens, accepted_nodes, bonus, draft_length):
    assert res.tokens.shape == (1, len(tokens))
    assert res.tokens.dtype == torch.long
    assert res.tokens[0].tolist() == tokens
    assert res.num_accepted == len(accepted_nodes) == len(tokens) - 1
    assert res.accepted_nodes == accepted_nodes
    assert res.bonus is bonus
    assert res.draft_length == draft_length


# ============================================================== greedy, chain
def test_docstring_example_partial_accept_then_recovered():
    # draft [a, b, c], target argmax [a, b, x, y] -> [a, b, x], 2 accepted, no bonus
    check(verify(rows(a, b, x, y), chain(a, b, c), GREEDY), [a, b, x], [0, 1], False, 3)


def test_docstring_example_all_accepted_gives_bonus():
    # draft [a, b], target argmax [a, b, z] -> [a, b, z], bonus
    check(verify(rows(a, b, z), chain(a, b), GREEDY), [a, b, z], [0, 1], True, 2)


def test_docstring_example_empty_draft_is_plain_decoding():
    res = verify(rows(z), Draft.empty(), GREEDY)
    check(res, [z], [], True, 0)


def test_first_token_rejected_commits_only_the_recovered_token():
    # the later rows say "b, c" would be accepted: they must not be looked at once the first token failed
    check(verify(rows(x, b, c), chain(a, b), GREEDY), [x], [], False, 2)


def test_longer_chain_all_accepted():
    check(verify(rows(a, b, c, d, y), chain(a, b, c, d), GREEDY), [a, b, c, d, y], [0, 1, 2, 3], True, 4)


def test_greedy_ignores_q():
    q = torch.softmax(torch.randn(1, 3, V, generator=torch.Generator().manual_seed(0)), -1)
    check(verify(rows(a, b, x, y), chain(a, b, c, q=q), GREEDY), [a, b, x], [0, 1], False, 3)


# ============================================================== greedy, tree
def test_tree_picks_the_matching_branch():
    # root -> {node0=a, node1=b}; node0 -> node2=c; node1 -> node3=d.  Rows: [root, n0, n1, n2, n3].
    # The target wants b then d then y. Rows of the wrong branch (n0, n2) say "c"/"x" so a mix-up shows.
    logits = rows(b, c, d, x, y)
    res = verify(logits, tree([a, b, c, d], [-1, -1, 0, 1]), GREEDY)
    check(res, [b, d, y], [1, 3], True, 4)


def test_tree_follows_the_longest_matching_path():
    # root -> n0=a -> {n1=b, n2=c}; n2 -> n3=d.  Target: a, c, d, y.
    logits = rows(a, c, b, d, y)  # row of n1 (b) says "d" too: must not matter, n1 is not on the path
    res = verify(logits, tree([a, b, c, d], [-1, 0, 0, 2]), GREEDY)
    check(res, [a, c, d, y], [0, 2, 3], True, 4)


def test_tree_match_at_last_sibling():
    # three root children; only the last matches. Node 2's row (row 3) gives the bonus.
    logits = rows(c, x, x, y)
    res = verify(logits, tree([a, b, c], [-1, -1, -1]), GREEDY)
    check(res, [c, y], [2], True, 3)


def test_tree_sibling_after_subtree_in_topological_order():
    # parents [-1, 0, -1, 2]: the second root child (node 2) comes after node 0's subtree
    logits = rows(c, x, x, d, y)
    res = verify(logits, tree([a, b, c, d], [-1, 0, -1, 2]), GREEDY)
    check(res, [c, d, y], [2, 3], True, 4)


def test_tree_stops_inside_when_no_child_matches():
    # root -> n0=a -> {n1=b, n2=c}; target wants a then x: recovered x, no bonus (n0 has children)
    res = verify(rows(a, x, y, y), tree([a, b, c], [-1, 0, 0]), GREEDY)
    check(res, [a, x], [0], False, 3)


def test_tree_nothing_matches_at_root():
    res = verify(rows(x, a, a), tree([a, b], [-1, -1]), GREEDY)
    check(res, [x], [], False, 2)


def test_tree_that_is_a_chain_equals_the_chain():
    logits = rows(a, b, x, y)
    r1 = verify(logits, tree([a, b, c], [-1, 0, 1]), GREEDY)
    r2 = verify(logits, chain(a, b, c), GREEDY)
    assert r1.tokens.tolist() == r2.tokens.tolist() == [[a, b, x]]
    assert r1.accepted_nodes == r2.accepted_nodes == [0, 1]


# ============================================================== shape errors
def test_wrong_number_of_rows_raises():
    with pytest.raises(ValueError, match="rows"):
        verify(rows(a, b), chain(a, b), GREEDY)  # 2 rows for 2 tokens (want 3)
    with pytest.raises(ValueError, match="rows"):
        verify(rows(a, b, c, d), chain(a, b), GREEDY)
    with pytest.raises(ValueError):
        verify(rows(a, b), Draft.empty(), GREEDY)


def test_batch_larger_than_one_is_refused():
    with pytest.raises(NotImplementedError):
        verify(torch.randn(2, 2, V), Draft(tokens=torch.tensor([[a], [b]])), GREEDY)


def test_tree_with_forward_parent_is_refused():
    with pytest.raises(ValueError):
        DraftTree([-1, 2, 0])


# ============================================================== sampling: distribution tests
T1 = SamplingConfig(temperature=1.0)
N = 15_000
PASS, FAIL = 1e-3, 1e-6  # p-value thresholds: correct samplers must pass, wrong ones must be rejected


def rand_logits(*shape, seed, scale=1.5):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


class ChainSetup:
    """A 2-token chain with target rows that depend on the draft: rows [P0, P1[d1], P2[d2]], and
    draft distributions q0, Q1[d1] (random, far from p)."""

    def __init__(self, seed: int, V: int = 6, sampling=T1, q_scale=1.5):
        self.V, self.sampling = V, sampling
        self.L0 = rand_logits(V, seed=seed)
        self.L1 = rand_logits(V, V, seed=seed + 1)  # row for d1
        self.L2 = rand_logits(V, V, seed=seed + 2)
        self.q0 = process_logits(rand_logits(V, seed=seed + 3, scale=q_scale), sampling)
        self.Q1 = process_logits(rand_logits(V, V, seed=seed + 4, scale=q_scale), sampling)
        self.p0 = process_logits(self.L0, sampling)
        self.P1 = process_logits(self.L1, sampling)

    def run(self, verify_fn=verify, n=N, seed=0, deterministic: tuple[int, int] | None = None):
        """Returns first tokens (n,), and (first, second) pairs from trials where the first draft token was accepted."""
        g = torch.Generator().manual_seed(seed)
        gd = torch.Generator().manual_seed(seed + 10_000)
        if deterministic is None:
            d1s = torch.multinomial(self.q0, n, replacement=True, generator=gd)
            d2s = torch.multinomial(self.Q1[d1s], 1, generator=gd)[:, 0]  # row i ~ Q1[d1_i]
        else:
            d1s = torch.full((n,), deterministic[0])
            d2s = torch.full((n,), deterministic[1])
        first, pairs = [], []
        for d1, d2 in zip(d1s.tolist(), d2s.tolist()):
            logits = torch.stack([self.L0, self.L1[d1], self.L2[d2]])[None]  # (1, 3, V)
            q = None if deterministic else torch.stack([self.q0, self.Q1[d1]])[None]  # (1, 2, V)
            res = verify_fn(logits, Draft(tokens=torch.tensor([[d1, d2]]), q=q), self.sampling, g)
            toks = res.tokens[0].tolist()
            first.append(toks[0])
            if res.num_accepted >= 1:
                assert toks[0] == d1
                pairs.append((toks[0], toks[1]))
        return first, pairs

    def pvalues(self, first, pairs):
        p_first = chi2_pvalue(torch.bincount(torch.tensor(first), minlength=self.V), self.p0)
        # second token given the (accepted) first: joint counts vs n(first) * P1[first]
        joint = torch.zeros(self.V, self.V)
        for t1, t2 in pairs:
            joint[t1, t2] += 1
        expected = joint.sum(1, keepdim=True) * self.P1  # (V, V)
        rows = int((joint.sum(1) > 0).sum())  # one constraint per conditioning row
        p_second = chi2_pvalue(joint.flatten(), expected.flatten(), ddof=rows - 1)
        return p_first, p_second, len(pairs)


def test_chain_with_random_q_is_distributed_as_p():
    s = ChainSetup(seed=1)
    first, pairs = s.run()
    p_first, p_second, n_pairs = s.pvalues(first, pairs)
    assert n_pairs > N // 4  # enough trials got past the first token to test the second
    assert p_first > PASS, p_first
    assert p_second > PASS, p_second


@pytest.mark.parametrize("d1_rank", [0, -1])  # the target's most likely / least likely token as the draft
def test_chain_with_deterministic_draft_is_distributed_as_p(d1_rank):
    s = ChainSetup(seed=2)
    d1 = int(s.p0.argsort(descending=True)[d1_rank])
    d2 = int(s.P1[d1].argsort()[s.V // 2])
    first, pairs = s.run(n=8000, deterministic=(d1, d2))
    p_first, p_second, n_pairs = s.pvalues(first, pairs)
    assert abs(n_pairs / 8000 - float(s.p0[d1])) < 0.02  # a one-hot q accepts with probability p(d1)
    assert p_first > PASS, p_first
    assert p_second > PASS, p_second


# ---- negative controls: the same harness rejects wrong samplers
def always_accept_verify(target_logits, draft, sampling, generator):
    """WRONG: commits every drafted token, then samples a bonus from p."""
    p = process_logits(target_logits[0, -1], sampling)
    last = int(torch.multinomial(p, 1, generator=generator))
    toks = draft.tokens[0].tolist() + [last]
    return VerifyResult(torch.tensor([toks]), draft.length, draft.length, list(range(draft.length)), True)


def no_residual_verify(target_logits, draft, sampling, generator):
    """WRONG (subtly): accepts with min(1, p/q) but resamples a rejected token from p instead of norm(max(0, p - q))."""
    p_all = process_logits(target_logits[0], sampling)
    toks = draft.tokens[0].tolist()
    out = []
    for i, t in enumerate(toks):
        qx = float(draft.q[0, i, t]) if draft.q is not None else 1.0
        if torch.rand((), generator=generator).item() < min(1.0, float(p_all[i, t]) / qx):
            out.append(t)
            continue
        out.append(int(torch.multinomial(p_all[i], 1, generator=generator)))
        return VerifyResult(torch.tensor([out]), i, len(toks), list(range(i)), False)
    out.append(int(torch.multinomial(p_all[-1], 1, generator=generator)))
    return VerifyResult(torch.tensor([out]), len(toks), len(toks), list(range(len(toks))), True)


@pytest.mark.parametrize("wrong", [always_accept_verify, no_residual_verify])
def test_negative_control_wrong_samplers_are_rejected(wrong):
    s = ChainSetup(seed=1)
    first, pairs = s.run(verify_fn=wrong, n=5000)
    p_first, _, _ = s.pvalues(first, pairs)
    assert p_first < FAIL, f"the chi-square test cannot tell {wrong.__name__} from a correct sampler"


def test_negative_control_wrong_row_for_the_second_token_is_rejected():
    """A sampler that gets the first token right but verifies the second against the root's row instead of
    the row after d1: only the conditional test can see it, and it does."""

    def wrong_row(target_logits, draft, sampling, generator):
        L = target_logits[0]
        return verify(torch.stack([L[0], L[0], L[2]])[None], draft, sampling, generator)

    s = ChainSetup(seed=1)
    first, pairs = s.run(verify_fn=wrong_row, n=5000)
    p_first, p_second, _ = s.pvalues(first, pairs)
    assert p_first > PASS
    assert p_second < FAIL


# ---- trees (SpecInfer multi-draft)
def root_tree_trials(L0, child_q, sampling, n, seed, tokens_fixed=None, child_row=None):
    """Root with m children (+ one grandchild under child 0). child_q: (m, V) draft distributions, or None with
    tokens_fixed (distinct one-hot children). Returns the first committed tokens and, for trials accepting child 0,
    the second token."""
    V = L0.shape[-1]
    g = torch.Generator().manual_seed(seed)
    gd = torch.Generator().manual_seed(seed + 1)
    m = len(tokens_fixed) if tokens_fixed is not None else child_q.shape[0]
    parents = [-1] * m + [0]
    first, second = [], []
    Lchild = child_row if child_row is not None else torch.zeros(V)
    for _ in range(n):
        if tokens_fixed is not None:
            kids = list(tokens_fixed)
            q = None
        else:
            kids = [int(torch.multinomial(child_q[j], 1, generator=gd)) for j in range(m)]
            q = torch.cat([child_q, torch.full((1, V), 1.0 / V)])[None]  # (1, m+1, V)
        grand = int(torch.randint(0, V, (1,), generator=gd)) if q is not None else 0
        if q is not None:
            q[0, m] = torch.nn.functional.one_hot(torch.tensor(grand), V).float()
        logits = torch.stack([L0] + [torch.zeros(V) + Lchild] + [torch.zeros(V)] * m)[None]  # (1, m+2, V)
        res = verify(logits, Draft(tokens=torch.tensor([kids + [grand]]), q=q, tree=DraftTree(parents)), sampling, g)
        toks = res.tokens[0].tolist()
        first.append(toks[0])
        if res.accepted_nodes[:1] == [0]:
            second.append(toks[1])
    return first, second


@pytest.mark.parametrize("kids", [[2, 0], [1, 4, 3]])
def test_tree_with_distinct_one_hot_children_is_distributed_as_p(kids):
    V = 6
    L0 = rand_logits(V, seed=7)
    Lc = rand_logits(V, seed=8)
    first, second = root_tree_trials(L0, None, T1, 8000, seed=5, tokens_fixed=kids, child_row=Lc)
    p0 = process_logits(L0, T1)
    assert chi2_pvalue(torch.bincount(torch.tensor(first), minlength=V), p0) > PASS
    # conditioned on child 0 accepted, the next token comes from child 0's row (grandchild 0 is drafted one-hot)
    assert len(second) > 500
    assert chi2_pvalue(torch.bincount(torch.tensor(second), minlength=V), process_logits(Lc, T1)) > PASS
    # every child gets tried, and the residual after rejecting them all excludes them: some child is accepted
    # exactly when the output falls among the children
    acc_rate = sum(t in kids for t in first) / 8000
    assert abs(acc_rate - float(p0[kids].sum())) < 0.02


def test_tree_with_random_q_per_child_is_distributed_as_p():
    V = 6
    L0 = rand_logits(V, seed=11)
    child_q = torch.stack([process_logits(rand_logits(V, seed=12 + j), T1) for j in range(3)])  # (3, V)
    first, _ = root_tree_trials(L0, child_q, T1, 10_000, seed=4)
    assert chi2_pvalue(torch.bincount(torch.tensor(first), minlength=V), process_logits(L0, T1)) > PASS


def test_tree_negative_control_first_child_only():
    """Sanity of the tree harness: committing child 0 always would give q_0, and the test sees it."""
    V = 6
    L0 = rand_logits(V, seed=11)
    q0 = process_logits(rand_logits(V, seed=12), T1)
    samples = torch.multinomial(q0, 5000, replacement=True, generator=torch.Generator().manual_seed(0))
    assert chi2_pvalue(torch.bincount(samples, minlength=V), process_logits(L0, T1)) < FAIL


# ---- q == p: nothing can be rejected; a residual of zero falls back to p
def test_q_equal_to_p_accepts_everything_and_keeps_p():
    s = ChainSetup(seed=5)
    s.q0, s.Q1 = s.p0.clone(), s.P1.clone()  # the draft is the target
    first, pairs = s.run(n=3000)
    assert len(pairs) == 3000  # every first token accepted
    p_first, p_second, _ = s.pvalues(first, pairs)
    assert p_first > PASS and p_second > PASS


def test_zero_residual_falls_back_to_p():
    """A drafter that claims q == p but drafts a token outside p's support: it is rejected (q(x) = p(x) = 0),
    max(0, p - q) is all zero, and the recovered token must still come from p (no NaN, no crash)."""
    cfg = SamplingConfig(temperature=1.0, top_k=3)
    L0 = rand_logits(V, seed=21)
    p0 = process_logits(L0, cfg)
    outside = int(torch.nonzero(p0 == 0)[0])
    q = p0[None, None].clone()  # (1, 1, V)
    g = torch.Generator().manual_seed(0)
    first = []
    for _ in range(3000):
        res = verify(torch.stack([L0, L0])[None], Draft(tokens=torch.tensor([[outside]]), q=q), cfg, g)
        assert res.num_accepted == 0 and res.bonus is False
        first.append(int(res.tokens[0, 0]))
    assert chi2_pvalue(torch.bincount(torch.tensor(first), minlength=V), p0) > PASS


def test_rejected_deterministic_token_is_never_the_recovered_one():
    L0 = rand_logits(V, seed=31)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        res = verify(torch.stack([L0, L0])[None], chain(3), T1, g)
        if res.num_accepted == 0:
            assert int(res.tokens[0, 0]) != 3


# ---- the same temperature / top-k / top-p processing as process_logits
@pytest.mark.parametrize(
    "cfg",
    [SamplingConfig(temperature=0.7, top_k=4), SamplingConfig(temperature=1.3, top_p=0.8),
     SamplingConfig(temperature=0.9, top_k=5, top_p=0.85)],
    ids=["temp-topk", "temp-topp", "all"],
)
def test_sampling_processing_matches_process_logits(cfg):
    s = ChainSetup(seed=41, V=8, sampling=cfg)
    first, pairs = s.run(n=6000)
    support = (s.p0 > 0).sum()
    assert support < 8  # the processing really removes tokens (else this test checks little)
    p_first, p_second, _ = s.pvalues(first, pairs)  # a token outside p's support fails outright
    assert p_first > PASS, p_first
    assert p_second > PASS, p_second


def test_temperature_changes_the_distribution_seen_by_the_test():
    """Power of the processing test: samples from the unprocessed softmax fail against the processed p."""
    s = ChainSetup(seed=41, V=8, sampling=SamplingConfig(temperature=1.0))
    first, _ = s.run(n=4000)
    p_hot = process_logits(s.L0, SamplingConfig(temperature=0.7, top_k=4))
    assert chi2_pvalue(torch.bincount(torch.tensor(first), minlength=8), p_hot) < FAIL


def test_sampling_is_reproducible_with_a_seeded_generator():
    s = ChainSetup(seed=1)
    a_ = s.run(n=300, seed=9)
    b_ = s.run(n=300, seed=9)
    assert a_ == b_
