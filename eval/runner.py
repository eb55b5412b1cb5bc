"""Runs that hold up: per-item results streamed to JSONL, resume, atomic summaries.

An output folder holds one run:
  run.json       what was run (task, model, drafter, policy, data, subset...). Written first, atomically.
  results.jsonl  one JSON object per item, appended and flushed as each item finishes. A rerun with the
                 same settings skips the ids already there (a torn last line from a crash is dropped), so
                 an interrupted run resumes where it stopped.
  summary.json   accuracy and speed, and summary.md (a markdown table): written only when every item is
                 done, through a temporary file and os.replace, so they are never half-written.
  plots/*.png    (eval.plots) accuracy per subject, speed.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from specdec.errors import InputError
from specdec.jsonl import write_json_atomic, write_text_atomic

RUN_FILE = "run.json"
LOCK_FILE = ".lock"  # held (flock) by the one process writing this folder
RESULTS = "results.jsonl"
SUMMARY = "summary.json"
SUMMARY_MD = "summary.md"
# run.json keys that may change between a run and its resumption without invalidating finished items
_VOLATILE = {"started", "argv", "resumed", "threads", "version", "limit"}


def atomic_write_json(path: Path, obj: Any) -> None:
    write_json_atomic(path, obj, default=_json_default, allow_nan=True)


def _json_default(o):
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if isinstance(o, (set, tuple)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    return str(o)


def read_results(path: Path, repair: bool = False) -> list[dict]:
    """The complete records of a results.jsonl. A torn last line (a crash mid-write) is ignored, and
    with `repair` cut off the file so appends start on a clean line."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1  # everything before `cut` ends with a newline
    records = []
    for n, raw in enumerate(data[:cut].split(b"\n")[:-1], start=1):
        if raw.strip():
            try:
                records.append(json.loads(raw))
            except json.JSONDecodeError:
                raise InputError(f"{path}: line {n} is not JSON; this results file is damaged: remove it (or "
                                 f"choose another --out) to start over") from None
    tail = data[cut:]
    if tail.strip():
        try:
            records.append(json.loads(tail))  # complete, only its newline missing
            if repair:
                with open(path, "ab") as f:
                    f.write(b"\n")
        except json.JSONDecodeError:  # torn by a crash mid-write: dropped, redone on resume
            if repair:
                with open(path, "r+b") as f:
                    f.truncate(cut)
    return records


