"""A vLLM proposer replayed without vLLM: batched greedy decoding against reference outputs, with a step-cost model.

Why: a batch-32 GSM8K run through vLLM takes 8-10 minutes on this 2-core CPU, and the batch budget's choices
(what the cost fit learns, what exploring costs, how long a search takes) need many tries. Under greedy decoding the
target's output is fixed, so walking each proposal along the reference output gives exactly the tokens vLLM would
accept (up to bf16 near-ties, docs/scale.md), with no model at all. The clock is a model of a step's time,

    T = base + per_row * rows + per_context * context        (seconds; context: the batch's committed tokens)

plus the proposer's own wall time (measured), so the proposer learns its costs as it would inside vLLM. Fit on the
vLLM CPU runs of docs/scale.md (1.5B bf16, 2 cores): base 0.075, per_row 0.0065, per_context 1.25e-5 (batch 8
plain about 162 ms a step, batch 32 about 423 ms, batch 8 with 40 rows about 370 ms). The replay of the
2026-12-05 setups gave plain 80 / ADED with every token 0.60x at batch 32 and 0.80x at batch 8 (vLLM: 0.55x and
0.81x), so it ranks proposer settings; speed figures still come from vLLM runs.

The scheduler follows vLLM's model runner: requests enter as rows free up (a prefill step, charged `prefill`
seconds, whose interval the proposer leaves out), `propose(sampled_token_ids, num_tokens_no_spec, token_ids)` is
called once per step for the whole batch, and each row commits its accepted draft tokens plus one target token.
"""
from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from specdec.errors import InputError


@dataclass(frozen=True)
class StepModel:
    """Seconds of a step: base + per_row * rows + per_context * context; `noise` the relative spread (a normal
    draw per step, seeded), `prefill` what a step that admits requests adds."""

    base: float = 0.075
    per_row: float = 0.0065
    per_context: float = 1.25e-5
    noise: float = 0.017
    prefill: float = 0.3

    def __post_init__(self) -> None:
        if min(self.base, self.per_row, self.per_context, self.noise, self.prefill) < 0 or self.base <= 0:
            raise InputError(f"replay step model: need base > 0 and every other term >= 0, got {self}")

    def seconds(self, rows: int, context: int) -> float:
        return self.base + self.per_row * rows + self.per_context * context


@dataclass
class Replay:
    """What one replay measured."""

    tokens: int  # committed tokens (all requests)
    seconds: float  # the model clock at the end
    proposer_seconds: float  # wall time inside propose()
    steps: int
    drafted: int  # tokens proposed (after the budget)
    accepted: int

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds


def replay(proposer, prompts: Sequence[Sequence[int]], references: Sequence[Sequence[int]], batch: int,
           model: StepModel = StepModel(), new_tokens: int = 256, seed: int = 0) -> Replay:
    """Decode every prompt (its reference output cut to `new_tokens`), `batch` requests side by side. `proposer`:
    a vLLM proposer (anything with `propose`; its clock is replaced by the model's), or None for plain decoding."""
    if batch < 1 or len(prompts) != len(references) or not prompts:
        raise InputError(f"replay: need batch >= 1 and one reference per prompt, got batch {batch}, "
                         f"{len(prompts)} prompts, {len(references)} references")
    refs = [list(r[:new_tokens]) for r in references]
    if any(not r for r in refs):
        raise InputError("replay: every reference output needs at least one token")
    rng, clock = random.Random(seed), [0.0]
    if proposer is not None:
        proposer._clock = lambda: clock[0]
    width = max(map(len, prompts)) + new_tokens + 8
    ids = np.zeros((batch, width), dtype=np.int32)  # (B, W) vLLM's token_ids_cpu
    num = np.zeros(batch, dtype=np.int32)  # (B,) committed tokens per row
    slot: list[int | None] = [None] * batch  # the request in each row
    sampled: list[list[int]] = [[] for _ in range(batch)]
    done = [0] * len(prompts)
    waiting = list(range(len(prompts)))
    busy = 0.0
    steps = drafted = accepted = 0
    while waiting or any(s is not None for s in slot):
        admitted = False
        for r in range(batch):  # prefill: the prompt, then its first token (the reference's)
            if slot[r] is None and waiting:
                i = waiting.pop(0)
                p, first = prompts[i], refs[i][0]
                ids[r, :len(p)], ids[r, len(p)] = p, first
                num[r], slot[r], sampled[r], done[i], admitted = len(p) + 1, i, [first], 1, True
        clock[0] += model.prefill if admitted else 0.0
        proposed, wall = [[] for _ in range(batch)], 0.0
        if proposer is not None:
            t0 = time.perf_counter()
            proposed = proposer.propose(sampled, num, ids)
            wall = time.perf_counter() - t0
        busy += wall
        live = [r for r in range(batch) if slot[r] is not None]
        rows = sum(1 + len(proposed[r]) for r in live)
        context = int(sum(int(num[r]) for r in live))
        clock[0] += wall + model.seconds(rows, context) * (1 + model.noise * rng.gauss(0, 1))
        for r in live:
            i = slot[r]
            ref, pos, commit = refs[i], done[i], []
            for t in proposed[r]:  # greedy verification: the reference's next token or stop
                if pos + len(commit) < len(ref) and t == ref[pos + len(commit)]:
                    commit.append(t)
                else:
                    break
            drafted += len(proposed[r])
            accepted += len(commit)
            if pos + len(commit) < len(ref):
                commit.append(ref[pos + len(commit)])
            ids[r, num[r]:num[r] + len(commit)] = commit
            num[r] += len(commit)
            done[i] += len(commit)
            sampled[r] = commit
            if done[i] >= len(ref):
                slot[r], sampled[r] = None, []
        steps += 1
    return Replay(tokens=sum(map(len, refs)), seconds=clock[0], proposer_seconds=busy, steps=steps,
                  drafted=drafted, accepted=accepted)
