"""The loop's target top-k alone: the kernel library's fused `top_probs` against torch's topk + logsumexp on random
logits of Qwen2.5's vocabulary (151,936), 1 / 2 / 3 / 5 / 17 rows, k = 4, median of 50; checks the tokens equal and
prints the largest probability difference. `python docs/results/aded/2026-12-07-i/topk_time.py`"""
import time

import torch

from specdec.weights import kernels

ext = kernels.load(say=print)
torch.manual_seed(0)
for R in (1, 2, 3, 5, 17):
    x = torch.randn(R, 151936) * 3
    ids, p = ext.top_probs(x, 4)
    v, i = x.topk(4, -1)
    q = (v - x.logsumexp(-1, keepdim=True)).exp()
    assert torch.equal(ids, i), (ids, i)
    print(R, (p - q).abs().max().item(), ((p - q).abs() / q).max().item())
    ts, tt = [], []
    for _ in range(50):
        a = time.perf_counter()
        ext.top_probs(x, 4)
        b = time.perf_counter()
        v, i = x.topk(4, -1)
        (v - x.logsumexp(-1, keepdim=True)).exp()
        c = time.perf_counter()
        ts.append(b - a)
        tt.append(c - b)
    ts.sort()
    tt.sort()
    print(f"R={R}: fused {ts[25] * 1e3:.3f} ms, torch {tt[25] * 1e3:.3f} ms")
