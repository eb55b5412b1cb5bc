"""Benchmark report: the JSON document (written atomically), a rich table and a bar plot.

JSON shape::

    {"setups": {"plain": {...}, "<setup>": {"median_tokens_per_s", "speedup", "acceptance_rate",
                "mean_accepted_length", "identical", "per_prompt": [...], ...}, "hf_generate": {...}, ...},
     "machine": {"cpu", "cores", "torch_threads", "torch", "transformers", "dtype", "compile", ...},
     "config": {...}}
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path

from specdec import cpuinfo
from specdec.errors import DataError
from specdec.jsonl import write_json_atomic  # noqa: F401 - re-exported: the bench's report writer

REQUIRED_SETUP_KEYS = ("median_tokens_per_s", "speedup", "acceptance_rate", "mean_accepted_length", "identical",
                       "per_prompt")


def machine_info(dtype: str, compile: bool) -> dict:
    import torch
    import transformers

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "cpu": cpuinfo.model(), "cores": os.cpu_count(), "usable_cores": usable,
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "transformers": transformers.__version__, "python": platform.python_version(),
        "platform": platform.platform(), "dtype": dtype, "compile": compile, **kernel_info(),
    }


def kernel_info() -> dict:
    """Which path of the int4/int8 kernel runs passes of how many rows (specdec.weights.kernels)."""
    from specdec.errors import ModelLoadError
    from specdec.weights import kernels

    try:
        return {"qkernel": kernels.mode(), "cpu_amx": kernels.cpu_has_amx(),
                "amx_min_rows": kernels.amx_rows_in_effect(), "bf16_prefill": kernels.bf16_prefill_in_effect()}
    except ModelLoadError as e:  # a bad SPECDEC_QKERNEL: refused where the kernel loads, recorded here
        return {"qkernel": f"invalid ({e})"}


def build_report(setups: dict[str, dict], info: dict[str, dict], machine: dict, config: dict) -> dict:
    merged = {name: {**info.get(name, {}), **res} for name, res in setups.items()}
    return {"setups": merged, "machine": machine, "config": config}


def read_report(path: str | os.PathLike) -> dict:
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: no such benchmark file; write one with `specdec bench ... --json {path}`") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e.msg})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("setups"), dict):
        raise DataError(f"{path}: not a specdec benchmark report (no 'setups')")
    return obj


def _fmt(x, spec: str = ".2f", none: str = "-") -> str:
    return none if x is None else format(x, spec)


def render_table(report: dict):
    """A rich Table: one row per setup."""
    from rich.table import Table

    cfg = report.get("config", {})
    title = (f"{cfg.get('target', '')} | {cfg.get('num_prompts', '?')} prompts"
             f" | max_new_tokens {cfg.get('max_new_tokens', '?')}")
    caption = ("tok/s: median over prompts; α, τ (incl. bonus): pooled over prompts; "
               "same: output ids equal plain decoding's; warm-up, compile: seconds")
    if any(r.get("backend") == "vllm" for r in report["setups"].values()):
        caption += ("; vllm_*: one vLLM worker per setup runs every prompt during its warm-up (start-up "
                    "included), timed per request inside vLLM")
    spread = any(r.get("repeat_spread") for r in report["setups"].values())  # --repeats: each row's run-to-run spread
    if spread:
        caption += "; spread: median over prompts of a prompt's slowest run / its fastest (--repeats)"
    t = Table(title=title, caption=caption)
    t.add_column("setup", no_wrap=True)
    for col in ("tok/s", "speedup", "α", "τ", "same", "warm-up", "compile") + (("spread",) if spread else ()):
        t.add_column(col, justify="right")
    # secondary baselines (vLLM's speculative setups over vllm_plain): one more column each, when present
    vs = list(dict.fromkeys(k for r in report["setups"].values() for k in r if k.startswith("speedup_vs_")))
    for key in vs:
        t.add_column(f"vs {key[len('speedup_vs_'):]}", justify="right")
    for name, r in report["setups"].items():
        n = len(r.get("per_prompt", []))
        same = r.get("identical")
        n_same = r.get("identical_prompts", n if same else 0)
        same_s = "-" if same is None else f"[{'green' if same else 'red'}]{n_same}/{n}[/]"
        speedup = _fmt(r.get("speedup")) + ("x" if r.get("speedup") else "")
        t.add_row(name, _fmt(r.get("median_tokens_per_s")), speedup,
                  _fmt(r.get("acceptance_rate")), _fmt(r.get("mean_accepted_length")), same_s,
                  _fmt(r.get("warmup_s"), ".1f"), _fmt(r.get("warmup_compile_s"), ".1f"),
                  *([_fmt(r.get("repeat_spread"))] if spread else []),
                  *[_fmt(r.get(key)) + ("x" if r.get(key) else "") for key in vs])
    return t


def plot(report: dict, out: str | os.PathLike) -> Path:
    """Bar chart of median tokens/s per setup (per-prompt values as dots), saved atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["setups"])
    med = [report["setups"][n]["median_tokens_per_s"] for n in names]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(names) + 1), 4.0))
    colors = ["#888888" if n in ("plain", "hf_generate", "vllm_plain") else "#4c72b0" for n in names]
    ax.bar(range(len(names)), med, color=colors)
    for i, n in enumerate(names):
        pts = [p["tokens_per_s"] for p in report["setups"][n].get("per_prompt", [])]
        ax.scatter([i] * len(pts), pts, s=8, color="black", alpha=0.5, zorder=3)
        sp = report["setups"][n].get("speedup")
        if sp:
            ax.annotate(f"{sp:.2f}x", (i, med[i]), ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                        textcoords="offset points")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel("tokens / s (median over prompts)")
    cfg = report.get("config", {})
    ax.set_title(f"{cfg.get('target', '')} ({report.get('machine', {}).get('cpu', '')})", fontsize=9)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=120)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return out


