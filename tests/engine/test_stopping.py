"""Stop conditions: StopChecker alone, then end to end: speculative rounds stop exactly where plain decoding does
(EOS inside an accepted draft, stop strings ending mid-round, max_new_tokens), with the same stop_reason."""
from __future__ import annotations

import copy

import pytest

from spec_helpers import ScriptedDrafter, hf_greedy, oracle_script, random_prompts  # isort: skip
from policies.simple import ConstantPolicy
from specdec.api import SpecDecoder
from specdec.config import SamplingConfig, SpecConfig, StopConfig
from specdec.engine.loop import decode
from specdec.runners.torch_runner import TorchRunner
from specdec.engine.stopping import StopChecker
from specdec.stats import GenerationStats


def words(ids):
    return " ".join(f"t{i}" for i in ids)


# ------------------------------------------------------------------ StopChecker
def test_nothing_to_stop_keeps_everything():
    assert StopChecker(10, {1}).cut([4, 5], [6, 7, 8]) == (3, "")


def test_eos_is_kept_and_ends_the_batch():
    assert StopChecker(10, {1, 9}).cut([], [4, 9, 1, 5]) == (2, "eos")
    assert StopChecker(10, {1}).cut([4], [1]) == (1, "eos")


def test_max_new_tokens_cuts_mid_batch():
    assert StopChecker(5, set()).cut([3, 3, 3], [4, 4, 4]) == (2, "max_new_tokens")
    assert StopChecker(5, set()).cut([3, 3, 3, 3], [4]) == (1, "max_new_tokens")


def test_eos_wins_over_max_new_tokens_on_the_same_token():
    assert StopChecker(3, {1}).cut([5, 5], [1, 6]) == (1, "eos")


def test_stop_string_is_found_across_the_batch_boundary():
    sc = StopChecker(50, set(), ("t5 t6",), words)
    assert sc.cut([4, 5], [6, 7]) == (1, "stop_string")  # completed by the first new token, which is kept
    assert sc.cut([4], [5, 7, 5, 6, 8]) == (4, "stop_string")
    assert sc.cut([4], [5, 7]) == (2, "")


def test_stop_string_inside_one_token_text():
    sc = StopChecker(50, set(), ("12",), words)
    assert sc.cut([], [3, 5, 112, 4]) == (3, "stop_string")


def test_stop_strings_need_a_decoder_and_empty_ones_are_ignored():
    with pytest.raises(ValueError):
        StopChecker(5, set(), ("x",))
    sc = StopChecker(5, set(), ("",), words)
    assert sc.cut([], [1, 2]) == (2, "")


# ------------------------------------------------------------------ end to end
K = 4  # the oracle drafts K tokens per round and all are accepted: rounds commit K + 1 tokens


@pytest.fixture(scope="module")
def setting(target_model, tokenizer):
    """A prompt whose plain continuation has first occurrences of tokens both inside an accepted draft and at a
    bonus position (with the oracle's rounds of K + 1)."""
    for p in random_prompts(40, seed=11):
        g = hf_greedy(target_model, p, 30)
        fresh = [j for j in range(1, 14) if g[j] not in g[:j] and j % (K + 1) != K]
        at_bonus = [j for j in range(30) if g[j] not in g[:j] and j % (K + 1) == K]
        if len(set(g)) > 6 and fresh and at_bonus:
            return p, g, fresh, at_bonus
    raise AssertionError("no suitable prompt")


@pytest.fixture(scope="module")
def perfect_decoder(target_model, tokenizer):
    """draft-model with a draft that IS the target (every drafted token accepted)."""
    twin = copy.deepcopy(target_model)
    return SpecDecoder(target_model, tokenizer, model_loader=lambda name: (twin, tokenizer), draft="d")


def oracle_run(target_model, prompt, truth, stopper):
    st = GenerationStats()
    d = ScriptedDrafter(oracle_script(truth, prompt.shape[1], k=K))
    rounds = list(decode(TorchRunner(target_model, max_context=128), prompt, stopper, SamplingConfig(), d,
                         ConstantPolicy(k=K), st))
    return [t for r in rounds for t in r.tokens], rounds, st


def api_run(dec, prompt, spec, stop):
    st = GenerationStats()
    out = [t for r in dec.stream_ids(prompt, stop=stop, spec=spec, stats=st) for t in r.tokens]
    return out, st.stop_reason


