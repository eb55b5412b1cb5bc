"""bf16 GEMV (M=1) throughput: eager vs inductor freezing (oneDNN prepack) vs freezing + max-autotune (CPP GEMM template)."""
import sys, time, torch
torch.set_num_threads(2)
import torch._inductor.config as ic
ic.freezing = True
mode = sys.argv[1]
shapes = [(8960, 1536), (1536, 8960), (151936, 1536)]
def timeit(fn, n=30, warm=5):
    for _ in range(warm): fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    ts.sort(); return ts[len(ts)//2]
M = int(sys.argv[2]) if len(sys.argv) > 2 else 1
for (o, i) in shapes:
    lin = torch.nn.Linear(i, o, bias=False, dtype=torch.bfloat16).eval()
    x = torch.randn(M, i, dtype=torch.bfloat16)
    gb = o * i * 2 / 1e9
    with torch.no_grad():
        if mode == "eager":
            f = lin
        elif mode == "fp32":
            lin = lin.float(); x = x.float(); gb *= 2; f = lin
        elif mode == "freeze":
            f = torch.compile(lin)
        elif mode == "autotune":
            ic.max_autotune = True
            ic.max_autotune_gemm_backends = "CPP,ATEN"
            f = torch.compile(lin)
        t0 = time.perf_counter(); f(x); c = time.perf_counter() - t0
        t = timeit(lambda: f(x))
    print(f"{mode} M={M} {o}x{i}: {t*1000:.3f} ms  {gb/t:.1f} GB/s  (first call {c:.1f}s)", flush=True)
