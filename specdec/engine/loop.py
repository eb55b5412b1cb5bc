"""The draft-verify loop. Plain decoding is the same loop with an empty draft every round."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

import torch

from policies.base import CandidatePolicy, RoundCosts
from specdec.config import SamplingConfig
from specdec.drafters.base import Draft, DraftContext, Drafter
from specdec.engine.guard import Guard
from specdec.engine.stopping import StopChecker
from specdec.runners.base import Runner
from specdec.errors import InputError
from specdec.stats import GenerationStats
from specdec.verify import verify
from specdec.weights import kernels


def target_top(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k likeliest tokens of each row of `logits` (R, V) and their probabilities: ((R, k) long, (R, k) float).
    Where this process has specdec's CPU kernel loaded (the torch runner), its fused `top_probs` (0.024 / 0.13 /
    0.46 ms for 1 / 5 / 17 rows of Qwen2.5's 151,936 logits, Zen 4, 2 threads); else torch's topk and logsumexp
    (0.35 / 1.12 / 3.63 ms there). ADED's whole generation 0.976x the time with the fused call (docs/aded.md)."""
    logits = logits.float()  # (R, V)
    ext = kernels.loaded()
    if ext is not None and 1 <= k <= 16:
        ids, probs = ext.top_probs(logits, k)  # (R, k) each
        return ids, probs
    vals, ids = logits.topk(k, dim=-1)  # (R, k) each
    return ids, (vals - logits.logsumexp(-1, keepdim=True)).exp()  # (R, k)


@dataclass
class Round:
    """Tokens committed by one verification round: the first `num_accepted` came from the draft."""

    tokens: list[int]
    num_accepted: int


def decode(
    target: Runner,
    prompt_ids: torch.Tensor,
    stopper: StopChecker,
    sampling: SamplingConfig,
    drafter: Drafter | None,
    policy: CandidatePolicy,
    stats: GenerationStats,
    generator: torch.Generator | None = None,
    costs: RoundCosts | None = None,
    guard: bool = False,
) -> Iterator[Round]:
    """Generate after `prompt_ids` (1, T), yielding each round's committed tokens. Fills `stats`.
    `costs`: the machine's measured round costs (given to the policy); `guard`: switch speculation off while
    it loses time against plain decoding (specdec.engine.guard; needs `costs`)."""
    B, T = prompt_ids.shape
    if T == 0:
        raise InputError("empty prompt: nothing to continue")
    need = T + stopper.max_new_tokens
    if need > target.max_context:
        raise InputError(
            f"context overflow: prompt ({T} tokens) + max_new_tokens ({stopper.max_new_tokens}) = {need} "
            f"> max context {target.max_context}; shorten the prompt, lower max_new_tokens or raise max_context"
        )
    t_start = time.perf_counter()
    compile0 = target.compile_seconds
    draft_compile0 = drafter.compile_seconds if drafter is not None else 0.0
    target.reset()
    policy.start(costs)
    gate = Guard(costs.verify) if guard and costs is not None and drafter is not None else None
    if drafter is not None:
        drafter.start(prompt_ids)
    stats.prompt_tokens = T
    t0 = time.perf_counter()
    if T > 1:
        target.prefill(prompt_ids[:, :-1])  # the last prompt token stays pending: it leads every round
        stats.target_calls += 1
    stats.prefill_s = time.perf_counter() - t0
    tokens = prompt_ids.clone()  # (1, T + generated)
    generated: list[int] = []
    while True:
        # ---- draft: at most what the policy allows, the budget needs, and the cache can hold
        remaining = stopper.max_new_tokens - len(generated)
        policy_k = want = policy.max_draft()
        if drafter is not None:  # tree drafters map k to a node budget
            want = drafter.draft_limit(want)
        if gate is not None and not gate.allow():
            want = 0  # the guard's back-off: a plain round
        limit = min(want, remaining - 1, target.space_left() - 1, target.max_pass - 1)
        t0 = time.perf_counter()
        if drafter is not None and limit > 0:
            ctx = DraftContext(tokens, T, limit, policy, sampling, generator, policy_k=policy_k)
            draft = drafter.propose(ctx)
            stats.draft_calls += 1
            if draft.length > limit:
                raise RuntimeError(f"drafter {drafter.name} proposed {draft.length} > {limit} tokens")
        else:
            draft = Draft.empty(B)
        t1 = time.perf_counter()
        # ---- verify: one target pass over [pending token, draft...]
        inp = torch.cat([tokens[:, -1:], draft.tokens], dim=1)  # (1, 1+K)
        if draft.tree is None:
            logits, _ = target.forward(inp)  # (1, 1+K, V)
        else:
            logits, _ = target.forward(inp, tree_mask=draft.tree.attention_mask(), depths=draft.tree.positions())
        result = verify(logits, draft, sampling, generator)
        if drafter is not None and drafter.target_topk:  # the target's own guesses at every row, for the drafter
            result.top_ids, result.top_probs = target_top(logits[0], drafter.target_topk)
        target.commit(1 + result.num_accepted, keep=[0] + [i + 1 for i in result.accepted_nodes])
        t2 = time.perf_counter()
        stats.draft_s += t1 - t0
        stats.verify_s += t2 - t1
        depth = max(draft.tree.depths) + 1 if draft.tree is not None and draft.length else draft.length
        if result.bonus:  # the accepted path ended at a leaf: no deeper draft position was reached on it
            depth = min(depth, result.num_accepted)
        stats.record_round(draft.length, result.num_accepted, depth)
        for key, val in draft.info.items():
            stats.extra.setdefault(key, []).append(val)
        # ---- commit, applying stop conditions exactly as plain decoding would
        new = result.tokens[0].tolist()
        keep, reason = stopper.cut(generated, new)
        new = new[:keep]
        generated += new
        tokens = torch.cat([tokens, torch.tensor([new])], dim=1)
        t3 = time.perf_counter()
        if drafter is not None:
            drafter.observe(result)
        t4 = time.perf_counter()
        policy.observe(draft.length, result.num_accepted, t2 - t1)
        if gate is not None:  # the round's price: drafting, verifying and the drafter's own bookkeeping
            gate.observe(draft.length, result.num_accepted + 1, (t2 - t0) + (t4 - t3), inp.shape[1], t2 - t1)
        yield Round(new, min(result.num_accepted, keep))
        if reason:
            stats.stop_reason = reason
            break
    stats.new_tokens = len(generated)
    if gate is not None:
        stats.extra["guard_switched_off"] = gate.switched_off
    target_compile = target.compile_seconds - compile0
    draft_compile = (drafter.compile_seconds if drafter is not None else 0.0) - draft_compile0
    stats.verify_s -= target_compile  # warm-up compiles are reported apart from steady-state times
    stats.draft_s -= draft_compile
    stats.compile_s = target_compile + draft_compile
    stats.total_s = time.perf_counter() - t_start
