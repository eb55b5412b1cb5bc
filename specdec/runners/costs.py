"""Measured costs of a runner: seconds per decode/verify pass by number of rows, once per machine and
runner, cached on disk.

Why measured, not assumed: on a 2-core CPU a pass over several rows is far from free and its price
depends on the kernels (measured here: llama.cpp's Q4_K path 80 ms for 1 row, 157 ms for 4, 240 ms for 8;
PyTorch's int4 kernel 60 / 77 / 147 ms; bf16 through oneDNN with AMX 150 ms whatever the rows), so the
right draft length differs by runner, weights and machine.

    costs = pass_costs(runner)       # PassCosts; measured (a few seconds) the first time, then from disk
    costs(5)                         # seconds for a 5-row pass (interpolated between measured rows)
    costs.marginal(5)                # costs(5) - costs(4): what the 4th draft token adds to verification
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import weakref
from dataclasses import asdict, dataclass
from collections.abc import Sequence
from pathlib import Path

import torch

from specdec import cpuinfo
from specdec.jsonl import write_text_atomic

ROWS = (1, 2, 3, 4, 5, 6, 8, 12, 16)
CURVE_ROWS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64)  # the published curve (`specdec bench --cost-curve`)
CONTEXT = 256
REPEATS = 5
FORMAT = 2  # 2: interleaved sweeps, settled (format 1's caches could hold a disturbed 1-row pass)


@dataclass(frozen=True)
class PassCosts:
    """Seconds of one pass with `rows[i]` rows after `context` committed tokens (the fastest of the repeats:
    another process on a shared machine only ever adds time, and a cost cached from a disturbed run would
    mislead every later run -- seen here: a draft measured at 0.8 s a pass while another benchmark ran,
    0.038 s alone)."""

    rows: tuple[int, ...]
    seconds: tuple[float, ...]
    context: int = CONTEXT
    measured: str = ""  # when (ISO time), or "" for costs given by hand

    def __post_init__(self) -> None:
        if not self.rows or len(self.rows) != len(self.seconds) or list(self.rows) != sorted(set(self.rows)):
            raise ValueError(f"rows must be increasing and match seconds, got {self.rows}, {self.seconds}")

    def __call__(self, n: int) -> float:
        """Seconds for an n-row pass: linear between measured rows, the last slope beyond them."""
        r, s = self.rows, self.seconds
        n = max(int(n), 1)
        if n <= r[0]:
            return s[0]
        for i in range(1, len(r)):
            if n <= r[i]:
                return s[i - 1] + (s[i] - s[i - 1]) * (n - r[i - 1]) / (r[i] - r[i - 1])
        slope = (s[-1] - s[-2]) / (r[-1] - r[-2]) if len(r) > 1 else 0.0
        return s[-1] + max(slope, 0.0) * (n - r[-1])

    def marginal(self, n: int) -> float:
        return self(n) - self(n - 1) if n > 1 else self(1)

    def line(self, rows: float) -> tuple[float, float]:
        """(seconds of a `rows`-row pass, seconds the next row adds): the cost curve as specdec.budget reads it."""
        n = max(int(rows), 1)
        return self(n), max(self.marginal(n + 1), 0.0)

    def to_dict(self) -> dict:
        return asdict(self)

    def curve(self) -> dict:
        """For reports: rows, milliseconds, and each pass's time over the 1-row pass's."""
        return {"rows": list(self.rows), "ms": [round(t * 1e3, 2) for t in self.seconds],
                "vs_one_row": [round(t / self.seconds[0], 3) for t in self.seconds], "context": self.context,
                "measured": self.measured}

    @classmethod
    def from_dict(cls, d: dict) -> "PassCosts":
        return cls(tuple(int(x) for x in d["rows"]), tuple(float(x) for x in d["seconds"]),
                   int(d.get("context", CONTEXT)), str(d.get("measured", "")))


def machine_id() -> str:
    """CPU model, core count and torch threads: what makes a measurement another machine's."""
    return f"{cpuinfo.model()}|{os.cpu_count()}|{torch.get_num_threads()}"


def cache_file(runner, cache_dir=None) -> Path:
    from specdec.zoo.catalog import cache_root

    key = hashlib.sha256(f"{machine_id()}|{runner.fingerprint()}".encode()).hexdigest()[:20]
    return cache_root(cache_dir) / "costs" / f"{runner.name}-{key}.json"


def settle(seconds: Sequence[float]) -> tuple[float, ...]:
    """Each row count's time as the least measured for it or for any larger pass: a pass over more rows never
    costs less, and another process only ever adds time, so a point above a later one was disturbed.

    Why: the 1.5B's cached curve here read 150 ms for 1 row and 85 ms for 2 (measured right after a load, the
    1-row passes first), so the guard took a plain step for 150 ms (30 ms measured alone) and the sized drafters
    saw rows as free up to 2 and dear past it."""
    out = list(seconds)
    for i in range(len(out) - 2, -1, -1):
        out[i] = min(out[i], out[i + 1])
    return tuple(out)


