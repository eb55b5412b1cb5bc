"""How much one plain generation of the same prompt moves when repeated back to back in one process, nothing else
running (the bench saw a prompt's three interleaved runs differ by a median 1.26x for this engine's plain, 1.06x for
llama-server's). `HF_HUB_OFFLINE=1 python docs/results/bench/profile/jitter.py [RUNS]`; output: jitter-2026-12-06-zen4.txt."""
import statistics, sys, time
import specdec
from specdec.config import StopConfig
from specdec.stats import GenerationStats
N = int(sys.argv[1]) if len(sys.argv) > 1 else 8
dec = specdec.load("qwen2.5-coder-1.5b-instruct", drafter="none")
P = "Write a Python function that checks whether a number is prime."
ids = dec.encode(P, chat=True)
stop = StopConfig(max_new_tokens=128, ignore_eos=True)
dec.generate_ids(ids, stop=stop)
secs, dec_ms = [], []
for i in range(N):
    t0 = time.perf_counter()
    st = GenerationStats()
    dec.generate_ids(ids, stop=stop, stats=st)
    s = time.perf_counter() - t0
    secs.append(s)
    dec_ms.append((st.total_s - st.prefill_s) / max(st.new_tokens - 1, 1) * 1e3)
    print(f"run {i}: {s:.2f} s, prefill {st.prefill_s:.3f} s, {dec_ms[-1]:.1f} ms a decoded token", flush=True)
print(f"max/min {max(secs)/min(secs):.3f}, median {statistics.median(secs):.2f} s")
