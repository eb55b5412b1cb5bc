"""Choosing ADED's tree budget from measurements on the running machine.

    rate(nodes, depth) = (E[accepted | nodes, depth] + 1) / (t_target(1 + nodes) + t_search(nodes, depth))

t_target(n): one target forward over n new tokens after a committed context (`verify_cost`).
E[accepted]: greedy acceptance *replayed* against reference outputs of the target (`replay`): under greedy
decoding the target's output is fixed, so walking the draft tree along the reference gives exactly the
accepted path the real loop would get, for every budget, with no further target passes.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import replace
from typing import Callable, Sequence

import torch

from specdec.drafters.aded.config import AdedConfig
from specdec.drafters.aded.drafter import AdedDrafter
from specdec.drafters.aded.store import TrigramStore
from specdec.drafters.base import DraftContext, VerifyResult
from specdec.config import SamplingConfig

# The replays rank fixed budgets of the tri-gram tree: no cost curve cuts it (they have no target) and no suffix
# match goes first (`specdec aded replay --variants suffix` adds that part back).
TRIGRAM_TREE = AdedConfig(sized=False, suffix=False)


@torch.no_grad()
def verify_cost(runner, ns: Sequence[int], context: int = 256, repeats: int = 5,
                progress: Callable[[str], None] | None = None, stat: str = "min") -> dict[int, float]:
    """Seconds of `runner.forward` over n tokens after `context` committed tokens, for each n.

    The lengths are interleaved (every repeat times every n once), so that load from other processes
    hits all lengths alike; `stat` = "min" (default: the least disturbed run) or "median"."""
    runner.reset()
    g = torch.Generator().manual_seed(0)
    vocab = runner.vocab_size
    ctx = torch.randint(0, min(vocab, 30000), (1, context), generator=g)  # (1, C)
    runner.prefill(ctx)
    toks = {n: torch.randint(0, min(vocab, 30000), (1, n), generator=g) for n in ns}  # n -> (1, n)
    for n in ns:
        runner.forward(toks[n])  # warm-up (compiles the bucket if compiled)
    times: dict[int, list[float]] = {n: [] for n in ns}
    for r in range(repeats):
        for n in ns:
            t0 = time.perf_counter()
            runner.forward(toks[n])
            times[n].append(time.perf_counter() - t0)
        if progress:
            progress(f"repeat {r + 1}/{repeats}: " + " ".join(f"{n}:{times[n][-1] * 1e3:.0f}" for n in ns))
    runner.reset()
    pick = min if stat == "min" else statistics.median
    return {n: pick(v) for n, v in times.items()}


class _Policy:
    def __init__(self, k: int) -> None:
        self.k = k

    def max_draft(self) -> int:
        return self.k


def replay(store: TrigramStore, cfg: AdedConfig, prompts: Sequence[list[int]], references: Sequence[list[int]],
           nodes: int, depth: int) -> dict:
    """Greedy ADED rounds replayed against the target's reference outputs (see module docstring)."""
    cfg = replace(cfg, max_nodes=nodes, max_depth=depth, depth_from_policy=False)
    drafter = AdedDrafter(store, cfg)
    rounds = accepted = drafted = 0
    search_s = 0.0
    depth_hist = [0] * (depth + 1)
    for prompt, ref in zip(prompts, references):
        drafter.start(torch.tensor([prompt]))
        seq = list(prompt)
        pos = 0
        while pos < len(ref):
            ctx = DraftContext(torch.tensor([seq]), len(prompt), min(nodes, len(ref) - pos - 1) or 0,
                               _Policy(depth), SamplingConfig())
            t0 = time.perf_counter()
            draft = drafter.propose(ctx) if ctx.max_draft > 0 else None
            search_s += time.perf_counter() - t0
            toks = draft.tokens[0].tolist() if draft is not None else []
            parents = draft.tree.parents if draft is not None and draft.tree is not None else list(range(-1, len(toks) - 1))
            node, path = -1, []
            while pos + len(path) < len(ref):
                want = ref[pos + len(path)]
                nxt = next((i for i, p in enumerate(parents) if p == node and toks[i] == want), None)
                if nxt is None:
                    break
                path.append(nxt)
                node = nxt
            new = ref[pos: pos + len(path) + 1]
            result = VerifyResult(torch.tensor([new]), len(path), len(toks), path, bonus=False)
            drafter.observe(result)
            seq += new
            pos += len(new)
            rounds += 1
            accepted += len(path)
            drafted += len(toks)
            depth_hist[len(path)] += 1
    return {"nodes": nodes, "depth": depth, "rounds": rounds, "accepted_per_round": accepted / max(rounds, 1),
            "drafted_per_round": drafted / max(rounds, 1), "search_ms": 1e3 * search_s / max(rounds, 1),
            "accepted_depth_hist": depth_hist}


def choose_budget(cost: dict[int, float], acceptance: list[dict]) -> list[dict]:
    """Rank (nodes, depth) budgets by expected tokens/s; `cost` maps forward length n -> seconds."""
    rows = []
    for a in acceptance:
        n = 1 + a["nodes"]
        if n not in cost:
            continue
        t = cost[n] + a["search_ms"] / 1e3
        rows.append(dict(a, round_s=t, tokens_per_s=(a["accepted_per_round"] + 1) / t,
                         speedup_vs_plain=(a["accepted_per_round"] + 1) * cost[1] / t))
    return sorted(rows, key=lambda r: -r["tokens_per_s"])
