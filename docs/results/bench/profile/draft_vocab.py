"""The 0.5B draft's 1-row pass (int4 by default, or W as argv[1], e.g. int4-all) with its whole output layer
and with the output layer cut to the N lowest token ids (the draft-model drafter's vocab=N): median of 40.
`python docs/results/bench/profile/draft_vocab.py [WEIGHTS]`"""
import statistics, sys, time, torch
from specdec.api import load_runner_for
from specdec.config import EngineConfig
torch.set_num_threads(2)
name = "qwen2.5-coder-0.5b-instruct"; ctx = 256
def timeit(runner):
    runner.reset(); runner.prefill(torch.arange(1000, 1000 + ctx)[None])
    x = torch.tensor([[42]])
    for _ in range(5): runner.forward(x); runner.rollback(ctx)
    ts = []
    for _ in range(40):
        t0 = time.perf_counter(); runner.forward(x); runner.rollback(ctx); ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3
w = sys.argv[1] if len(sys.argv) > 1 else None
runner, tok = load_runner_for(name, EngineConfig(backend="torch", threads=2, **({"weights": w} if w else {})), max_context=2048)
print(w, "full vocab", f"{timeit(runner):.1f} ms", flush=True)
full = runner.core.lm_head
for n in [65536, 32768, 16384]:
    runner.core.lm_head = full
    runner.restrict_vocab(list(range(n)))
    print(w, "vocab", n, f"{timeit(runner):.1f} ms", flush=True)
