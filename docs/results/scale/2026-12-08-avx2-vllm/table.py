"""bench.json -> the markdown tables of docs/scale.md (median tokens/s, ratios, τ; per category).
`python docs/results/scale/2026-12-08-avx2-vllm/table.py [bench.json]`"""
import json, os, statistics, sys

path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "bench.json")
r = json.load(open(path))
S = r["setups"]
ref = {"specdec": "plain", "llamacpp-server": "llamacpp_plain", "vllm": "vllm_plain"}
print("| setup | tok/s (median of 8) | x this engine's plain | x its own backend's plain | τ incl. bonus | α |")
print("|---|---:|---:|---:|---:|---:|")
for name, s in S.items():
    own = next((v for k, v in ref.items() if s["backend"].startswith(k)), "plain")
    a = s["acceptance_rate"]
    print(f"| {name} | {s['median_tokens_per_s']:.2f} | {s['median_tokens_per_s'] / S['plain']['median_tokens_per_s']:.2f} | "
          f"{s['median_tokens_per_s'] / S[own]['median_tokens_per_s']:.2f} | {s['mean_accepted_length']:.2f} | "
          f"{'-' if a is None else f'{a:.2f}'} |")
cats = r["per_category"]
names = list(S)
print()
print("| category | n | " + " | ".join(names) + " |")
print("|---|---:|" + "---:|" * len(names))
for c, row in cats.items():
    cells = []
    for n in names:
        v = row.get(n) or {}
        sp, tau = v.get("speedup"), v.get("mean_accepted_length")
        cells.append("-" if sp is None else f"{sp:.2f}x" + ("" if tau is None else f" (τ {tau:.2f})"))
    n = next(iter(row.values()), {}).get('prompts', '')
    print(f"| {c} | {n} | " + " | ".join(cells) + " |")
