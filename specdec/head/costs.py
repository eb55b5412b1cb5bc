"""Measuring the costs of Theorem 3.1 offline with the engine's TorchRunner (`specdec head calibrate`).

    c_draft  = one draft step as the draft-model drafter does it: a 1-token draft forward + softmax/argmax
    verify   = target forward over 1 + K tokens, timed for several K and fitted as a + b*K
    delta    = the verification arithmetic of one round (specdec.verify on (1, 1+K, V) logits, K = 4)
    c1 = c_draft + b,  c2 = a,  threshold (Theorem 3.1) = (c2 + delta) / (c1 + c2 + delta);
    threshold_auto_at_plain_rate = 1 - c1 / (c2 + delta) (the "auto" rule before any throughput is measured)

The policy measures the same quantities online (see policy.py); this gives a costs=FILE to start from.
"""
from __future__ import annotations

import statistics
import time

import torch

from policies.specdecpp.estimates import auto_threshold, optimal_threshold
from specdec.config import SamplingConfig


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


@torch.no_grad()
def measure_costs(target, draft, context: int = 256, k: int = 8, repeats: int = 5, seed: int = 0) -> dict:
    """target, draft: TorchRunner. Returns the costs (seconds) and the threshold."""
    from specdec.drafters.base import Draft
    from specdec.verify import verify

    g = torch.Generator().manual_seed(seed)
    V = min(target.vocab_size, draft.vocab_size)
    lo = min(100, V // 4)
    ctx = torch.randint(lo, V - lo, (1, context), generator=g)  # ordinary tokens, away from the special ones
    for r in (target, draft):
        r.reset()
        r.prefill(ctx)

    def draft_step():
        logits, _ = draft.forward(ctx[:, :1])
        conf = torch.softmax(logits[0, -1], -1)
        int(conf.argmax())

    c_draft = _median_time(draft_step, repeats)
    ks = sorted({0, 1, 2, 4, k})
    times = {K: _median_time(lambda K=K: target.forward(ctx[:, : 1 + K]), repeats) for K in ks}
    n = len(ks)
    mk, mt = sum(ks) / n, sum(times.values()) / n
    var = sum((K - mk) ** 2 for K in ks) / n
    b = max(0.0, sum((K - mk) * (times[K] - mt) for K in ks) / n / var)
    a = max(mt - b * mk, 1e-6)
    logits = torch.randn(1, 5, V, generator=g)
    d = Draft(tokens=torch.randint(0, V, (1, 4), generator=g))
    delta = _median_time(lambda: verify(logits, d, SamplingConfig(), None), repeats)
    c1, c2 = c_draft + b, a
    return {"c_draft": c_draft, "verify_a": a, "verify_b": b, "verify_times": {str(K): t for K, t in times.items()},
            "delta": delta, "c1": c1, "c2": c2, "threshold": optimal_threshold(c1, c2, delta),
            "threshold_auto_at_plain_rate": auto_threshold(c1, 1.0 / (c2 + delta)), "context": context}
