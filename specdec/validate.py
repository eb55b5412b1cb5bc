"""Checks of a speculative setup that run before any model loads (CLI, API, bench and eval all use them)."""
from __future__ import annotations

import inspect

from specdec.config import SpecConfig
from specdec.errors import InputError


def set_threads(threads: int | None) -> None:
    """The one place torch's thread count is set (None: torch's default); refuses a count below 1."""
    if threads is None:
        return
    if not isinstance(threads, int) or threads < 1:
        raise InputError(f"--threads must be >= 1, got {threads}")
    import torch

    torch.set_num_threads(threads)


def check_choices(values, known, flag: str, what: str) -> list[str]:
    """`values` lower-cased, each one of `known` (else one line listing them), duplicates dropped, order kept."""
    out: list[str] = []
    for raw in values:
        s = raw.strip().lower()
        if s not in known:
            raise InputError(f"{flag} {raw!r}: unknown {what}; known: {', '.join(known)}")
        if s not in out:
            out.append(s)
    return out


def check_writable_folder(folder, label: str) -> None:
    """`folder` is, or can be made as, a folder this process can write in: its first existing ancestor (itself
    included) must be a writable folder. One clear error naming `label` otherwise."""
    import os
    from pathlib import Path

    folder = Path(folder)
    for anc in [folder, *folder.parents]:
        if anc.exists():
            if not anc.is_dir():
                raise InputError(f"{label}: {anc} is a file, not a folder")
            if not os.access(anc, os.W_OK | os.X_OK):
                raise InputError(f"{label}: cannot write in {anc}")
            return


def check_output_path(path: str | None, flag: str, suffix: str | None = None) -> None:
    """Refuse an output path that cannot be written, before any work: a folder, a file under a file, a
    read-only folder."""
    if not path:
        return
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        raise InputError(f"{flag} {path}: is a folder; give a file name")
    if suffix and p.suffix.lower() != suffix:
        raise InputError(f"{flag} {path}: must end in {suffix}")
    check_writable_folder(p.parent, f"{flag} {path}")


def utf8_text(text: str | bytes, what: str, error: type[Exception] = InputError) -> str:
    """`text` as a str that is valid UTF-8, else one clear error naming `what` and the first bad byte.
    Bytes are decoded strictly; a str may carry lone surrogates (Python's surrogateescape for argv and
    stdin), which the tokenizers reject with a traceback."""
    if isinstance(text, bytes):
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise error(f"{what} is not UTF-8 text (byte 0x{text[e.start]:02x} at offset {e.start})") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = text[e.start]
        byte = f"byte 0x{ord(bad) - 0xDC00:02x}" if 0xDC80 <= ord(bad) <= 0xDCFF else f"U+{ord(bad):04X}"
        raise error(f"{what} is not UTF-8 text ({byte} at character {e.start})") from None
    return text


def read_utf8(path, what: str | None = None) -> str:
    """A text file's content, checked as UTF-8 (see utf8_text); a bad byte is a DataError."""
    from pathlib import Path

    from specdec.errors import DataError

    return utf8_text(Path(path).read_bytes(), what or str(path), DataError)


def _accepted(factory, skip: tuple[str, ...]) -> list[str] | None:
    fields = getattr(factory, "__dataclass_fields__", None)
    if fields is not None:
        return [f for f in fields if f not in skip]
    params = inspect.signature(factory).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None  # takes anything
    return [p.name for p in params if p.name not in skip]


def check_spec(spec: SpecConfig) -> None:
    """Fail before loading anything: unknown drafter/policy names list the known ones; unknown options too."""
    from policies import POLICIES
    from specdec.drafters import DRAFTERS

    if not isinstance(spec.k, int) or spec.k < 1:
        raise InputError(f"-k (draft tokens per round) must be >= 1, got {spec.k}")
    checks = [(POLICIES.get(spec.policy), spec.policy_options, ("name",), f"policy {spec.policy!r}", "--policy-opt")]
    if spec.drafter not in (None, "none", "plain"):
        checks.append((DRAFTERS.get(spec.drafter), spec.drafter_options, ("env",), f"drafter {spec.drafter!r}",
                       "--drafter-opt"))
    for factory, opts, skip, what, flag in checks:
        known = _accepted(factory, skip)
        bad = sorted(set(opts) - set(known)) if known is not None else []
        if bad:
            raise InputError(f"{flag}: {what} has no option {', '.join(bad)}; its options: {', '.join(known) or '(none)'}")
    build_policy(spec)  # its own checks (heuristic k_max >= k, thresholds, a head file) before any model loads


def build_policy(spec: SpecConfig):
    """The candidate-length policy `spec` names, with its options and (where it takes one) `spec.k`."""
    from policies import POLICIES

    opts = dict(spec.policy_options)
    factory = POLICIES.get(spec.policy)
    if "k" in getattr(factory, "__dataclass_fields__", {}) and "k" not in opts:
        opts["k"] = spec.k
    return POLICIES.create(spec.policy, **opts)
