"""Where a 1-row decode pass of the int4 1.5B goes on this CPU: the pass timed whole (median of 40, after a
256-token prompt), then under torch.profiler by op (self time), then the linear layers alone on the same
weights in the same order (so their streaming from memory shows) and the bytes they read.
`python docs/results/bench/profile/decode_step.py [MODEL] [CONTEXT]` (about a minute after the model loads).
Why: llama-server decoded faster than this engine on the Zen 4 machine of 2026-12-05 (docs/aded.md)."""
import statistics
import sys
import time

import torch

from specdec.api import load_runner_for
from specdec.config import EngineConfig
from specdec.weights.quant import QLinear

name = sys.argv[1] if len(sys.argv) > 1 else "qwen2.5-coder-1.5b-instruct"
ctx = int(sys.argv[2]) if len(sys.argv) > 2 else 256
torch.set_num_threads(2)
runner, tok = load_runner_for(name, EngineConfig(backend="torch", threads=2), max_context=2048)
runner.prefill(torch.arange(1000, 1000 + ctx)[None])
x = torch.tensor([[42]])


def step():
    runner.forward(x)
    runner.rollback(ctx)


for _ in range(5):
    step()
ts = []
for _ in range(40):
    t0 = time.perf_counter(); step(); ts.append(time.perf_counter() - t0)
med = statistics.median(ts)
print(f"{name}: 1-row pass after {ctx} tokens: median {med * 1e3:.2f} ms, min {min(ts) * 1e3:.2f} ms "
      f"({1 / med:.2f} passes/s)", flush=True)

# the quantized linear layers a pass calls (a forward hook records them), alone, in the same order, 1-row inputs
called = []
hooks = [m.register_forward_hook(lambda m, i, o: called.append(m)) for m in runner.hf_model.modules()
         if isinstance(m, QLinear)]
step()
for h in hooks:
    h.remove()
nbytes = sum(sum(t.numel() * t.element_size() for t in m.buffers()) for m in called)
xs = [torch.randn(1, 1, m.in_features) for m in called]
for m, xi in zip(called, xs):
    m(xi)
lt = []
for _ in range(20):
    t0 = time.perf_counter()
    for m, xi in zip(called, xs):
        m(xi)
    lt.append(time.perf_counter() - t0)
lm = statistics.median(lt)
print(f"linear layers alone: {len(called)} calls, {nbytes / 1e9:.3f} GB of weights, median {lm * 1e3:.2f} ms "
      f"({nbytes / lm / 1e9:.1f} GB/s); rest of the pass {(med - lm) * 1e3:.2f} ms", flush=True)

# the whole plain loop (sampling, stop checks, stats) per token, 128 tokens after the same prompt
from specdec.api import SpecDecoder  # noqa: E402
from specdec.config import SpecConfig, StopConfig  # noqa: E402

dec = SpecDecoder(runner, tok)
prompt = torch.arange(1000, 1000 + ctx)[None]
for _ in range(2):
    runner.reset()
    t0 = time.perf_counter()
    out = dec.generate_ids(prompt, stop=StopConfig(max_new_tokens=128, ignore_eos=True), spec=SpecConfig())
    total = time.perf_counter() - t0
    t1 = time.perf_counter(); runner.reset(); runner.prefill(prompt); pre = time.perf_counter() - t1
    print(f"plain loop: {len(out)} tokens in {total:.3f} s, prefill ~{pre:.3f} s -> "
          f"{(total - pre) / (len(out) - 1) * 1e3:.2f} ms a decoded token", flush=True)
runner.reset(); runner.prefill(prompt)

from torch.profiler import ProfilerActivity, profile  # noqa: E402

with profile(activities=[ProfilerActivity.CPU]) as p:
    for _ in range(10):
        step()
print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
