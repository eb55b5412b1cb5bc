"""specdec.engine.loop.decode with custom drafters: garbage chains and trees, always-empty, tree oracles,
budget and context limits. Whatever the drafter does, greedy output == plain output."""
from __future__ import annotations

import pytest
import torch

from spec_helpers import (  # isort: skip
    EmptyDrafter, RandomTreeDrafter, ScriptedDrafter, hf_greedy, oracle_script, random_prompts)
from policies.simple import ConstantPolicy, HeuristicPolicy
from specdec.config import SamplingConfig
from specdec.drafters.base import Draft, DrafterBase, DraftTree
from specdec.engine.loop import decode
from specdec.runners.torch_runner import TorchRunner
from specdec.engine.stopping import StopChecker
from specdec.errors import InputError
from specdec.stats import GenerationStats

MAX_NEW = 20
GREEDY = SamplingConfig()


@pytest.fixture(scope="module")
def runner(target_model):
    return TorchRunner(target_model, max_context=256)


def gen(runner, prompt, drafter=None, policy=None, max_new=MAX_NEW, eos=frozenset(), stats=None, sampling=GREEDY,
        generator=None):
    stats = stats if stats is not None else GenerationStats()
    rounds = list(decode(runner, prompt, StopChecker(max_new, set(eos)), sampling, drafter,
                         policy or ConstantPolicy(k=4), stats, generator))
    return [t for r in rounds for t in r.tokens], rounds, stats


@pytest.fixture(scope="module")
def cases(runner):
    prompts = random_prompts(12, seed=5)
    return [(p, gen(runner, p)[0]) for p in prompts]


def test_plain_loop_equals_hf_greedy(target_model, cases):
    for p, ref in cases[:4]:
        assert ref == hf_greedy(target_model, p, MAX_NEW)


@pytest.mark.parametrize("trees", [False, True], ids=["chains", "trees"])
def test_garbage_drafter_is_lossless(runner, cases, trees):
    st = GenerationStats()
    for i, (p, ref) in enumerate(cases):
        d = RandomTreeDrafter(vocab=64, seed=i, trees=trees)
        out, _, _ = gen(runner, p, d, ConstantPolicy(k=6), stats=st)
        assert out == ref
    assert st.drafted > 100


@pytest.mark.parametrize("trees", [False, True], ids=["chains", "trees"])
def test_random_drafter_with_planted_true_tokens_is_lossless(runner, cases, trees):
    """Random chains/trees that contain the true next token at a random node: some paths get accepted
    (including non-first siblings, so the cache is compacted), the rest is garbage."""
    st = GenerationStats()
    for i, (p, ref) in enumerate(cases):
        d = RandomTreeDrafter(vocab=64, seed=100 + i, trees=trees, hint=ref + [0] * 8, prompt_len=p.shape[1])
        out, _, _ = gen(runner, p, d, ConstantPolicy(k=6), stats=st)
        assert out == ref
    assert st.accepted > 10 and st.drafted > st.accepted


def test_always_empty_drafter_is_plain_decoding(runner, cases):
    for p, ref in cases[:4]:
        d = EmptyDrafter()
        out, rounds, st = gen(runner, p, d)
        assert out == ref
        assert all(len(r.tokens) == 1 and r.num_accepted == 0 for r in rounds)
        assert st.rounds == MAX_NEW
        assert d.calls == st.draft_calls == MAX_NEW - 1  # the last round has no budget to draft: no call
        assert st.drafted == 0 and st.mean_accepted_length == 1.0


