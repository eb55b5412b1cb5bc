"""draft-model: vocabulary checks, its KV cache rolled back (not recomputed), proposals equal to the draft's own
greedy continuation, guesses that save passes, q for sampling, padded/truncated draft vocabularies (trees:
test_draft_model_trees.py)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from spec_helpers import close_draft, make_tokenizer  # isort: skip
from policies.simple import ConstantPolicy
from specdec.api import SpecDecoder
from specdec.config import SamplingConfig, SpecConfig, StopConfig
from specdec.drafters.base import DraftContext
from specdec.drafters.draft_model import DraftModelDrafter, check_same_vocabulary
from specdec.runners.torch_runner import TorchRunner
from specdec.errors import InputError, TokenizerMismatchError
from specdec.sampling import process_logits
from specdec.stats import GenerationStats


@pytest.fixture(scope="module")
def close(target_model):
    return close_draft(target_model, eps=0.15)


# ------------------------------------------------------------------ vocabulary
def test_vocabulary_size_mismatch_is_refused(target_model, tokenizer, close):
    small_tok = make_tokenizer(32)
    with pytest.raises(TokenizerMismatchError) as e:
        SpecDecoder(target_model, tokenizer, spec=SpecConfig(drafter="draft-model"),
                    model_loader=lambda name: (close, small_tok), draft="d")
    msg = str(e.value)
    assert "32 vs 64" in msg and "same vocabulary" in msg and "prompt-lookup" in msg


def test_same_size_but_different_ids_is_refused(tokenizer):
    other = make_tokenizer(64)
    vocab = other.get_vocab()
    swapped = dict(vocab, w0=vocab["w1"], w1=vocab["w0"])

    class Tok:
        def get_vocab(self):
            return swapped

    with pytest.raises(TokenizerMismatchError, match="2 target entries"):
        check_same_vocabulary(tokenizer, Tok())
    check_same_vocabulary(tokenizer, other)  # equal vocabularies pass
    check_same_vocabulary(tokenizer, None)  # a loader without tokenizer: nothing to compare


def test_draft_model_needs_a_draft_name(target_model, tokenizer):
    with pytest.raises(InputError, match="draft model"):
        SpecDecoder(target_model, tokenizer, spec=SpecConfig(drafter="draft-model"), model_loader=lambda n: None)


def test_fit_pads_or_truncates_the_draft_vocabulary():
    d = DraftModelDrafter.__new__(DraftModelDrafter)
    d.target_vocab = 5
    d.runner = SimpleNamespace(vocab_ids=None)  # every logits row is its own id
    torch.testing.assert_close(d._fit(torch.arange(5.0)), torch.arange(5.0))
    torch.testing.assert_close(d._fit(torch.arange(7.0)), torch.arange(5.0))
    padded = d._fit(torch.arange(3.0))
    assert padded[:3].tolist() == [0, 1, 2] and torch.isinf(padded[3:]).all() and (padded[3:] < 0).all()
    assert process_logits(padded, SamplingConfig(temperature=1.0))[3:].sum() == 0  # never sampled


def test_greedy_step_equals_the_argmax_of_the_widened_logits():
    """_greedy picks from the draft's own rows what argmax / softmax of `_fit`'s widened logits pick: a draft with
    more rows than the target, fewer, and an output layer cut to some ids (with ids past the target's vocabulary)."""

    class R:
        vocab_ids = None

    g = torch.Generator().manual_seed(0)
    d = DraftModelDrafter.__new__(DraftModelDrafter)
    d.runner, d.target_vocab = R(), 10
    for n in (13, 10, 7):
        logits = torch.randn(n, generator=g)
        logits[min(n, 10) - 1] = 9.0  # a clear maximum inside the target's ids
        if n > 10:
            logits[11] = 50.0  # larger, but past the target's vocabulary: never drafted
        tok, p = d._greedy(logits)
        wide = d._fit(logits)
        assert tok == int(wide.argmax()) and abs(p - float(torch.softmax(wide, -1)[tok])) < 1e-6
    d.runner.vocab_ids = torch.tensor([0, 2, 3, 5, 9, 11, 12])  # rows of a cut output layer (ascending ids)
    logits = torch.tensor([0.1, 0.3, 2.0, 2.0, -1.0, 7.0, 8.0])  # a tie between ids 3 and 5; 11, 12 >= 10
    tok, p = d._greedy(logits)
    wide = d._fit(logits)
    assert tok == int(wide.argmax()) == 3 and abs(p - float(torch.softmax(wide, -1)[3])) < 1e-6


# ------------------------------------------------------------------ the cache
class Spy:
    """Wraps a runner's forward to log how many tokens each call feeds."""

    def __init__(self, runner):
        self.fed: list[int] = []
        orig = runner.forward

        def forward(tokens, *a, **kw):
            self.fed.append(tokens.shape[1])
            return orig(tokens, *a, **kw)

        runner.forward = forward


@torch.no_grad()
def draft_greedy(model, ids, n):
    seq, out = ids, []
    for _ in range(n):
        t = int(model(seq).logits[0, -1].argmax())
        out.append(t)
        seq = torch.cat([seq, torch.tensor([[t]])], 1)
    return out


def test_cache_is_rolled_back_not_recomputed(target_model, tokenizer, close):
    """Per round the draft feeds only what is new: the target's last token (after a rejection) or the last
    draft token + the bonus (after a full acceptance), then one token per draft step. And its proposals are
    exactly the draft model's own greedy continuation (so the rolled-back cache holds the right KV)."""
    dec = SpecDecoder(target_model, tokenizer, spec=SpecConfig(drafter="draft-model", k=4, guard=False,
                                                               drafter_options={"guess": 0}),
                      model_loader=lambda name: (close, tokenizer), draft="d")
    drafter = dec.drafter_for(dec.spec)
    spy = Spy(drafter.runner)
    calls, results = [], []  # per round: (tokens fed by each draft forward, the context, the draft); VerifyResults
    orig_propose, orig_observe = drafter.propose, drafter.observe

    def propose(ctx):
        n = len(spy.fed)
        out = orig_propose(ctx)
        calls.append((spy.fed[n:], ctx.tokens.clone(), out.tokens[0].tolist()))
        return out

    def observe(result):
        results.append(result)
        orig_observe(result)

    drafter.propose, drafter.observe = propose, observe
    prompt = torch.tensor([[12, 40, 7, 33, 21, 9, 14]])
    st = GenerationStats()
    list(dec.stream_ids(prompt, stop=StopConfig(max_new_tokens=40), stats=st))
    full = [r.num_accepted == r.draft_length for r in results]
    assert any(full) and not all(full)  # both kinds of rounds happened
    assert calls[0][0][0] == 7  # the prompt, once
    for i, (fed, ctx_tokens, toks) in enumerate(calls):
        assert fed[1:] == [1] * (len(toks) - 1)  # one token per further draft step
        if i:
            assert fed[0] == (2 if full[i - 1] else 1)
        assert toks == draft_greedy(close, ctx_tokens, len(toks))
    # in all: the prompt once, then at most 2 + (K - 1) per round; recomputing would grow quadratically
    assert sum(map(sum, (f for f, _, _ in calls))) == 7 + sum(f[0] for f, _, _ in calls[1:]) + st.drafted - len(calls)


def test_guessed_tokens_save_passes_not_change_the_draft(target_model, close):
    """guess=N: a draft pass also runs up to N tokens copied from the context after the drafted one (and, with
    guess_sync, the round's first pass after the committed tokens). The draft is the draft model's own greedy
    continuation either way; where the copies are what it drafts, their rows stand in for its passes (fewer
    forward calls than drafted tokens), and its cache holds exactly the kept tokens."""
    base = torch.randint(3, 64, (1, 6), generator=torch.Generator().manual_seed(3))
    cont = draft_greedy(close, base, 8)
    ctx_ids = torch.cat([base, torch.tensor([cont]), base], 1)  # after `base` again, the context offers `cont`
    want = draft_greedy(close, ctx_ids, 6)
    passes = {}
    for guess in (0, 1, 4):
        for sync in (False, True):
            d = DraftModelDrafter(TorchRunner(close, max_context=64), target_vocab=64, guess=guess, guess_sync=sync)
            spy = Spy(d.runner)
            d.start(ctx_ids)
            out = d.propose(DraftContext(ctx_ids, ctx_ids.shape[1], 6, ConstantPolicy(k=6), SamplingConfig()))
            assert out.tokens[0].tolist() == want  # the same draft
            assert spy.fed[0] == ctx_ids.shape[1] - 1  # the prompt's prefill, then the draft's passes
            assert out.info["draft_passes"] == len(spy.fed) - 1
            assert spy.fed[1] == 1 + (guess if sync else 0)  # the sync: the prompt's last token (and guesses after it)
            assert max(spy.fed[2:], default=1) <= 1 + guess
            assert d.runner.length == ctx_ids.shape[1] + 5  # the drafted tokens that were fed, nothing guessed beyond
            assert d.cached.tolist() == ctx_ids[0].tolist() + want[:5]
            passes[guess, sync] = out.info["draft_passes"]
    assert passes[0, False] == passes[0, True] == 6  # one pass a drafted token: the sync's and 5 more
    assert passes[4, False] < 6  # the copies were the draft's own tokens somewhere: passes saved
    # the sync's guesses (63 32 34 26 after the repeated `base`; the draft drafts 63 32 7 ...) save one more pass
    assert passes[1, True] <= passes[1, False] and passes[4, True] < passes[4, False]


def test_guesses_fit_the_draft_runners_pass(target_model, close):
    """In exact mode every pass has the runner's query length: a drafted token and its guesses fit in it."""
    ids = torch.tensor([[5, 6, 7, 8, 5, 6, 7, 8, 5, 6]])
    d = DraftModelDrafter(TorchRunner(close, max_context=64, query_len=2), target_vocab=64, guess=4)
    spy = Spy(d.runner)
    d.start(ids)
    out = d.propose(DraftContext(ids, ids.shape[1], 5, ConstantPolicy(k=5), SamplingConfig()))
    assert out.tokens[0].tolist() == draft_greedy(close, ids, 5)
    assert max(spy.fed[1:]) <= 2


def test_guesses_come_from_the_context_then_the_store():
    """A 2- or 3-token match in the context is copied; without one the store's most likely chain (guess_from=store);
    without a store (or a store chain) the continuation of the last token alone."""
    import numpy as np

    from specdec.drafters.aded.store import TrigramStore

    d = DraftModelDrafter.__new__(DraftModelDrafter)
    d.store = None
    seq = np.array([5, 6, 7, 8, 9, 5, 6])
    assert d._guesses(seq, 3) == [7, 8, 9]  # "5 6" came before, followed by 7 8 9
    one = np.array([5, 6, 7, 8, 9, 10, 6])
    assert d._guesses(one, 2) == [7, 8]  # only "6" matches: its continuation
    d.store = TrigramStore.build([[10, 6, 20, 21, 22, 23]], 64)
    assert d._guesses(one, 3) == [20, 21, 22]  # no 2-token match: the store's chain after (10, 6)
    assert d._guesses(seq, 3) == [7, 8, 9]  # the context's 2-token match comes first
    assert d._guesses(np.array([1, 2, 3]), 3) == []  # nothing anywhere
    assert d._guesses(seq, 0) == []


def test_guesses_are_the_default_for_chains_on_the_torch_runner(target_model, tokenizer, close):
    from specdec.drafters.draft_model import DEFAULT_GUESS

    dec = SpecDecoder(target_model, tokenizer, model_loader=lambda name: (close, tokenizer), draft="d")
    assert dec.drafter_for(SpecConfig(drafter="draft-model")).guess == DEFAULT_GUESS > 0
    assert dec.drafter_for(SpecConfig(drafter="hybrid")).model.guess == DEFAULT_GUESS
    assert dec.drafter_for(SpecConfig(drafter="draft-model", drafter_options={"tree_nodes": 8})).guess == 0
    assert dec.drafter_for(SpecConfig(drafter="draft-model", drafter_options={"guess": 2})).guess == 2


def test_guess_option_is_checked():
    from specdec.drafters.draft_model import MAX_GUESS, check_options

    for bad in (-1, MAX_GUESS + 1, True, 2.5):
        with pytest.raises(InputError, match="guess must be an integer"):
            check_options(guess=bad)
    with pytest.raises(InputError, match="chain"):
        check_options(guess=2, tree_nodes=8)
    with pytest.raises(InputError, match="guess_from"):
        check_options(guess=2, guess_from="web")
    with pytest.raises(InputError, match="guess_sync must be true or false"):
        check_options(guess=2, guess_sync="yes")
    check_options(guess=MAX_GUESS)


def test_long_prompt_is_prefilled_once(target_model, tokenizer, close):
    d = DraftModelDrafter(TorchRunner(close, max_context=64), target_vocab=64)
    spy = Spy(d.runner)
    ids = torch.randint(3, 64, (1, 20), generator=torch.Generator().manual_seed(0))
    d.start(ids)
    out = d.propose(DraftContext(ids, 20, 3, ConstantPolicy(k=3), SamplingConfig()))
    assert spy.fed == [19, 1, 1, 1]  # eager prefill of 19, the last prompt token, then 2 draft steps
    assert out.tokens[0].tolist() == draft_greedy(close, ids, 3)
    assert d.runner.length == 22  # prompt + the 2 drafted tokens that were fed


def test_start_resets_the_cache(target_model, close):
    d = DraftModelDrafter(TorchRunner(close, max_context=64), target_vocab=64)
    a = torch.tensor([[5, 6, 7, 8]])
    b = torch.tensor([[9, 10, 11]])
    ctx = lambda ids: DraftContext(ids, ids.shape[1], 3, ConstantPolicy(k=3), SamplingConfig())  # noqa: E731
    d.start(a)
    first = d.propose(ctx(a)).tokens.tolist()
    d.start(b)
    assert d.runner.length == 0
    assert d.propose(ctx(b)).tokens[0].tolist() == draft_greedy(close, b, 3)
    d.start(a)
    assert d.propose(ctx(a)).tokens.tolist() == first


def test_sampling_proposals_carry_q(close):
    cfg = SamplingConfig(temperature=0.8, top_k=10)
    d = DraftModelDrafter(TorchRunner(close, max_context=64), target_vocab=64)
    ids = torch.tensor([[5, 6, 7, 8]])
    d.start(ids)
    g = torch.Generator().manual_seed(0)
    out = d.propose(DraftContext(ids, 4, 3, ConstantPolicy(k=3), cfg, g))
    assert out.q.shape == (1, 3, 64)
    torch.testing.assert_close(out.q.sum(-1), torch.ones(1, 3))
    toks = out.tokens[0].tolist()
    for i, t in enumerate(toks):
        assert out.q[0, i, t] > 0
        assert (out.q[0, i] > 0).sum() == 10  # top-k applied to q as to p
    with torch.no_grad():  # q_i is the processed draft distribution after the drafted prefix
        seq = torch.cat([ids, torch.tensor([toks[:2]])], 1)
        ref = process_logits(close(seq).logits[0, -3:], cfg)
    torch.testing.assert_close(out.q[0], ref, atol=1e-5, rtol=1e-4)


def test_greedy_proposals_have_no_q(close):
    d = DraftModelDrafter(TorchRunner(close, max_context=64), target_vocab=64)
    ids = torch.tensor([[5, 6, 7, 8]])
    d.start(ids)
    assert d.propose(DraftContext(ids, 4, 2, ConstantPolicy(k=2), SamplingConfig())).q is None


def test_no_room_in_the_cache_gives_an_empty_draft(close):
    d = DraftModelDrafter(TorchRunner(close, max_context=8), target_vocab=64)
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    d.start(ids)
    d.propose(DraftContext(ids, 6, 1, ConstantPolicy(k=1), SamplingConfig()))
    out = d.propose(DraftContext(torch.cat([ids, torch.tensor([[3]])], 1), 6, 3, ConstantPolicy(k=3), SamplingConfig()))
    assert out.length == 0


def test_a_draft_with_a_shorter_context_than_the_target(target_model, tokenizer):
    """The draft's max_position_embeddings (24) is below the target's (512): once the text outgrows it,
    the drafter proposes nothing (instead of overflowing its cache); the output stays lossless."""
    import transformers

    torch.manual_seed(1)
    cfg = transformers.Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=24,
                                   tie_word_embeddings=False)
    short = transformers.Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():
        for ps, pt in zip(short.parameters(), target_model.parameters()):
            ps.copy_(pt)  # the target's weights: drafts get accepted while they fit
    dec = SpecDecoder(target_model, tokenizer, spec=SpecConfig(drafter="draft-model", k=4),
                      model_loader=lambda name: (short, tokenizer), draft="d")
    p = torch.tensor([[12, 40, 7, 33, 21, 9, 14, 50, 22, 31, 8, 17]])
    stop = StopConfig(max_new_tokens=30, eos_token_ids=())
    plain = [t for r in dec.stream_ids(p, spec=SpecConfig(), stop=stop) for t in r.tokens]
    st = GenerationStats()
    out = [t for r in dec.stream_ids(p, stop=stop, stats=st) for t in r.tokens]
    assert out == plain
    assert st.accepted > 0
    assert dec.drafter_for(dec.spec).runner.length <= 24


