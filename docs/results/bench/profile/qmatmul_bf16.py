"""The kernel alone by rows: the int8 path (qmatmul: VNNI below 12 rows, AMX from 12) and the bf16 prefill path
(qmatmul_bf16) over one layer of the 1.5B's shapes as random 4-bit Q4_K-style weights (q|k|v 2048 x 1536, o 1536 x
1536, gate|up 17920 x 1536, down 1536 x 8960; 46.8 M weights), fastest of 3, x28 for the layers of a pass.
`python docs/results/bench/profile/qmatmul_bf16.py [ROWS...]` (default 33 64 128 256 512)."""
import sys, time, torch
from specdec.weights import kernels
from specdec.weights.quant import Codes, pack
torch.set_num_threads(2)
e = kernels.load()
torch.manual_seed(0)
def q4(N, K):
    G = K // 32
    return pack(Codes(torch.randint(0, 16, (N, K), dtype=torch.uint8), torch.randint(0, 64, (N, G), dtype=torch.uint8),
                torch.randint(0, 64, (N, G), dtype=torch.uint8), (torch.rand(N, G // 8) * 0.01).half(),
                (torch.rand(N, G // 8) * 0.01).half(), 4))
layers = [(q4(2048, 1536), 1536), (q4(1536, 1536), 1536), (q4(17920, 1536), 1536), (q4(1536, 8960), 8960)]
for M in [int(a) for a in sys.argv[1:]] or [33, 64, 128, 256, 512]:
    xs = [torch.randn(M, K) for _, K in layers]
    line = []
    for name, fn in (("int8", e.qmatmul), ("bf16", e.qmatmul_bf16)):
        best = 1e9
        for _ in range(3):
            t = time.perf_counter()
            for (w, K), x in zip(layers, xs):
                fn(x, w.codes, w.sc, w.mn, w.d, w.dm, 4)
            best = min(best, time.perf_counter() - t)
        line.append(f"{name} {best*1e3:.1f} ms a layer ({best*28*1e3/M:.2f} ms a row for 28)")
    print(f"M={M}: " + ", ".join(line), flush=True)
