"""PNG plots of evaluation summaries (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

CAT_COLORS = {"stem": "#4C72B0", "humanities": "#DD8452", "social_sciences": "#55A868", "other": "#8172B3"}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Write through a temporary file and a rename, like the summaries."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)
    return path


def label_of(summary: dict) -> str:
    run = summary.get("run", {})
    drafter = run.get("drafter") or ("draft-model" if run.get("draft") else "plain")
    lab = f"{run.get('backend', 'hf')}:{drafter}"
    if drafter != "plain":
        lab += f"/{run.get('policy', 'constant')}/k{run.get('k', '?')}"
    if run.get("dtype", "bfloat16") != "bfloat16":
        lab += f" [{run['dtype']}]"
    return lab


def mmlu_subjects(summary: dict, path: Path) -> Path:
    """Accuracy per subject (horizontal bars coloured by category), with the micro average marked."""
    plt = _plt()
    subj = summary["subjects"]
    names = sorted(subj, key=lambda s: (subj[s]["category"], subj[s]["acc"]))
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.22 * len(names) + 1)))
    ax.barh(range(len(names)), [100 * subj[s]["acc"] for s in names],
            color=[CAT_COLORS.get(subj[s]["category"], "gray") for s in names])
    ax.set_yticks(range(len(names)), [f"{s} ({subj[s]['n']})" for s in names], fontsize=7)
    ax.axvline(100 * summary["micro"], color="black", lw=1, ls="--", label=f"micro {100 * summary['micro']:.1f}")
    ax.axvline(25, color="gray", lw=0.8, ls=":", label="chance 25")
    from matplotlib.patches import Patch

    handles, _ = ax.get_legend_handles_labels()
    handles += [Patch(color=color, label=f"{cat} {100 * summary['categories'][cat]['micro']:.1f}")
                for cat, color in CAT_COLORS.items() if cat in summary.get("categories", {})]
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy (%)")
    run = summary.get("run", {})
    ax.set_title(f"{summary['task']} — {run.get('model', '')} ({run.get('num_fewshot', 0)}-shot, n={summary['n']})",
                 fontsize=9)
    ax.legend(handles=handles, fontsize=7, loc="lower right")
    out = _save(fig, path)
    plt.close(fig)
    return out


def speed_bars(summaries: Sequence[dict], path: Path) -> Path:
    """tokens/s per task and per backend/drafter/policy (one bar each; a plain side-by-side run too)."""
    plt = _plt()
    rows = []
    for s in summaries:
        if "speed" not in s:
            continue
        run = s.get("run", {})
        head = f"{s['task']} {str(run.get('model', '')).removesuffix('-instruct')}"
        rows.append((head, label_of(s), s["speed"]["tokens_per_s"], s.get("acc", 0.0)))
        if "plain" in s:
            dt = f" [{run['dtype']}]" if run.get("dtype", "bfloat16") != "bfloat16" else ""
            rows.append((head, f"{run.get('backend', 'hf')}:plain (paired){dt}",
                         s["plain"]["speed"]["tokens_per_s"], s["plain"]["accuracy"].get(s["primary"], 0.0)))
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(rows) + 2), 4))
    if rows:
        xs = range(len(rows))
        bars = ax.bar(xs, [r[2] for r in rows], color=["#4C72B0" if "plain" in r[1] else "#DD8452" for r in rows])
        ax.set_xticks(list(xs), [f"{r[0]}\n{r[1]}" for r in rows], rotation=30, ha="right", fontsize=7)
        for b, r in zip(bars, rows):
            ax.text(b.get_x() + b.get_width() / 2, b.get_height(), f"{r[2]:.1f}\nacc {100 * r[3]:.0f}",
                    ha="center", va="bottom", fontsize=7)
    ax.set_ylabel("tokens / s (batch 1, greedy)")
    ax.set_title("generation speed per task and drafter/policy", fontsize=9)
    out = _save(fig, path)
    plt.close(fig)
    return out


def plots_for(summary: dict, folder: Path) -> list[Path]:
    folder = Path(folder)
    if "subjects" in summary:
        return [mmlu_subjects(summary, folder / "accuracy_per_subject.png")]
    if "speed" in summary:
        return [speed_bars([summary], folder / "speed.png")]
    return []
