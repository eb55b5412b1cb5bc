"""Time one compiled decode step of a zoo model through ModelRunner (optionally max-autotune); profile."""
import sys, time, os, torch
sys.path.insert(0, __import__("os").path.join(__import__("os").path.dirname(__file__), "../../../.."))
from specdec.zoo import load_causal_lm
from specdec.engine.runner import ModelRunner
torch.set_num_threads(2)
name = sys.argv[1]; ctx = int(sys.argv[2]) if len(sys.argv) > 2 else 2048
import torch._inductor.config as _ic
_ic.cpp.enable_kernel_profile = bool(os.environ.get("PROF"))
if os.environ.get("AUTOTUNE"):
    import torch._inductor.config as ic
    ic.max_autotune = True; ic.max_autotune_gemm_backends = "CPP,ATEN"
model, tok = load_causal_lm(name, dtype="bfloat16")
r = ModelRunner(model, max_context=ctx, compile=True)
r.prefill(torch.arange(100, 150)[None])
x = torch.tensor([[42]])
def step():
    r.forward(x); r.rollback(50)
t0 = time.perf_counter(); step(); print("first step (compile)", round(time.perf_counter() - t0, 1), flush=True)
for _ in range(3): step()
ts = []
for _ in range(20):
    t = time.perf_counter(); step(); ts.append(time.perf_counter() - t)
ts.sort(); m = ts[10]
print(f"{name} ctx={ctx} autotune={bool(os.environ.get('AUTOTUNE'))}: {m*1000:.1f} ms/step = {1/m:.2f} tok/s", flush=True)
if os.environ.get("PROF"):
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CPU]) as p:
        for _ in range(5): step()
    print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
