"""The "never slower than plain decoding" guard, for every drafter and policy.

Why: on a CPU a verification pass over several tokens costs real time (the bundled 1.5B on this project's
machine: 74 ms for 1 row, 115 ms for 8 with the int4 kernel; 71 vs 168 ms in llama.cpp), so a drafter
whose drafts are rarely accepted (prompt lookup on text that does not repeat its prompt) makes decoding
slower than plain. The guard compares each speculative round's measured time with what plain decoding
would have spent on the tokens the round committed (the runner's measured one-row pass), and when the last
GUARD_WINDOW speculative rounds together lost more than GUARD_MARGIN plain steps, it turns speculation off
for a back-off period (8, 16, ... 64 rounds), then tries again. Output is unaffected: the rounds it skips
are plain decoding, which verification would have matched anyway.
"""
from __future__ import annotations

from dataclasses import dataclass, field

GUARD_WINDOW = 8  # speculative rounds judged together
GUARD_MARGIN = 1.0  # plain-decoding steps they may lose before speculation is switched off
MAX_BACKOFF = 64


@dataclass
class Guard:
    plain_step: float  # seconds of one plain-decoding step (the target's measured one-row pass)
    off_rounds: int = 0  # plain rounds left before speculation is tried again
    backoff: int = 8
    gains: list[float] = field(default_factory=list)  # per speculative round, in plain steps saved
    switched_off: int = 0  # how many times speculation was switched off (stats)

    def allow(self) -> bool:
        return self.off_rounds == 0

    def observe(self, drafted: int, committed: int, seconds: float) -> None:
        """One round: `drafted` tokens drafted, `committed` committed, `seconds` spent drafting + verifying."""
        if drafted == 0:
            self.off_rounds = max(0, self.off_rounds - 1)
            return
        self.gains.append((committed * self.plain_step - seconds) / self.plain_step)
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
