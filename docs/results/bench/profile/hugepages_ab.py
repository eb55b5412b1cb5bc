import sys, time, statistics, torch
import specdec
from specdec.weights import arena
arena.HUGEPAGES = sys.argv[1] == "1"
t=time.perf_counter(); dec=specdec.load("qwen2.5-coder-1.5b-instruct", drafter="none"); load=time.perf_counter()-t
P="Write a Python function that checks whether a number is prime."
dec.generate(P, max_new_tokens=8)
r=[]
for _ in range(3):
    res=dec.generate(P, max_new_tokens=64, ignore_eos=True) if False else dec.generate(P, max_new_tokens=64)
    r.append(res.stats.tokens_per_s)
print(f"hugepages={arena.HUGEPAGES} load {load:.2f}s tok/s {statistics.median(r):.2f} {[round(x,2) for x in r]}", flush=True)
