"""Per-generation statistics, shared by every drafter, policy, benchmark and evaluation."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class GenerationStats:
    """Counts and timings of one generation.

    Definitions (stated once, used everywhere):
      acceptance_rate (alpha)   = accepted / drafted: the share of drafted tokens the target accepted.
      mean_accepted_length (tau) = new_tokens / target_calls after the prompt: tokens committed per target
                                  forward, COUNTING the bonus/recovered token (plain decoding has tau = 1).
      mean_accepted_drafts      = accepted / rounds: the same WITHOUT the bonus token (tau - 1 before stops).
      per_position[i]           = [rounds that reached draft depth i, rounds that accepted it]: the
                                  conditional acceptance at each depth.
      draft_lengths[n]          = rounds that drafted n tokens (tree: nodes): where the policy stopped.
    """

    prompt_tokens: int = 0
    new_tokens: int = 0
    rounds: int = 0  # verification rounds (= target forward passes after prefill)
    target_calls: int = 0  # target forward passes, prefill included
    draft_calls: int = 0  # draft forward passes (model drafters) or proposals (model-free drafters)
    drafted: int = 0
    accepted: int = 0
    per_position: list[list[int]] = field(default_factory=list)
    draft_lengths: dict[int, int] = field(default_factory=dict)  # drafted tokens per round -> rounds (stop lengths)
    prefill_s: float = 0.0
    draft_s: float = 0.0
    verify_s: float = 0.0  # target forward + verify() after prefill
    total_s: float = 0.0
    compile_s: float = 0.0  # one-off warm-up time spent compiling new shapes (excluded from decode_s)
    stop_reason: str = ""
    extra: dict = field(default_factory=dict)  # drafter-specific: tree sizes, store size, ...

    def record_round(self, drafted: int, accepted: int, depth: int | None = None) -> None:
        """One verification: `drafted` tokens (tree: nodes) of which `accepted` were accepted along the
        committed path; `depth` = the draft's depth (chain: = drafted)."""
        depth = drafted if depth is None else depth
        self.rounds += 1
        self.target_calls += 1
        self.drafted += drafted
        self.accepted += accepted
        self.draft_lengths[drafted] = self.draft_lengths.get(drafted, 0) + 1
        while len(self.per_position) < depth:
            self.per_position.append([0, 0])
        for i in range(min(depth, accepted + 1)):  # depth i is reached when all before it were accepted
            self.per_position[i][0] += 1
            self.per_position[i][1] += int(i < accepted)

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.drafted if self.drafted else 0.0

    @property
    def mean_accepted_length(self) -> float:
        return self.new_tokens / self.rounds if self.rounds else 0.0

    @property
    def mean_accepted_drafts(self) -> float:
        return self.accepted / self.rounds if self.rounds else 0.0

    @property
    def decode_s(self) -> float:
        return max(self.total_s - self.compile_s, 1e-9)

    @property
    def tokens_per_s(self) -> float:
        """New tokens per second of wall time, prefill included, compile warm-up excluded."""
        return self.new_tokens / self.decode_s if self.new_tokens else 0.0

    @property
    def draft_share(self) -> float:
        busy = self.draft_s + self.verify_s
        return self.draft_s / busy if busy else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            acceptance_rate=self.acceptance_rate,
            mean_accepted_length=self.mean_accepted_length,
            mean_accepted_length_counts_bonus=True,
            mean_accepted_drafts=self.mean_accepted_drafts,
            tokens_per_s=self.tokens_per_s,
            draft_share=self.draft_share,
            per_position_acceptance=[a / n if n else 0.0 for n, a in self.per_position],
        )
        return d

    def summary(self) -> str:
        s = f"{self.new_tokens} tokens in {self.decode_s:.2f}s ({self.tokens_per_s:.2f} tok/s), {self.target_calls} target calls (prefill incl.)"
        if self.drafted:
            s += (
                f", drafted {self.drafted}, accepted {self.accepted} (alpha {self.acceptance_rate:.2f}),"
                f" tau {self.mean_accepted_length:.2f} incl. bonus, draft share {self.draft_share:.0%}"
            )
        return s


def prompt_row(stats: GenerationStats, *, counted: bool = True, **extra) -> dict:
    """The bench's per-prompt row of one generation, for every backend (this engine, HF generate, llama-server,
    vLLM): the one place its names are chosen. `tokens` = new_tokens and `seconds` = decode_s (prefill included,
    compile warm-up excluded): the names of the JSON files already published. `counted=False`: a backend that
    cannot count drafts and rounds (HF generate): those fields are None and tau is tokens per target forward.
    `extra`: backend-specific fields (vLLM's draft count, llama-server's own decode speed)."""
    n = stats.new_tokens
    row = {
        "tokens": n, "seconds": stats.decode_s if stats.total_s > 0 else 0.0, "tokens_per_s": stats.tokens_per_s if stats.total_s > 0 else 0.0,
        "acceptance_rate": stats.acceptance_rate if counted and stats.drafted else None,
        "mean_accepted_length": (stats.mean_accepted_length if counted
                                 else n / stats.target_calls if stats.target_calls else None),
        "target_calls": stats.target_calls, "drafted": stats.drafted if counted else None,
        "accepted": stats.accepted if counted else None, "rounds": stats.rounds if counted else None,
        "compile_s": stats.compile_s, "stop_reason": stats.stop_reason or None,
        "draft_s": stats.draft_s, "verify_s": stats.verify_s, "prefill_s": stats.prefill_s,
        "draft_lengths": {str(k): c for k, c in sorted(stats.draft_lengths.items())},
        # the draft model's passes (draft-model and hybrid drafters; guess= makes them fewer than its tokens)
        "draft_passes": sum(stats.extra["draft_passes"]) if "draft_passes" in stats.extra else None,
    }
    row.update(extra)
    return row
