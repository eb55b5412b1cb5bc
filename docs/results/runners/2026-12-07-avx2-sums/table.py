"""torch.md from torch.json (this folder) beside the run before the pinned sums (../2026-12-07-avx2/torch.json):
the median tokens/s over the 22 prompts, each setup's ratio to this engine's plain decoding, per category.
    python docs/results/runners/2026-12-07-avx2-sums/table.py > docs/results/runners/2026-12-07-avx2-sums/torch.md"""
import json
from pathlib import Path

here = Path(__file__).parent
new = json.loads((here / "torch.json").read_text())
old = json.loads((here.parent / "2026-12-07-avx2" / "torch.json").read_text())


def row(rep, name):
    s = rep["setups"][name]
    return s["median_tokens_per_s"], s.get("mean_accepted_length"), s.get("identical_prompts")


print("Written by table.py from torch.json (run.sh): median tokens/s over 22 prompts; `before` = the run before the "
      "pinned sums\n(../2026-12-07-avx2/torch.json, the same machine kind, another window).\n")
print("| setup | tok/s | x this engine's plain | x llama-server plain | τ incl. bonus | identical to plain "
      "| before: tok/s | before: x plain |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
p, lp = row(new, "plain")[0], row(new, "llamacpp_plain")[0]
po = row(old, "plain")[0]
for name in new["setups"]:
    t, tau, ident = row(new, name)
    to = row(old, name)[0] if name in old["setups"] else None
    print(f"| {name} | {t:.2f} | {t / p:.2f} | {t / lp:.2f} | {tau or 1:.2f} | "
          f"{'-' if name.startswith('llamacpp') else f'{ident}/22'} | "
          f"{'-' if to is None else f'{to:.2f}'} | {'-' if to is None else f'{to / po:.2f}'} |")
cats = new["per_category"]
names = [n for n in new["setups"] if n != "plain"]
print("\n| category | n | plain tok/s | " + " | ".join(names) + " |")
print("|---|---:|---:|" + "---:|" * len(names))
for cat, c in cats.items():
    print(f"| {cat} | {c['plain']['prompts']} | {c['plain']['median_tokens_per_s']:.2f} | "
          + " | ".join(f"{c[n]['speedup']:.2f}" for n in names) + " |")
print("\n(per category: each setup's median tokens/s over the category's prompts / plain's)")
