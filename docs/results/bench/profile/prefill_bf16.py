"""A prompt's prefill on the bf16 path (qmatmul_bf16) against the int8 path, in alternation on one loaded runner:
`python docs/results/bench/profile/prefill_bf16.py MODEL T...` prefills T tokens (512-token chunks, as the
engine does) with `core.bf16_prefill` on and off, 3 rounds, and prints each round and the medians. Also the
next token's logits after each, compared (max |difference| relative to max |logit|, and whether the argmax agrees)."""
import statistics, sys, time, torch
from specdec.api import load_runner_for
from specdec.config import EngineConfig
torch.set_num_threads(2)
runner, tok = load_runner_for(sys.argv[1], EngineConfig(backend="torch", threads=2), max_context=2048)
assert runner.core.bf16_prefill, "no bf16 prefill on this machine (AMX-BF16, SPECDEC_QKERNEL)"
ids = (torch.arange(2048) * 7919 + 11) % 32000 + 100  # arbitrary tokens
def run(T, bf16):
    runner.core.bf16_prefill = bf16
    runner.reset()
    t = time.perf_counter(); runner.prefill(ids[None, :T]); dt = time.perf_counter() - t
    logits, _ = runner.forward(ids[None, T:T + 1])
    return dt, logits[0, -1]
run(64, True); run(64, False)  # warm-up
for T in [int(a) for a in sys.argv[2:]]:
    times = {True: [], False: []}
    for _ in range(3):
        for b in (True, False):
            dt, lg = run(T, b); times[b].append(dt)
            if b: lb = lg
            else: li = lg
        print(f"T={T}: bf16 {times[True][-1]*1e3:.0f} ms, int8 {times[False][-1]*1e3:.0f} ms", flush=True)
    mb, mi = statistics.median(times[True]), statistics.median(times[False])
    rel = ((lb - li).abs().max() / li.abs().max()).item()
    print(f"T={T}: medians bf16 {mb*1e3:.0f} ms ({mb/T*1e3:.2f} ms a token), int8 {mi*1e3:.0f} ms "
          f"({mi/T*1e3:.2f} ms a token): {mi/mb:.2f}x; next logits max diff {rel:.2e} of max, argmax "
          f"{'same' if lb.argmax() == li.argmax() else 'differs'}", flush=True)
