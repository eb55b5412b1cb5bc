"""Where a pass's time goes by rows: each call into the kernel library (qmatmul, attention, norms, rope, or the
one-call layer loop forward_layers) timed in place through a proxy, the rest of the pass (Python, ATen ops) as
the difference; mean of 10 passes after 256 tokens, per row count.
`[W=int4-all] python docs/results/bench/profile/pass_split.py MODEL ROWS...` (about a minute after the load)."""
import statistics, sys, time, collections, torch
from specdec.api import load_runner_for
from specdec.config import EngineConfig
from specdec.weights import kernels
name = sys.argv[1]; ctx = 256
torch.set_num_threads(2)
import os
runner, tok = load_runner_for(name, EngineConfig(backend="torch", threads=2, weights=os.environ.get("W","auto")), max_context=2048)
ext = kernels.load()
T = collections.defaultdict(float); C = collections.Counter()
class P:
    def __getattr__(self, k):
        f = getattr(ext, k)
        if not callable(f): return f
        def w(*a, **kw):
            t = time.perf_counter(); r = f(*a, **kw); T[k] += time.perf_counter() - t; C[k] += 1; return r
        return w
proxy = P()
kernels.load = lambda *a, **k: proxy
runner.prefill(torch.arange(1000, 1000 + ctx)[None])
for R in [int(a) for a in sys.argv[2:]]:
    x = torch.arange(42, 42 + R)[None]
    def step():
        runner.forward(x); runner.rollback(ctx)
    for _ in range(3): step()
    T.clear(); C.clear(); ts = []
    n = 10
    for _ in range(n):
        t0 = time.perf_counter(); step(); ts.append(time.perf_counter() - t0)
    tot = sum(ts) / n
    print(f"R={R}: mean {tot*1e3:.1f} ms; " + ", ".join(f"{k} {v/n*1e3:.1f} ms ({C[k]//n})" for k, v in sorted(T.items(), key=lambda kv: -kv[1]))
          + f"; rest {(tot - sum(T.values())/n)*1e3:.1f} ms", flush=True)
