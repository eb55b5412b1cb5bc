"""The never-slower-than-plain guard: it switches speculation off when measured rounds lose time, backs off
exponentially, comes back, and never changes the output."""
from __future__ import annotations

import torch

from policies.base import RoundCosts
from spec_helpers import EmptyDrafter, RandomTreeDrafter, make_model, make_tokenizer, random_prompts
from specdec.engine.guard import GUARD_WINDOW, Guard


def test_rounds_that_lose_time_switch_speculation_off_with_back_off():
    g = Guard(verify=lambda n: 0.1)
    for _ in range(GUARD_WINDOW):
        assert g.allow()
        g.observe(drafted=4, committed=1, seconds=0.2)  # each round lost one plain step
    assert not g.allow() and g.off_rounds == 8 and g.switched_off == 1
    for _ in range(8):
        g.observe(drafted=0, committed=1, seconds=0.1)  # the plain rounds it forced
    assert g.allow()
    for _ in range(GUARD_WINDOW):
        g.observe(drafted=4, committed=1, seconds=0.2)
    assert g.off_rounds == 16  # twice as long the second time


def test_rounds_that_pay_keep_speculation_on():
    g = Guard(verify=lambda n: 0.1)
    for _ in range(5 * GUARD_WINDOW):
        g.observe(drafted=4, committed=3, seconds=0.15)  # 3 tokens for 1.5 plain steps
        assert g.allow()
    # a few bad rounds among good ones are tolerated (the window sums gains and losses)
    for i in range(3 * GUARD_WINDOW):
        g.observe(drafted=4, committed=1 if i % 4 == 0 else 3, seconds=0.15)
        assert g.allow()


def test_rounds_where_the_drafter_was_asked_and_drafted_nothing_are_judged_by_what_they_cost():
    """An empty draft still cost the drafter's search and bookkeeping: such rounds count as speculative (a small
    loss each), so a drafter that drafts little and pays little is switched off; a round the guard itself made plain
    (the drafter not asked) only counts down the back-off."""
    g = Guard(verify=lambda n: 0.1)
    for _ in range(GUARD_WINDOW):  # 1 token for 0.115 s: 0.15 of a plain step lost a round, 1.2 in 8
        g.observe(drafted=0, committed=1, seconds=0.115, consulted=True)
    assert not g.allow() and g.switched_off == 1
    h = Guard(verify=lambda n: 0.1)
    for _ in range(4 * GUARD_WINDOW):
        h.observe(drafted=0, committed=1, seconds=0.11)  # not asked (default: consulted = drafted > 0)
        h.observe(drafted=0, committed=1, seconds=0.11, consulted=False)
    assert h.allow() and not h.gains


def test_the_loop_charges_the_guard_for_the_drafters_observe_and_judges_empty_drafts():
    import time

    import specdec.engine.loop as loop_mod
    from policies.simple import ConstantPolicy
    from specdec.api import SpecDecoder
    from specdec.config import SamplingConfig
    from specdec.engine.stopping import StopChecker
    from specdec.stats import GenerationStats

    seen = []

    class Slow(EmptyDrafter):  # drafts nothing, then spends 20 ms a round learning from the result
        def observe(self, result):
            time.sleep(0.02)

    class Spy(Guard):
        def observe(self, drafted, committed, seconds, rows=0, verify_seconds=None, consulted=None):
            seen.append((drafted, seconds, consulted))
            super().observe(drafted, committed, seconds, rows, verify_seconds, consulted)

    dec = SpecDecoder(make_model("qwen2", seed=0, sharp=8.0), make_tokenizer())
    st = GenerationStats()
    orig, loop_mod.Guard = loop_mod.Guard, Spy
    try:
        list(loop_mod.decode(dec.target, random_prompts(1, seed=3)[0], StopChecker(60, set(), (), lambda ids: ""),
                             SamplingConfig(), Slow(), ConstantPolicy(k=3), st,
                             costs=RoundCosts(verify=lambda n: 0.001), guard=True))
    finally:
        loop_mod.Guard = orig
    asked = [x for x in seen if x[2]]
    assert asked and all(d == 0 and sec >= 0.02 for d, sec, _ in asked)  # judged, and charged the observe's time
    assert st.extra["guard_switched_off"] >= 1  # 20 ms a round against a 1 ms plain step: switched off
    assert any(c is False for _, _, c in seen)  # the rounds it then made plain: the drafter not asked