def test_sync_keeps_only_the_longest_shared_prefix(close):
    """Without start(), a context that differs from the cached tokens in the middle (and agrees after it) must
    roll the cache back to the first difference, not just count equal positions."""
    d = DraftModelDrafter(TorchRunner(close, max_context=64), target_vocab=64)
    a = torch.tensor([[5, 6, 7, 8, 9, 10]])
    b = torch.tensor([[5, 6, 44, 8, 9, 10, 11]])
    cfg = SamplingConfig(temperature=1.0)
    d.start(a)
    d.propose(DraftContext(a, 6, 3, ConstantPolicy(k=3), cfg, torch.Generator().manual_seed(0)))
    out = d.propose(DraftContext(b, 6, 1, ConstantPolicy(k=1), cfg, torch.Generator().manual_seed(0)))
    with torch.no_grad():  # q (a continuous function of the cache) must be the draft's distribution after b
        torch.testing.assert_close(out.q[0, 0], process_logits(close(b).logits[0, -1], cfg), atol=1e-5, rtol=1e-4)


def test_a_restricted_draft_vocabulary_is_lossless_and_drafts_only_those_ids(target_model, tokenizer, close):
    """vocab=N: the draft's output layer computes the first N ids (+ specials); drafts never leave them and
    the output still equals plain decoding (the target verifies every token)."""
    from spec_helpers import random_prompts

    dec = SpecDecoder(target_model, tokenizer, spec=SpecConfig(drafter="draft-model", k=4, guard=False,
                                                               drafter_options={"vocab": 40}),
                      model_loader=lambda name: (close, tokenizer), draft="d")
    drafter = dec.drafter_for(dec.spec)
    assert drafter.runner.vocab_size == 48 and drafter.runner.vocab_ids.tolist()[:40] == list(range(40))
    plain = SpecDecoder(target_model, tokenizer)
    seen: set[int] = set()
    orig = drafter.propose

    def propose(ctx):
        d = orig(ctx)
        seen.update(d.tokens[0].tolist())
        return d

    drafter.propose = propose
    st = GenerationStats()
    for p in random_prompts(8, seed=5):
        want = [t for r in plain.stream_ids(p, stop=StopConfig(max_new_tokens=20)) for t in r.tokens]
        got = [t for r in dec.stream_ids(p, stop=StopConfig(max_new_tokens=20), stats=st) for t in r.tokens]
        assert got == want
    assert seen and seen <= set(drafter.runner.vocab_ids.tolist()) and st.accepted > 0


