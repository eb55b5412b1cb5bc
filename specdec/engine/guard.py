"""The "never slower than plain decoding" guard, for every drafter and policy.

Why: on a CPU a verification pass over several tokens costs real time (the bundled 1.5B on this project's
machine: 74 ms for 1 row, 115 ms for 8 with the int4 kernel; 71 vs 168 ms in llama.cpp), so a drafter
whose drafts are rarely accepted (prompt lookup on text that does not repeat its prompt) makes decoding
slower than plain. The guard compares each speculative round's measured time with what plain decoding
would have spent on the tokens the round committed (a plain step: the runner's measured one-row pass, scaled to
this run, see `Guard.plain_step`), and when the last GUARD_WINDOW speculative rounds together lost more than
GUARD_MARGIN plain steps, it turns speculation off for a back-off period (8, 16, ... 64 rounds), then tries
again. Output is unaffected: the rounds it skips are plain decoding, which verification would have matched anyway.
"""
from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

GUARD_WINDOW = 8  # speculative rounds judged together
GUARD_MARGIN = 1.0  # plain-decoding steps they may lose before speculation is switched off
MAX_BACKOFF = 64
SCALE_WINDOW = 16  # rounds whose verification times scale the cost curve to this run


@dataclass
class Guard:
    verify: Callable[[int], float]  # seconds of a target pass over n rows: the runner's measured cost curve
    off_rounds: int = 0  # plain rounds left before speculation is tried again
    backoff: int = 8
    gains: list[float] = field(default_factory=list)  # per speculative round, in plain steps saved
    switched_off: int = 0  # how many times speculation was switched off (stats)
    scales: deque = field(default_factory=lambda: deque(maxlen=SCALE_WINDOW))  # measured / curve, per round

    @property
    def plain_step(self) -> float:
        """Seconds of one plain-decoding step in this run: the curve's one-row pass times the median ratio of the
        recent rounds' measured verification (pass, verify(), commit) to the curve's price for their rows.

        Why not the curve alone: it holds each row count's fastest pass at a 256-token context, while the loop's
        plain rounds take longer (issue 23's run, 36 prompts: 59.3 / 60.6 ms median per plain round in its two
        pieces against the curve's 55.7 ms), so every speculative round looked ~8 % dearer than it was and the
        guard switched speculation off on prompts that gained 1.4x over plain."""
        return self.verify(1) * (statistics.median(self.scales) if self.scales else 1.0)

    def allow(self) -> bool:
        return self.off_rounds == 0

    def observe(self, drafted: int, committed: int, seconds: float, rows: int = 0,
                verify_seconds: float | None = None) -> None:
        """One round: `drafted` tokens drafted, `committed` committed, `seconds` spent drafting, verifying and in
        the drafter's `observe` (its bookkeeping is part of a round's price: ADED's store update, recycling and
        sizer, 0.26 ms a round on Zen 4), of which `verify_seconds` on the target's pass over `rows` rows (both
        optional: they scale the curve). Rounds without a draft are not judged (an empty draft's search is small,
        and judging it switched prompt lookup off before a text began to repeat itself: docs/aded.md)."""
        curve = self.verify(rows) if rows and verify_seconds is not None else 0.0
        if curve > 0:
            self.scales.append(verify_seconds / curve)
        if drafted == 0:
            self.off_rounds = max(0, self.off_rounds - 1)
            return
        step = self.plain_step
        self.gains.append((committed * step - seconds) / step)
        window = self.gains[-GUARD_WINDOW:]
        if len(window) < GUARD_WINDOW:
            return
        if sum(window) < -GUARD_MARGIN:
            self.off_rounds = self.backoff
            self.backoff = min(self.backoff * 2, MAX_BACKOFF)
            self.gains = []  # judged afresh when speculation resumes
            self.switched_off += 1
        elif sum(window) > 0:
            self.backoff = 8