class Run:
    """One output folder. `execute(items, evaluate)` evaluates what is not done yet, streaming records."""

    def __init__(self, out_dir: str | os.PathLike, config: dict, overwrite: bool = False) -> None:
        self.dir = Path(out_dir)
        self.config = dict(config)
        self.overwrite = overwrite
        self._lock = None

    def lock(self) -> None:
        """Hold the folder for this process: two runs appending to one results.jsonl duplicated its lines. A
        second run refuses at once; the lock goes when this process ends (even by SIGKILL)."""
        if self._lock is not None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / LOCK_FILE
        existed = path.exists()
        f = open(path, "a+")
        self._try_lock(f)
        try:
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()}\n")
            f.flush()
        except OSError:  # a full disk: leave no empty lock file behind (the error itself is one line)
            f.close()
            if not existed:
                path.unlink(missing_ok=True)
            raise
        self._lock = f

    def _try_lock(self, f) -> None:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            who = f.read().strip()
            f.close()
            raise InputError(f"another run is writing to {self.dir} ({who or 'pid unknown'}); wait for it to "
                             "finish or choose another --out") from None

    def check_free(self) -> None:
        """Refuse now, before a model loads and without creating anything, if another process holds the folder."""
        path = self.dir / LOCK_FILE
        if self._lock is not None or not path.is_file():
            return
        f = open(path, "a+")
        self._try_lock(f)  # raises (and closes f) while another run holds it
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    @property
    def results_path(self) -> Path:
        return self.dir / RESULTS

    def check(self) -> None:
        """Raise if --out is a file, or holds a run with other settings (unless overwriting)."""
        run_file = self.dir / RUN_FILE
        if self.dir.exists() and not self.dir.is_dir():
            raise InputError(f"--out {self.dir} is a file; give a folder")
        from specdec.validate import check_writable_folder

        check_writable_folder(self.dir, f"--out {self.dir}")
        self.check_free()
        if run_file.exists() and not self.overwrite:
            try:
                old = json.loads(run_file.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                raise InputError(f"{run_file} is damaged; remove {self.dir} or pass --overwrite") from None
            diff = sorted(k for k in set(old) | set(self.config)
                          if k not in _VOLATILE and _norm(old.get(k)) != _norm(self.config.get(k)))
            if diff:
                show = ", ".join(f"{k}: {old.get(k)!r} -> {self.config.get(k)!r}" for k in diff[:4])
                raise InputError(f"{self.dir} holds a different run ({show}); choose another --out, or pass "
                                 f"--overwrite to start it over")

    def prepare(self) -> list[dict]:
        """Create the folder, check a previous run there was the same run, return its finished records."""
        self.check()
        self.lock()
        self.check()  # again under the lock: a run that finished meanwhile may have written run.json
        run_file = self.dir / RUN_FILE
        if self.overwrite:
            for name in (RESULTS, SUMMARY, SUMMARY_MD, RUN_FILE):
                (self.dir / name).unlink(missing_ok=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        done = read_results(self.results_path, repair=True)
        cfg = dict(self.config, resumed=bool(done), started=self.config.get("started") or time.strftime("%Y-%m-%dT%H:%M:%S"))
        atomic_write_json(run_file, cfg)
        return done

    def execute(self, items: Sequence[Any], evaluate: Callable[[Any], dict],
                item_id: Callable[[Any], str] = lambda x: x.id, progress: Callable[[int, int, dict], None] | None = None,
                batch_evaluate: Callable[[list[Any]], Iterable[dict]] | None = None) -> list[dict]:
        """Evaluate the items not yet in results.jsonl, appending one line per item (flushed). Returns all
        records for `items`, in item order. An exception stops the run; what was written stays and a rerun
        resumes after it. `batch_evaluate(pending)` (e.g. vLLM) yields records in any order instead."""
        done = {r["id"]: r for r in self.prepare()}
        pending = [x for x in items if item_id(x) not in done]
        total, n_done = len(items), len(items) - len(pending)
        with open(self.results_path, "a", encoding="utf-8") as f:
            stream = batch_evaluate(pending) if batch_evaluate else (evaluate(x) for x in pending)
            for rec in stream:
                f.write(json.dumps(rec, default=_json_default) + "\n")
                f.flush()
                done[rec["id"]] = rec
                n_done += 1
                if progress:
                    progress(n_done, total, rec)
        missing = [item_id(x) for x in items if item_id(x) not in done]
        if missing:
            raise RuntimeError(f"{len(missing)} items produced no result (first: {missing[0]})")
        return [done[item_id(x)] for x in items]

    def finish(self, summary: dict, markdown: str) -> None:
        atomic_write_json(self.dir / SUMMARY, summary)
        write_text_atomic(self.dir / SUMMARY_MD, markdown)


def _norm(v):
    return json.loads(json.dumps(v, default=_json_default))


# ------------------------------------------------------------------------------------------ markdown
def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def markdown(summary: dict) -> str:
    """A markdown report of one run's summary.json."""
    cfg = summary.get("run", {})
    lines = [f"# {summary['task']} — {cfg.get('model', '?')}", ""]
    bits = [f"backend {cfg.get('backend', 'hf')}", f"dtype {cfg.get('dtype', '?')}",
            f"drafter {cfg.get('drafter') or 'none'}", f"policy {cfg.get('policy', '-')}", f"k {cfg.get('k', '-')}",
            f"{summary['n']} items"]
    if cfg.get("scoring") in ("letter", "cloze", "mlm"):  # no generation: drafter settings do not apply
        bits = [bits[0], bits[1], f"{summary['n']} items"] if cfg.get("scoring") != "mlm" else [f"{summary['n']} items"]
    if cfg.get("num_fewshot") is not None:
        bits.insert(0, f"{cfg['num_fewshot']}-shot")
    lines += [", ".join(bits), ""]
    if "subjects" in summary:
        lines += ["| group | questions | subjects | accuracy (micro) | accuracy (macro) |", "|---|---:|---:|---:|---:|"]
        for cat, g in summary["categories"].items():
            lines.append(f"| {cat} | {g['n']} | {g['subjects']} | {_pct(g['micro'])} | {_pct(g['macro'])} |")
        lines.append(f"| **all** | {summary['n']} | {len(summary['subjects'])} | **{_pct(summary['micro'])}** | "
                     f"**{_pct(summary['macro'])}** |")
        if "acc_norm" in summary:
            lines += ["", f"acc_norm (per-byte): micro {_pct(summary['acc_norm']['micro'])}, "
                          f"macro {_pct(summary['acc_norm']['macro'])}"]
        lines += ["", "| subject | category | questions | accuracy |", "|---|---|---:|---:|"]
        for s, g in summary["subjects"].items():
            lines.append(f"| {s} | {g['category']} | {g['n']} | {_pct(g['acc'])} |")
    else:
        acc = summary["accuracy"]
        lines += ["| filter | accuracy |", "|---|---:|"]
        for k, v in acc.items():
            star = " (primary)" if k == summary.get("primary") else ""
            lines.append(f"| {k}{star} | {_pct(v)} |")
        sp = summary.get("speed", {})
        lines += ["", "| run | tokens | seconds | tokens/s | α (acceptance) | τ (tokens/target call) |",
                  "|---|---:|---:|---:|---:|---:|",
                  f"| {cfg.get('drafter') or 'plain'} | {sp.get('new_tokens', 0)} | {sp.get('seconds', 0):.1f} | "
                  f"{sp.get('tokens_per_s', 0):.2f} | {sp.get('acceptance_rate', 0):.3f} | "
                  f"{sp.get('mean_accepted_length', 0):.2f} |"]
        if "plain" in summary:
            p = summary["plain"]
            ps = p["speed"]
            lines.append(f"| plain (same questions) | {ps['new_tokens']} | {ps['seconds']:.1f} | {ps['tokens_per_s']:.2f} "
                         f"| - | 1.00 |")
            lines += ["", f"Speculation vs plain on the same {p['n']} questions: wall-clock speedup {p['speedup']:.2f}x "
                          f"(saving {_pct(p['wall_saving'])}%; tokens/s ratio {p.get('tokens_per_s_ratio', 0):.2f}x), "
                          f"identical outputs {p['identical_outputs']}/"
                          f"{p['n']}, accuracy " + ", ".join(f"{k} {_pct(v)}" for k, v in p["accuracy"].items())
                          + (" (identical)" if p["accuracy_identical"] else " (DIFFERENT)")]
        if summary.get("startup_s") is not None:
            lines += ["", f"Backend start-up: {summary['startup_s']:.1f} s (not in the speed figures)."]
    if summary.get("truncated"):
        lines += ["", f"{summary['truncated']} prompts were left-truncated to fit the context."]
    return "\n".join(lines) + "\n"
