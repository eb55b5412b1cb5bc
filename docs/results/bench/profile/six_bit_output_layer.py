"""The 1.5B's output layer shape (151936 x 1536) as Q6_K codes: the 6-bit path against the same weights as 8-bit
codes (what the packed file held before format 3), by rows, median of 15 calls, twice. Random Q6_K blocks.
`python docs/results/bench/profile/six_bit_output_layer.py` (about 1 minute). Output of 2026-12-06: six_bit-2026-12-06.md."""
import numpy as np, torch, time, sys
from specdec.weights import quant, kernels
ext = kernels.load()
N,K=151936,1536
rng=np.random.default_rng(0)
n=N*K//256
b=rng.integers(0,256,size=(n,210),dtype=np.uint8)
b[:,208:210]=rng.uniform(0.001,0.05,size=(n,1)).astype(np.float16).view(np.uint8)
c6=quant.gguf_codes(b.reshape(N,-1),"Q6_K",N,K)
w6=quant.pack(c6)
w8=quant.pack(quant.rtn_codes(c6.dequantize(),8))
ext.set_amx_min_rows(12)
for rep in range(2):
  for rows in [1,2,4,8]:
    x=torch.randn(rows,K)
    res=[]
    for w,bits in ((w8,8),(w6,6)):
        a=(w.codes,w.sc,w.mn,w.d,w.dm,bits)
        ext.qmatmul(x,*a)
        ts=[]
        for _ in range(15):
            t=time.perf_counter(); ext.qmatmul(x,*a); ts.append(time.perf_counter()-t)
        res.append(np.median(ts)*1e3)
    print(rows, "8-bit %.2f ms  6-bit %.2f ms"%tuple(res), flush=True)
