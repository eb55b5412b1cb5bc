"""The --repeats 3 run beside the fourth session's single runs of the same 12 prompts: per row the median tok/s and
its ratio to the same run's plain, and how far one generation's time moved between the three runs of a prompt (the
median over prompts of max/min of `repeat_seconds`).
`python docs/results/runners/2026-12-06-zen4-repeats/compare.py`"""
import json
import statistics
from pathlib import Path

HERE = Path(__file__).parent
ONE = HERE.parent / "2026-12-06-zen4"
N = 12


def rows(path, names):
    d = json.loads(Path(path).read_text())["setups"]
    return {n: [p for p in d[n]["per_prompt"] if p["prompt_index"] < N] for n in names if n in d}


rep = rows(HERE / "piece-1.json", ["plain", "hyb6", "hybc", "aded", "llamacpp_plain"])
one = {**rows(ONE / "piece-1.json", ["plain", "hyb6", "aded", "llamacpp_plain"]),
       **{k + "@policy": v for k, v in rows(ONE / "policy-1.json", ["plain", "hybc"]).items()}}
med = lambda ps: statistics.median(p["tokens_per_s"] for p in ps)  # noqa: E731
print(f"first {N} prompts of piece 1, 128 tokens, greedy")
print("row | --repeats 3: median tok/s | vs plain | spread of a prompt's 3 runs (median max/min) | identical | "
      "one run (fourth session): median tok/s | vs that run's plain")
for n, ps in rep.items():
    spread = statistics.median(max(p["repeat_seconds"]) / min(p["repeat_seconds"]) for p in ps)
    same = sum(bool(p["identical"]) for p in ps)
    o = one.get(n) or one.get(n + "@policy")
    base = one["plain@policy"] if n == "hybc" else one["plain"]
    old = f"{med(o):.2f} | {med(o) / med(base):.2f}x" if o else "- | -"
    print(f"{n} | {med(ps):.2f} | {med(ps) / med(rep['plain']):.2f}x | {spread:.3f} | {same}/{len(ps)} | {old}")
