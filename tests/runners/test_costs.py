"""specdec.runners.costs.PassCosts: the interpolated cost curve, its marginal row, and the (T, T') line the
budget rule reads."""
from __future__ import annotations

import pytest

from specdec.runners.costs import PassCosts


def test_curve_interpolates_and_extrapolates_with_the_last_slope():
    c = PassCosts((1, 4, 8), (0.1, 0.13, 0.21))
    assert c(1) == 0.1 and c(2) == pytest.approx(0.11) and c(6) == pytest.approx(0.17)
    assert c(10) == pytest.approx(0.25)  # the last slope (0.02 a row) beyond the measured rows
    assert c.marginal(2) == pytest.approx(0.01)
    t, slope = c.line(4)
    assert t == pytest.approx(0.13) and slope == pytest.approx(0.02)  # what a 5th row adds
    assert PassCosts((1, 2), (0.2, 0.1)).line(1)[1] == 0.0  # a noisy falling curve: a row never saves time
    curve = c.curve()
    assert curve["rows"] == [1, 4, 8] and curve["ms"] == [100.0, 130.0, 210.0] and curve["vs_one_row"][2] == 2.1


def test_rows_must_be_increasing_and_match():
    with pytest.raises(ValueError):
        PassCosts((4, 1), (0.1, 0.2))
    with pytest.raises(ValueError):
        PassCosts((1, 2), (0.1,))


def test_settle_takes_the_least_of_a_row_count_and_every_larger_one():
    from specdec.runners.costs import disturbed, settle

    assert settle((0.150, 0.085, 0.133, 0.161)) == (0.085, 0.085, 0.133, 0.161)  # this machine's cached 1.5B curve
    assert settle((0.03, 0.04, 0.05)) == (0.03, 0.04, 0.05)
    assert disturbed((0.150, 0.085, 0.133)) and not disturbed((0.030, 0.029, 0.05))  # 3% noise is not disturbance


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class SlowFirstRunner:
    """Passes cost 10 ms + 1 ms a row, except the first `slow` calls (another process, pages touched the first
    time): 100 ms more each."""

    name, max_pass, max_context, vocab_size = "fake", 64, 1024, 1000

    def __init__(self, clock, slow):
        self.clock, self.slow, self.calls, self.length = clock, slow, 0, 0

    def reset(self):
        self.length = 0

    def prefill(self, ids):
        self.length = ids.shape[1]

    def forward(self, ids, **kw):
        self.calls += 1
        self.clock.now += 0.010 + 0.001 * ids.shape[1] + (0.1 if self.calls <= self.slow else 0.0)


def test_measure_sweeps_interleave_so_a_burst_does_not_own_a_row_count(monkeypatch):
    import specdec.runners.costs as costs

    clock = FakeClock()
    monkeypatch.setattr(costs.time, "perf_counter", clock)
    rows = (1, 2, 4, 8)
    # the first 8 passes slow: the warm-up sweep and the first timed one (measured one row count at a time,
    # as before, they would have been all of the 1-row passes)
    runner = SlowFirstRunner(clock, slow=8)
    got = costs.measure(runner, rows=rows, context=16, repeats=3)
    assert got.seconds == pytest.approx((0.011, 0.012, 0.014, 0.018))
    assert runner.length == 0
    # slow through every timed sweep alike: the shape is not disturbed, nothing to tell it from a slower machine
    said = []
    runner = SlowFirstRunner(clock, slow=4 * 4)
    got = costs.measure(runner, rows=rows, context=16, repeats=3, say=said.append)
    assert runner.calls == 4 * 4 and not said
    assert got.seconds == pytest.approx((0.111, 0.112, 0.114, 0.118))


def test_a_disturbed_shape_is_measured_once_more(monkeypatch):
    import specdec.runners.costs as costs

    clock = FakeClock()
    monkeypatch.setattr(costs.time, "perf_counter", clock)

    class OneRowSlow(SlowFirstRunner):  # only 1-row passes slow during the first attempt
        def forward(self, ids, **kw):
            self.calls += 1
            slow = ids.shape[1] == 1 and self.calls <= 16
            self.clock.now += 0.010 + 0.001 * ids.shape[1] + (0.1 if slow else 0.0)

    said = []
    runner = OneRowSlow(clock, slow=0)
    got = costs.measure(runner, rows=(1, 2, 4, 8), context=16, repeats=3, say=said.append)
    assert runner.calls == 16 + 12 and len(said) == 1 and "disturbed" in said[0]
    assert got.seconds == pytest.approx((0.011, 0.012, 0.014, 0.018))


def test_a_cached_curve_from_a_busier_machine_is_measured_again(monkeypatch, tmp_path):
    import json

    import specdec.runners.costs as costs

    clock = FakeClock()
    monkeypatch.setattr(costs.time, "perf_counter", clock)
    monkeypatch.setattr(costs, "cache_file", lambda runner, cache_dir=None: tmp_path / "fake.json")

    class Named(SlowFirstRunner):
        def fingerprint(self):
            return "fake|named"

    said = []
    first = costs.pass_costs(Named(clock, slow=0), say=said.append)  # measured and cached
    assert "measuring" in said[0] and first.seconds[0] == pytest.approx(0.011)
    runner = Named(clock, slow=0)
    assert costs.pass_costs(runner, say=said.append) == first and len(said) == 1  # cached: only the probe ran
    assert runner.calls == 4  # one untimed 1-row pass and three timed ones
    # a curve cached while other work ran: every pass 0.1 s slower
    busy = costs.PassCosts((1, 2), (0.111, 0.112), measured="then")
    (tmp_path / "fake.json").write_text(json.dumps({"format": costs.FORMAT, "costs": busy.to_dict()}))
    again = costs.pass_costs(Named(clock, slow=0), say=said.append)
    assert "busier machine" in said[-1] and again.seconds[0] == pytest.approx(0.011)
    assert json.loads((tmp_path / "fake.json").read_text())["costs"]["seconds"][0] == pytest.approx(0.011)
    # a machine busier now than when the curve was cached keeps the cache
    runner = Named(clock, slow=4)
    assert costs.pass_costs(runner, say=said.append) == again and runner.calls == 4
