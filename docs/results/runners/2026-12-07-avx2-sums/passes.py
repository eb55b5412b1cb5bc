"""Passes of N rows of the bundled 1.5B on the torch runner (`--backend torch`, the machine's kernel), after 256
committed tokens, repeated for SECONDS: the fastest and the median, in WINDOWS separate processes, 4 and 8 rows
alternating. Why: one fastest-of-5 point of a cost curve can still carry this machine's noise.
    [SECONDS=10] [WINDOWS=3] python docs/results/runners/2026-12-07-avx2-sums/passes.py"""
import os
import statistics
import subprocess
import sys
import time

SECONDS, WINDOWS = float(os.environ.get("SECONDS", "10")), int(os.environ.get("WINDOWS", "3"))

if len(sys.argv) == 2:  # one window: time passes of argv[1] rows
    import torch

    from specdec.api import load_runner_for
    from specdec.config import EngineConfig

    runner, _ = load_runner_for("qwen2.5-coder-1.5b-instruct", EngineConfig(backend="torch"))
    n = int(sys.argv[1])
    ids = torch.randint(100, 10000, (1, 256 + n), generator=torch.Generator().manual_seed(0))
    runner.reset()
    runner.prefill(ids[:, :256])
    for _ in range(3):
        runner.forward(ids[:, 256:256 + n])
    ts, end = [], time.time() + SECONDS
    while time.time() < end:
        t = time.perf_counter()
        runner.forward(ids[:, 256:256 + n])
        ts.append(time.perf_counter() - t)
    print(f"| {n} | {min(ts) * 1e3:.1f} | {statistics.median(ts) * 1e3:.1f} | {len(ts)} |", flush=True)
else:
    print(f"| rows | fastest (ms) | median (ms) | passes in {SECONDS:.0f} s |\n|---:|---:|---:|---:|", flush=True)
    for _ in range(WINDOWS):
        for n in (4, 8):
            subprocess.run([sys.executable, __file__, str(n)], check=True, stderr=subprocess.DEVNULL)
