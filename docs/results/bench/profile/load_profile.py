import time, cProfile, pstats, sys
t0=time.perf_counter()
import torch, specdec
from specdec.config import EngineConfig
print("import", time.perf_counter()-t0, flush=True)
pr=cProfile.Profile(); pr.enable()
t1=time.perf_counter()
dec=specdec.load("qwen2.5-coder-1.5b-instruct", drafter="none")
print("load target", time.perf_counter()-t1, flush=True)
pr.disable()
pstats.Stats(pr).sort_stats("cumulative").print_stats(35)
