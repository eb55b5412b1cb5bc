"""What this machine's CPU is and can do, from /proc/cpuinfo: its model name (reports, the cost cache's key) and
its instruction-set flags (which kernel build runs, whether AMX is there, which dtype vLLM's CPU build can compute
in). One reader for all of them; where the file cannot be read (not Linux) the model is platform's and no flag is
known."""
from __future__ import annotations

import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def _field(name: str) -> str | None:
    """The first processor's `name` field, or None."""
    try:
        text = CPUINFO.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == name:
            return value.strip()
    return None


def flags() -> list[str]:
    """The CPU's feature flags (avx2, avx512_vnni, amx_int8, ...); [] where unknown."""
    return (_field("flags") or "").split()


def model() -> str:
    """The CPU's model name ("AMD EPYC ...", "Intel(R) Xeon(R) ..."), else platform's processor or machine."""
    return _field("model name") or platform.processor() or platform.machine()