class TreeOracle(DrafterBase):
    """Drafts a tree whose true path goes through the LAST child at every level, under junk siblings
    (junk subtrees too), so accepting it needs non-prefix compaction of the KV cache."""

    name = "tree-oracle"

    def __init__(self, truth, prompt_len, width=3, depth=3):
        self.truth, self.prompt_len, self.width, self.depth = truth, prompt_len, width, depth

    def start(self, prompt_ids):
        pass

    def propose(self, ctx):
        pos = ctx.tokens.shape[1] - self.prompt_len
        toks, parents = [], []
        parent = -1
        for lvl in range(self.depth):
            if len(toks) + 2 * self.width - 1 > ctx.max_draft or pos + lvl >= len(self.truth):
                break
            true = self.truth[pos + lvl]
            for j in range(self.width - 1):  # junk siblings first, each with a junk child
                junk = (true + 7 * (j + 1)) % 61 + 3  # never == true
                toks += [junk, true]  # the junk child repeats the true token: must not be taken
                parents += [parent, len(toks) - 2]
            toks.append(true)
            parents.append(parent)
            parent = len(toks) - 1
        if not toks:
            return Draft.empty()
        return Draft(tokens=torch.tensor([toks]), tree=DraftTree(parents))

    def observe(self, result):
        assert result.accepted_nodes == sorted(result.accepted_nodes)


def test_tree_oracle_accepts_deep_paths_through_last_siblings(runner, cases):
    for p, ref in cases[:6]:
        st = GenerationStats()
        out, rounds, _ = gen(runner, p, TreeOracle(ref, p.shape[1]), ConstantPolicy(k=16), stats=st)
        assert out == ref
        assert max(r.num_accepted for r in rounds) == 3  # three levels accepted in one round
        # per_position is indexed by depth (not node count). The true path always ends at a leaf (bonus), so
        # every position reached was accepted; the deeper junk subtrees are never "reached"
        assert st.per_position[2][1] > 0
        assert len(st.per_position) == 3
        assert all(n == a for n, a in st.per_position)


def test_draft_never_exceeds_budget_or_cache(target_model):
    """The loop bounds max_draft by the policy and the remaining budget (minus the token verification adds);
    an oracle drafting exactly max_draft tokens reaches max_new_tokens exactly, with a context that has no
    slot to spare."""
    r = TorchRunner(target_model, max_context=30)
    p = random_prompts(1, seed=9, lo=10, hi=11)[0]
    truth = hf_greedy(target_model, p, 20)
    d = ScriptedDrafter(oracle_script(truth, p.shape[1]))
    out, rounds, st = gen(r, p, d, ConstantPolicy(k=6), max_new=20)
    assert out == truth and st.stop_reason == "max_new_tokens"
    for ctx in d.seen:
        done = ctx.tokens.shape[1] - p.shape[1]
        assert 1 <= ctx.max_draft <= min(6, 20 - done - 1)
    assert [len(x.tokens) for x in rounds] == [7, 7, 6]  # 6 + 1, 6 + 1, then 5 + 1 hits max_new exactly


def test_drafter_over_the_limit_is_an_error(runner):
    d = ScriptedDrafter(lambda r, ctx: [5] * (ctx.max_draft + 1))
    with pytest.raises(RuntimeError, match="proposed"):
        gen(runner, torch.tensor([[4, 5, 6]]), d)


def test_prompt_plus_budget_over_context_is_refused(target_model):
    r = TorchRunner(target_model, max_context=16)
    with pytest.raises(InputError, match="context overflow"):
        gen(r, torch.tensor([[5] * 10]), max_new=7)
    out, _, _ = gen(r, torch.tensor([[5] * 10]), max_new=6)  # exactly fits
    assert len(out) == 6


def test_empty_prompt_is_refused(runner):
    with pytest.raises(InputError, match="empty prompt"):
        gen(runner, torch.zeros(1, 0, dtype=torch.long))


def test_one_token_prompt(target_model, runner):
    p = torch.tensor([[7]])
    out, _, st = gen(runner, p)
    assert out == hf_greedy(target_model, p, MAX_NEW)
    assert st.target_calls == st.rounds  # nothing to prefill


def test_runner_and_drafter_are_reset_between_generations(runner, cases):
    """Decoding a long prompt, then a short one, with the same runner gives the short one's own output."""
    (p1, r1), (p2, r2) = cases[0], cases[1]
    d = ScriptedDrafter(lambda r, ctx: [])
    assert gen(runner, p1, d)[0] == r1
    assert gen(runner, p2, d)[0] == r2
    assert d.starts == 2