SPECS = [SpecConfig(), SpecConfig(drafter="draft-model", k=K), SpecConfig(drafter="prompt-lookup", k=K)]
SPEC_IDS = ["plain", "draft-model", "prompt-lookup"]


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_eos_inside_an_accepted_draft(target_model, perfect_decoder, setting, spec):
    p, g, fresh, _ = setting
    j = fresh[0]
    eos = g[j]
    want = g[: j + 1]  # EOS kept
    stop = StopConfig(max_new_tokens=30, eos_token_ids=(eos,))
    assert api_run(perfect_decoder, p, spec, stop) == (want, "eos")
    out, rounds, st = oracle_run(target_model, p, g, StopChecker(30, {eos}))
    assert out == want and st.stop_reason == "eos" and st.new_tokens == len(want)
    # the round that produced EOS had it among its accepted draft tokens (not the bonus) and was cut after it
    assert rounds[-1].num_accepted == len(rounds[-1].tokens) <= K


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_eos_as_the_bonus_token(target_model, perfect_decoder, setting, spec):
    p, g, _, at_bonus = setting
    j = at_bonus[0]
    stop = StopConfig(max_new_tokens=30, eos_token_ids=(g[j],))
    assert api_run(perfect_decoder, p, spec, stop) == (g[: j + 1], "eos")
    out, rounds, _ = oracle_run(target_model, p, g, StopChecker(30, {g[j]}))
    assert out == g[: j + 1] and rounds[-1].num_accepted == K and len(rounds[-1].tokens) == K + 1


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_stop_string_ending_mid_round(target_model, tokenizer, perfect_decoder, setting, spec):
    p, g, fresh, _ = setting
    dec = lambda ids: tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
    # a two-token stop string ending at a position inside a round
    j = next(j for j in range(2, 14) if j % (K + 1) not in (0, K) and dec(g[j - 1 : j + 1]) not in dec(g[:j]))
    s = dec(g[j - 1 : j + 1])
    first = next(i for i in range(1, 31) if s in dec(g[:i]))  # independent expectation
    assert first == j + 1
    stop = StopConfig(max_new_tokens=30, stop_strings=(s,))
    assert api_run(perfect_decoder, p, spec, stop) == (g[:first], "stop_string")
    out, rounds, st = oracle_run(target_model, p, g, StopChecker(30, set(), (s,), dec))
    assert out == g[:first] and st.stop_reason == "stop_string"
    assert 0 < len(rounds[-1].tokens) < K + 1  # the last round was cut


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
@pytest.mark.parametrize("n", [1, 6, 7, 11])
def test_max_new_tokens_reached_exactly(perfect_decoder, setting, spec, n):
    p, g, _, _ = setting
    stop = StopConfig(max_new_tokens=n, eos_token_ids=())
    assert api_run(perfect_decoder, p, spec, stop) == (g[:n], "max_new_tokens")


def test_max_new_tokens_with_oracle_rounds(target_model, setting):
    p, g, _, _ = setting
    out, rounds, st = oracle_run(target_model, p, g, StopChecker(7, set()))
    assert out == g[:7] and st.stop_reason == "max_new_tokens"
    assert [len(r.tokens) for r in rounds] == [5, 2]  # K + 1, then the draft shrinks to the budget


def test_ignore_eos(perfect_decoder, setting):
    p, g, fresh, _ = setting
    stop = StopConfig(max_new_tokens=12, eos_token_ids=(g[fresh[0]],), ignore_eos=True)
    assert api_run(perfect_decoder, p, SpecConfig(drafter="draft-model", k=K), stop) == (g[:12], "max_new_tokens")


def test_generate_reports_stop_reason_and_text(perfect_decoder, tokenizer, setting):
    p, g, fresh, _ = setting
    text = tokenizer.decode(p[0].tolist())
    res = perfect_decoder.generate(text, chat=False, max_new_tokens=30, eos_token_ids=(g[fresh[0]],),
                                   drafter="draft-model", k=K)
    assert res.token_ids == g[: fresh[0] + 1]
    assert res.stats.stop_reason == "eos"
    assert res.text == tokenizer.decode(g[: fresh[0] + 1], skip_special_tokens=True)
