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


def test_the_loop_charges_the_guard_for_the_drafters_observe():
    """A drafter whose drafting is free but whose `observe` takes 20 ms a round loses time against a 1 ms plain
    step: the guard is charged that time and switches speculation off."""
    import time

    import specdec.engine.loop as loop_mod
    from policies.simple import ConstantPolicy
    from specdec.api import SpecDecoder
    from specdec.config import SamplingConfig
    from specdec.engine.stopping import StopChecker
    from specdec.stats import GenerationStats

    seen = []

    class SlowToLearn(RandomTreeDrafter):
        def observe(self, result):
            time.sleep(0.02)

    class Spy(Guard):
        def observe(self, drafted, committed, seconds, rows=0, verify_seconds=None):
            seen.append((drafted, seconds))
            super().observe(drafted, committed, seconds, rows, verify_seconds)

    dec = SpecDecoder(make_model("qwen2", seed=0, sharp=8.0), make_tokenizer())
    st = GenerationStats()
    orig, loop_mod.Guard = loop_mod.Guard, Spy
    try:
        list(loop_mod.decode(dec.target, random_prompts(1, seed=3)[0], StopChecker(60, set(), (), lambda ids: ""),
                             SamplingConfig(), SlowToLearn(64, seed=1, trees=False), ConstantPolicy(k=2), st,
                             costs=RoundCosts(verify=lambda n: 0.001), guard=True))
    finally:
        loop_mod.Guard = orig
    drafted = [sec for d, sec in seen if d]
    assert drafted and all(sec >= 0.02 for sec in drafted)  # each drafting round charged its observe's 20 ms
    assert st.extra["guard_switched_off"] >= 1


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