def test_heuristic_policy_is_restarted_by_decode(runner, cases):
    """decode() calls policy.start(): reusing one policy object gives identical rounds."""
    p, ref = cases[2]
    pol = HeuristicPolicy(k=2, k_max=8)
    runs = []
    for _ in range(2):
        d = ScriptedDrafter(oracle_script(ref, p.shape[1]))
        out, rounds, _ = gen(runner, p, d, pol)
        assert out == ref
        runs.append([c.max_draft for c in d.seen])
    assert runs[0] == runs[1]
    assert runs[0][:3] == [2, 4, 6]  # +2 per fully accepted round from k


def test_tree_rounds_feed_the_target_the_right_layout(target_model, cases):
    """Every row the loop's tree verification sees equals HF's logits after the committed text + that node's
    path (mask AND positions right; the greedy outputs alone are weak at catching an off-by-one position)."""
    r = TorchRunner(target_model, max_context=256)
    seen = []
    orig = r.forward

    def spy(tokens, tree_mask=None, depths=None):
        out = orig(tokens, tree_mask=tree_mask, depths=depths)
        seen.append(out[0])
        return out

    r.forward = spy
    p, ref = cases[3]
    d = RandomTreeDrafter(vocab=64, seed=7, trees=True, hint=ref + [0] * 8, prompt_len=p.shape[1])
    drafts = []
    orig_propose = d.propose
    d.propose = lambda ctx: (lambda out: (drafts.append((ctx.tokens.clone(), out)), out)[1])(orig_propose(ctx))
    out, _, st = gen(r, p, d, ConstantPolicy(k=6), max_new=12)
    assert out == ref[:12] and st.accepted > 0
    rounds = seen[1:]  # seen[0] is the prefill
    checked = 0
    with torch.no_grad():
        for (ctx_tokens, draft), logits in zip(drafts, rounds):
            if draft.tree is None:
                continue
            for node in range(draft.length):
                path, n = [], node
                while n >= 0:
                    path.append(int(draft.tokens[0, n]))
                    n = draft.tree.parents[n]
                seq = torch.cat([ctx_tokens, torch.tensor([path[::-1]])], dim=1)
                torch.testing.assert_close(logits[0, node + 1], target_model(seq).logits[0, -1], atol=2e-5, rtol=1e-4)
                checked += 1
    assert checked > 10


def test_a_drafter_that_asks_gets_the_targets_top_tokens_of_every_row(runner, cases):
    """`target_topk` > 0: each observed result carries the k likeliest tokens of every verified row and their
    probabilities, as the target's logits say (rows of rejected nodes too); 0 (the default): none, no cost."""
    seen = []
    orig = runner.forward

    def spy(tokens, tree_mask=None, depths=None):
        out = orig(tokens, tree_mask=tree_mask, depths=depths)
        seen.append(out[0][0].clone() if out[0] is not None else None)  # (rows, V); the prefill returns none
        return out

    class Asking(RandomTreeDrafter):
        target_topk = 3

        def observe(self, result):
            self.results.append(result)

    runner.forward = spy
    try:
        p, ref = cases[2]
        d = Asking(vocab=64, seed=3, trees=True)
        d.results = []
        out, _, _ = gen(runner, p, d, ConstantPolicy(k=5))
        plain = RandomTreeDrafter(vocab=64, seed=3, trees=True)
        plain.observe = lambda result: d.results.append(("plain", result))
        seen_before = len(seen)
        gen(runner, p, plain, ConstantPolicy(k=5))
    finally:
        runner.forward = orig
    assert out == ref
    assert seen[0] is None
    rounds = seen[1:seen_before]  # seen[0] is the prefill
    mine = [r for r in d.results if not isinstance(r, tuple)]
    assert len(mine) == len(rounds) and any(r.draft_length > 1 for r in mine)
    for result, logits in zip(mine, rounds):
        assert result.top_ids.shape == (result.draft_length + 1, 3)
        probs = logits.float().softmax(-1)  # (rows, V)
        assert result.top_ids.tolist() == logits.float().topk(3, dim=-1).indices.tolist()
        torch.testing.assert_close(result.top_probs, probs.gather(-1, result.top_ids))
    assert all(r.top_ids is None and r.top_probs is None for tag, r in (x for x in d.results if isinstance(x, tuple)))
