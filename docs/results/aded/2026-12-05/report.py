"""Markdown tables of ablation.json (docs/aded.md, docs/runners.md): setups, per category (speedup over the same
runner's plain decoding, tau incl. bonus), the pass cost curves.
    python docs/results/aded/2026-12-05/report.py [ABLATION.json]"""
import json
from pathlib import Path

import sys

r = json.loads(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "ablation.json").read_text())
S = r["setups"]
print("| setup | median tok/s | vs its runner's plain | α | τ | same as plain |\n|---|---:|---:|---:|---:|---:|")
for n, s in S.items():
    a, t = s.get("acceptance_rate"), s.get("mean_accepted_length")
    same = sum(bool(p.get("identical")) for p in s["per_prompt"])
    print(f"| {n} | {s['median_tokens_per_s']:.2f} | {s.get('speedup', 1.0):.2f}x | {'-' if a is None else f'{a:.2f}'} | "
          f"{'-' if t is None else f'{t:.2f}'} | {same}/{len(s['per_prompt'])} |")
names = [n for n in S if n not in ("plain", "plain@llamacpp")]
print("\n| category | n | " + " | ".join(names) + " |\n|---|---:|" + "---:|" * len(names))
for c, row in r["per_category"].items():
    cells = [f"{row[n]['speedup']:.2f} (τ {row[n]['mean_accepted_length']:.2f})" for n in names]
    print(f"| {c} | {row['plain']['prompts']} | " + " | ".join(cells) + " |")
curves = r["cost_curves"]
rows = curves["plain"]["rows"]
print("\n| runner | " + " | ".join(map(str, rows)) + " |\n|---|" + "---:|" * len(rows))
for name, c in curves.items():
    print(f"| {c['runner']} ({c['weights']}) | " + " | ".join(f"{ms:.0f} ({x:.2f}x)" for ms, x in zip(c["ms"], c["vs_one_row"])) + " |")