@pytest.mark.parametrize("given,want", [(None, 40), (0, None), (24, 24)])
def test_the_default_vocabulary_cut_applies_only_where_the_vocabulary_is_larger(
        monkeypatch, target_model, tokenizer, close, given, want):
    """Not given: DEFAULT_VOCAB ids (here patched to 40 of the tiny model's 64) on the torch runner; 0: every id;
    N: N ids (+ specials). A draft whose vocabulary is not larger than the default keeps every id."""
    import specdec.drafters.draft_model as dm

    monkeypatch.setattr(dm, "DEFAULT_VOCAB", 40)
    options = {} if given is None else {"vocab": given}
    dec = SpecDecoder(target_model, tokenizer, spec=SpecConfig(drafter="draft-model", k=4, drafter_options=options),
                      model_loader=lambda name: (close, tokenizer), draft="d")
    ids = dec.drafter_for(dec.spec).runner.vocab_ids
    assert (ids is None) if want is None else ids.tolist()[:want] == list(range(want))
    monkeypatch.setattr(dm, "DEFAULT_VOCAB", 64)  # not smaller than the vocabulary: nothing cut
    dec = SpecDecoder(target_model, tokenizer, spec=SpecConfig(drafter="draft-model", k=4),
                      model_loader=lambda name: (close, tokenizer), draft="d")
    assert dec.drafter_for(dec.spec).runner.vocab_ids is None
