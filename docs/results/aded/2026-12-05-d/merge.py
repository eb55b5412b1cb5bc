"""The full-size run's tables from its pieces (each a bench JSON with every setup side by side on its prompts):
per setup over all prompts and per category, speedup = median tokens/s over the prompts / the reference's median
on the same prompts (this engine's rows over its own plain, llama.cpp's over llama.cpp's plain), as
specdec.bench.runner.by_category computes it for one bench run; overall also the median of per-prompt ratios
(each prompt's rows ran side by side, pieces at different times), outputs equal to the row's own plain and to this
engine's plain (the two differ for llama.cpp's rows), and the draft model's passes where the rows count them.
    python merge.py FOLDER        (reads FOLDER/piece-*.json, writes FOLDER/full.json and prints markdown)"""
import json
import statistics
import sys
from pathlib import Path

from specdec.bench.runner import by_category, summarize

folder = Path(sys.argv[1])
results: dict[str, dict] = {}
categories: list[str] = []
pieces = []
for path in sorted(folder.glob("piece-*.json")):
    rep = json.loads(path.read_text())
    if not rep.get("complete"):
        print(f"{path.name}: not complete, left out", file=sys.stderr)
        continue
    pieces.append(path.name)
    offset = len(categories)
    categories += rep["config"]["prompt_categories"]
    for name, r in rep["setups"].items():
        rows = results.setdefault(name, {"per_prompt": []})["per_prompt"]
        rows += [{**p, "prompt_index": p["prompt_index"] + offset} for p in r.get("per_prompt", [])]


def reference(name: str) -> str:
    return "llamacpp_plain" if name.startswith("llamacpp_") else "plain"


table = {"overall": {n: summarize(r["per_prompt"]) for n, r in results.items()}}
per_cat = {ref: by_category({n: r for n, r in results.items() if reference(n) == ref}, categories, ref)
           for ref in dict.fromkeys(map(reference, results))}
for cat in dict.fromkeys(categories):
    table[cat] = {n: s for ref in per_cat.values() for n, s in ref.get(cat, {}).items()}
for n, s in table["overall"].items():
    base = table["overall"].get(reference(n), {}).get("median_tokens_per_s")
    s["speedup"] = s["median_tokens_per_s"] / base if base else None
    # drift-proof too: the median over prompts of each prompt's own ratio (its rows ran side by side)
    ref_rows = {p["prompt_index"]: p for p in results.get(reference(n), {}).get("per_prompt", [])}
    pairs = [(p, ref_rows[p["prompt_index"]]) for p in results[n]["per_prompt"] if p["prompt_index"] in ref_rows]
    s["median_prompt_ratio"] = statistics.median(p["tokens_per_s"] / r["tokens_per_s"] for p, r in pairs) if pairs else None
    s["same_as_own_plain"] = sum(p["output_ids"] == r["output_ids"] for p, r in pairs)
    # and against this engine's plain rows (for llama.cpp's rows this is not the column above, which compares
    # llama-server with its own plain decoding)
    engine = {p["prompt_index"]: p for p in results.get("plain", {}).get("per_prompt", [])}
    s["same_as_engine_plain"] = sum(p["output_ids"] == engine[p["prompt_index"]]["output_ids"]
                                    for p in results[n]["per_prompt"] if p["prompt_index"] in engine)
    passes = [p.get("draft_passes") for p in results[n]["per_prompt"]]
    s["draft_passes"] = sum(x or 0 for x in passes) if any(x is not None for x in passes) else None
out = {"pieces": pieces, "prompts": len(categories), "table": table}
tmp = folder / "full.json.tmp"
tmp.write_text(json.dumps(out, indent=1))
tmp.replace(folder / "full.json")
names = list(results)
print(f"{len(categories)} prompts from {len(pieces)} pieces; speedup over the row's own plain, tau below\n")
print("| category | n | " + " | ".join(names) + " |")
print("|---|---:|" + "---:|" * len(names))
for cat, row in table.items():
    n = len(categories) if cat == "overall" else categories.count(cat)
    cells = []
    for name in names:
        s = row.get(name)
        tau = s and s.get("mean_accepted_length")
        cells.append("-" if not s or s["speedup"] is None else f"{s['speedup']:.2f}x" + (f" τ{tau:.2f}" if tau else ""))
    print(f"| {cat} | {n} | " + " | ".join(cells) + " |")
def split(name: str) -> str:
    """Shares of the row's time spent drafting / verifying (target passes) / in prefill, over all prompts."""
    rows = results[name]["per_prompt"]
    total = sum(p["seconds"] for p in rows)
    parts = [sum(p.get(k) or 0.0 for p in rows) if any(p.get(k) for p in rows) else None
             for k in ("draft_s", "verify_s", "prefill_s")]  # None: the engine does not report it
    return " / ".join("-" if x is None else f"{100 * x / total:.0f}%" for x in parts) if total else "-"


print("\n| setup | median tok/s | speedup | median of per-prompt ratios | α | τ | same as its own plain | "
      "same as this engine's plain | draft passes | time: draft / verify / prefill |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name, s in table["overall"].items():
    a, t = s.get("acceptance_rate"), s.get("mean_accepted_length")
    print(f"| {name} | {s['median_tokens_per_s']:.2f} | {s['speedup']:.2f}x | {s['median_prompt_ratio']:.2f}x | "
          f"{'-' if a is None else f'{a:.2f}'} | {'-' if t is None else f'{t:.2f}'} | "
          f"{s['same_as_own_plain']}/{len(results[name]['per_prompt'])} | "
          f"{s['same_as_engine_plain']}/{len(results[name]['per_prompt'])} | "
          f"{'-' if s['draft_passes'] is None else s['draft_passes']} | {split(name)} |")

# the plot: speedup over the row's own plain per category (this engine's speculative rows and llama.cpp's n-gram)
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

shown = [n for n in names if n not in ("plain", "llamacpp_plain")]
cats = list(table)
fig, ax = plt.subplots(figsize=(14, 5))
width = 0.8 / len(shown)
for j, name in enumerate(shown):
    ys = [(table[c].get(name) or {}).get("speedup") or 0 for c in cats]
    ax.bar([i + j * width for i in range(len(cats))], ys, width, label=name, color=f"C{j}")
ax.axhline(1.0, color="black", lw=0.8)
ax.set_xticks([i + width * (len(shown) - 1) / 2 for i in range(len(cats))], cats, rotation=35, ha="right")
ax.set_ylabel("speedup over its own plain decoding")
ax.set_title(f"{folder.name}: {len(categories)} prompts, 128 tokens, greedy, 1.5B int4 (llama.cpp rows: over llama-server plain)")
ax.legend(fontsize=8, ncol=3)
fig.tight_layout()
fig.savefig(folder / "full.png", dpi=110)
