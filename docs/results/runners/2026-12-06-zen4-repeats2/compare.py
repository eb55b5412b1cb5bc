"""The second --repeats 3 run (llama-server's rows now really repeated) beside the first (fifth session, whose
llama-server row ran once): per row the median tok/s, its ratio to the same run's plain, the median of the per-prompt
ratios, and how far one generation's time moved between the three runs of a prompt (median over prompts of max/min
of `repeat_seconds`). `python docs/results/runners/2026-12-06-zen4-repeats2/compare.py`"""
import json
import statistics
from pathlib import Path

HERE = Path(__file__).parent
FIRST = HERE.parent / "2026-12-06-zen4-repeats"


def setups(path):
    return json.loads(Path(path).read_text())["setups"]


med = lambda ps: statistics.median(p["tokens_per_s"] for p in ps)  # noqa: E731
now, first = setups(HERE / "piece-1.json"), setups(FIRST / "piece-1.json")
print("first 12 prompts of piece 1, 128 tokens, greedy, --repeats 3 (interleaved, order rotating)")
print("| row | tok/s | vs plain | median of per-prompt ratios | spread of a prompt's 3 runs | same as plain | "
      "first run: tok/s | vs its plain | its spread |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for n, r in now.items():
    ps, base = r["per_prompt"], now["plain"]["per_prompt"]
    per = statistics.median(p["tokens_per_s"] / q["tokens_per_s"] for p, q in zip(ps, base))
    spread = lambda rows: statistics.median(max(p["repeat_seconds"]) / min(p["repeat_seconds"]) for p in rows)  # noqa: E731
    same = sum(bool(p["identical"]) for p in ps)
    o = first.get(n)
    old = (f"{med(o['per_prompt']):.2f} | {med(o['per_prompt']) / med(first['plain']['per_prompt']):.2f}x | "
           f"{spread(o['per_prompt']):.3f}") if o else "- | - | -"
    print(f"| {n} | {med(ps):.2f} | {med(ps) / med(base):.2f}x | {per:.2f}x | {spread(ps):.3f} | {same}/{len(ps)} | {old} |")