def test_the_plain_step_is_the_curve_scaled_to_the_run():
    """The curve's one-row pass, times the median ratio of the rounds' measured verification to the curve's price
    for their rows: rounds that are slower than the curve everywhere (a longer context, the loop's own work) make
    plain decoding slower too, and a round the unscaled curve would count as a loss is then a gain."""
    curve = lambda n: 0.05 + 0.005 * (n - 1)  # noqa: E731
    g = Guard(verify=curve)
    assert g.plain_step == 0.05  # nothing measured yet: the curve's
    for _ in range(GUARD_WINDOW):
        g.observe(drafted=6, committed=2, seconds=0.12, rows=7, verify_seconds=1.2 * curve(7))
    assert abs(g.plain_step - 0.06) < 1e-12  # rounds ran at 1.2x the curve
    assert g.allow() and abs(sum(g.gains)) < 1e-9  # 2 tokens in 0.12 s: what plain decoding takes at 0.06 s a token
    unscaled = Guard(verify=curve)
    for _ in range(GUARD_WINDOW):
        unscaled.observe(drafted=6, committed=2, seconds=0.12)  # no verification times: the curve's 0.05 s
    assert not unscaled.allow()  # the same rounds judged a loss of 0.4 plain steps each
    g.observe(drafted=0, committed=1, seconds=0.1, rows=1, verify_seconds=0.1)  # a plain round measures it too
    assert len(g.scales) == GUARD_WINDOW + 1


def test_round_costs_gain_arithmetic():
    c = RoundCosts(verify=lambda n: 0.05 + 0.01 * (n - 1), draft_token=0.02)
    assert abs(c.round(4) - (0.08 + 0.09)) < 1e-12
    assert abs(c.gain(4, 5) - (5 * 0.05 - 0.17)) < 1e-12


class _SlowGarbage(RandomTreeDrafter):
    """Random chains (almost never accepted) that take 20 ms each: speculation only loses time."""

    def propose(self, ctx):
        import time

        time.sleep(0.02)
        return super().propose(ctx)


def test_the_loop_falls_back_to_plain_rounds_and_keeps_the_output():
    from specdec.api import SpecDecoder
    from specdec.config import SpecConfig, StopConfig
    from specdec.engine.loop import decode
    from specdec.engine.stopping import StopChecker
    from specdec.config import SamplingConfig
    from policies.simple import ConstantPolicy
    from specdec.stats import GenerationStats

    dec = SpecDecoder(make_model("qwen2", seed=0, sharp=8.0), make_tokenizer())
    costs = RoundCosts(verify=lambda n: 0.001)  # a plain step "costs" 1 ms: 20 ms drafts never pay
    prompt = random_prompts(1, seed=3)[0]
    plain = [t for r in dec.stream_ids(prompt, stop=StopConfig(max_new_tokens=120), spec=SpecConfig()) for t in r.tokens]
    out, calls = {}, {}
    for guard in (False, True):
        drafter = _SlowGarbage(64, seed=1, trees=False)
        st = GenerationStats()
        stopper = StopChecker(120, set(), (), lambda ids: "")
        toks = [t for r in decode(dec.target, prompt, stopper, SamplingConfig(), drafter, ConstantPolicy(k=4), st,
                                  costs=costs, guard=guard) for t in r.tokens]
        out[guard], calls[guard] = toks, st
    assert out[True] == out[False] == plain
    assert calls[True].extra["guard_switched_off"] >= 1
    assert calls[True].draft_calls < calls[False].draft_calls / 2  # most rounds became plain rounds
    assert "guard_switched_off" not in calls[False].extra