def disturbed(seconds: Sequence[float], tolerance: float = 0.8) -> bool:
    """A curve where a pass over more rows was measured much faster than one over fewer (see `settle`)."""
    return any(seconds[i] < tolerance * max(seconds[:i]) for i in range(1, len(seconds)))


@torch.no_grad()
def measure(runner, rows: tuple[int, ...] = ROWS, context: int = CONTEXT, repeats: int = REPEATS,
            say=None) -> PassCosts:
    """Time passes of each row count after `context` committed tokens (ordinary token ids); the runner's
    cache is left empty. One untimed sweep over every row count (a compiled runner compiles the shape; the
    weights' pages are touched), then `repeats` sweeps, interleaved so that a burst of other work lands on one
    sweep's points rather than on all of one row count's; each row count's fastest. A curve still `disturbed`
    is measured once more (element-wise fastest of both), then `settle`d."""
    rows = tuple(n for n in rows if n <= runner.max_pass and n <= runner.max_context // 2) or (1,)
    context = max(1, min(context, runner.max_context - max(rows)))
    V = runner.vocab_size
    g = torch.Generator().manual_seed(0)
    lo = min(100, V // 4)
    ids = torch.randint(lo, max(V - lo, lo + 1), (1, context + max(rows)), generator=g)
    runner.reset()
    runner.prefill(ids[:, :context])
    best = [float("inf")] * len(rows)
    for attempt in range(2):
        for sweep in range(repeats + (attempt == 0)):
            for i, n in enumerate(rows):
                t0 = time.perf_counter()
                runner.forward(ids[:, context : context + n])
                dt = time.perf_counter() - t0
                if attempt or sweep:  # the first sweep is the warm-up
                    best[i] = min(best[i], dt)
        if not disturbed(best):
            break
        if say and not attempt:
            say(f"{runner.name} pass costs look disturbed (another process?): measuring once more")
    runner.reset()
    return PassCosts(rows, settle(best), context, time.strftime("%Y-%m-%dT%H:%M:%S%z"))


PROBE_CONTEXT = 16
STALE = 0.8  # a fresh 1-row pass under this share of the cached one: the cache was measured on a busier machine


def probe(runner) -> float:
    """Seconds of a 1-row pass now: the fastest of 3 after a 16-token context (and an untimed one)."""
    return measure(runner, rows=(1,), context=PROBE_CONTEXT, repeats=3).seconds[0]


_KNOWN: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # runner -> its costs, in this process


def pass_costs(runner, cache_dir=None, remeasure: bool = False, say=None) -> PassCosts:
    """The runner's costs, once per runner object in a process (the guard's round costs and a sized drafter
    ask for the same runner's: one probe, one measurement), from the cache, else measured now and cached
    (atomically). A model without a name (built in memory) is measured, not cached on disk: nothing identifies
    it there. A cached curve is checked by a `probe` (4 one-row passes): where a pass now runs well under the
    cached 1-row time, the curve was measured while other work ran and is measured again. Why: this machine's
    cache held a 1.5B curve measured during a test run (75 ms a 1-row pass, 40 ms alone), which every later
    run's guard and sized drafters read."""
    if not remeasure and runner in _KNOWN:
        return _KNOWN[runner]
    costs = _pass_costs(runner, cache_dir, remeasure, say)
    _KNOWN[runner] = costs
    return costs


def _read_cached(path: Path) -> PassCosts | None:
    """The cached curve at `path`, or None (missing, unreadable, an older format)."""
    try:
        d = json.loads(path.read_text())
        return PassCosts.from_dict(d["costs"]) if d.get("format") == FORMAT else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _pass_costs(runner, cache_dir, remeasure: bool, say) -> PassCosts:
    if "<unnamed>" in runner.fingerprint():
        return measure(runner)
    path = cache_file(runner, cache_dir)
    cached = None if remeasure else _read_cached(path)
    if cached is not None:
        now = probe(runner)
        if now >= STALE * cached.seconds[0]:
            return cached
        note = (f"{runner.name} pass costs were cached from a busier machine (1 row: "
                f"{cached.seconds[0] * 1e3:.0f} ms cached, {now * 1e3:.0f} ms now): measuring again")
    else:
        note = f"measuring {runner.name} pass costs on this machine (once; cached in {path.parent})"
    if say:
        say(note)
    costs = measure(runner, say=say)
    try:
        write_text_atomic(path, json.dumps({"format": FORMAT, "machine": machine_id(),
                                            "runner": runner.fingerprint(), "costs": costs.to_dict()}, indent=1) + "\n")
    except OSError:
        pass  # a read-only cache: the costs are still used for this process
    return costs
