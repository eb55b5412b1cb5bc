"""One progress display for long jobs (pulls, benchmarks): a rich bar on a terminal, plain lines otherwise.

Why plain lines: a rich live display writes nothing to a file or a pipe until it ends, so a 30-minute
benchmark redirected to a log looked hung. Off a terminal every task prints a line when it starts, at
most every `every_s` seconds (or each 10%) while it runs, and when it ends.

    with Progress(console) as p:
        task = p.add("assembling model.gguf", total=n_bytes, unit="bytes")
        p.advance(task, len(chunk))
        p.say("reusing the cached copy")
        p.done(task)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class _Task:
    label: str
    total: float | None
    unit: str
    done: float = 0.0
    shown_at: float = field(default_factory=time.monotonic)
    shown_frac: float = 0.0
    rich_id: int | None = None


class Progress:
    def __init__(self, console, every_s: float = 15.0, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled and not getattr(console, "quiet", False)
        self.live = self.enabled and console.is_terminal
        self.every_s = every_s
        self._tasks: dict[int, _Task] = {}
        self._bar = None

    def __enter__(self) -> "Progress":
        if self.live:
            from rich.progress import (BarColumn, DownloadColumn, Progress as RichProgress, TextColumn,
                                       TimeElapsedColumn)

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                     TimeElapsedColumn(), console=self.console, transient=False)
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def say(self, msg: str) -> None:
        if self.enabled:
            self.console.print(msg, markup=False, highlight=False)

    def add(self, label: str, total: float | None = None, unit: str = "") -> int:
        tid = len(self._tasks)
        t = _Task(label, total, unit)
        self._tasks[tid] = t
        if self._bar is not None:
            t.rich_id = self._bar.add_task(label, total=total)
        elif self.enabled:
            self.say(f"{label} ...")
        return tid

    def advance(self, tid: int, n: float = 1) -> None:
        t = self._tasks[tid]
        t.done += n
        if self._bar is not None:
            self._bar.advance(t.rich_id, n)
            return
        if not self.enabled:
            return
        now = time.monotonic()
        frac = t.done / t.total if t.total else 0.0
        if now - t.shown_at >= self.every_s or (t.total and frac - t.shown_frac >= 0.1 and frac < 1):
            t.shown_at, t.shown_frac = now, frac
            self.say(f"{t.label}: {self._amount(t)}")

    def done(self, tid: int, note: str = "") -> None:
        t = self._tasks[tid]
        if self._bar is not None:
            if t.total:
                self._bar.update(t.rich_id, completed=t.total)
            return
        if self.enabled:
            self.say(f"{t.label}: done{' (' + note + ')' if note else ''}")

    @staticmethod
    def _amount(t: _Task) -> str:
        if t.unit == "bytes":
            s = f"{t.done / 1e6:.0f} MB"
            return s + (f" of {t.total / 1e6:.0f} MB ({t.done / t.total:.0%})" if t.total else "")
        s = f"{t.done:g}"
        return s + (f"/{t.total:g} ({t.done / t.total:.0%})" if t.total else "")
