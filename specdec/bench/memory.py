"""Peak resident memory while a piece of work runs: the bench reports it per setup (a setup that needs
twice the memory of another is worth knowing about on a 24 GiB machine), and frees models between setups."""
from __future__ import annotations

import ctypes
import gc
import threading
from pathlib import Path

INTERVAL_S = 0.02


def rss_mb(pid: int | str = "self", field: str = "VmRSS") -> float | None:
    """Resident (VmRSS) or peak resident (VmHWM) memory of a process in MB, from /proc; None off Linux."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class RssMeter:
    """`with RssMeter() as m: ...` -> m.peak_mb, the largest VmRSS sampled every 20 ms meanwhile."""

    def __init__(self) -> None:
        self.peak_mb: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        v = rss_mb()
        if v is not None and (self.peak_mb is None or v > self.peak_mb):
            self.peak_mb = v

    def _loop(self) -> None:
        while not self._stop.wait(INTERVAL_S):
            self._sample()

    def __enter__(self) -> "RssMeter":
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        if self.peak_mb is not None:
            self.peak_mb = round(self.peak_mb, 1)


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc's malloc_trim), so the next setup
    starts from what is really in use."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