def render_category_table(report: dict):
    """A rich Table: speedup over plain decoding per prompt category (rows) and setup (columns), τ below."""
    from rich.table import Table

    cats = report.get("per_category", {})
    ref = report.get("config", {}).get("speed_reference", "plain")
    setups = [n for n in report["setups"] if n != ref]
    t = Table(title=f"speedup over {ref} per category (τ incl. bonus)",
              caption="ratio of median tokens/s on the category's prompts")
    t.add_column("category", no_wrap=True)
    t.add_column("n", justify="right")
    t.add_column(f"{ref} tok/s", justify="right")
    for n in setups:
        t.add_column(n, justify="right")
    for cat, rows in cats.items():
        cells = []
        for n in setups:
            r = rows.get(n, {})
            cells.append(f"{_fmt(r.get('speedup'))}x τ{_fmt(r.get('mean_accepted_length'), '.2f')}" if r else "-")
        t.add_row(cat, str(rows.get(ref, {}).get("prompts", "")),
                  _fmt(rows.get(ref, {}).get("median_tokens_per_s")), *cells)
    return t



def render_cost_table(report: dict):
    """A rich Table: each runner's pass time by rows (ms, and over its own 1-row pass)."""
    from rich.table import Table

    curves = report["cost_curves"]
    rows = sorted({r for c in curves.values() for r in c["rows"]})
    t = Table(title="verification pass by rows: ms (x the 1-row pass), after 256 committed tokens")
    t.add_column("runner")
    for r in rows:
        t.add_column(str(r), justify="right")
    for name, c in curves.items():
        by = dict(zip(c["rows"], zip(c["ms"], c["vs_one_row"])))
        t.add_row(f"{name} ({c['runner']}, {c['weights']})",
                  *[f"{by[r][0]:.0f} ({by[r][1]:.2f}x)" if r in by else "-" for r in rows])
    return t
