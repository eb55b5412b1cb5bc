"""Leaf checks of user input that every layer may use (text, paths, thread counts, choices): they import nothing
of the engine. The check of a speculative setup (drafter, policy, their options) is specdec.spec_check."""
from __future__ import annotations

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
    if p.exists() and not p.is_file():  # a device, a pipe, a socket: never replaced by a regular file
        raise InputError(f"{flag} {path}: is not a regular file; give a file name")
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


_TYPE_WORDS = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "a string",
               "None": "none"}


def check_option_value(flag: str, what: str, key: str, value, annotation) -> None:
    """One KEY=VALUE option against its declared type (`int`, `float | None`, `str`, ...: the annotation of the
    factory's parameter or dataclass field). A float is no whole number, a bool no number, inf and nan no
    number; an annotation this does not read (`Any`, a class) accepts anything."""
    import math

    ann = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    types = {t.strip() for t in ann.split("|")}
    if not types or not types <= set(_TYPE_WORDS):
        return
    ok = ((value is None and "None" in types)
          or (isinstance(value, bool) and "bool" in types)
          or (isinstance(value, int) and not isinstance(value, bool) and bool({"int", "float"} & types))
          or (isinstance(value, float) and "float" in types and math.isfinite(value))
          or (isinstance(value, str) and "str" in types))
    if not ok:
        want = " or ".join(_TYPE_WORDS[t] for t in sorted(types))
        raise InputError(f"{flag} {key}={value!r}: {what} expects {want} for {key}")


def config_from_options(cls, options: dict, name: str):
    """A drafter's frozen config dataclass from its --drafter-opt KEY=VALUEs: an unknown key lists the known ones,
    each value is checked against its field's declared type, the dataclass checks the ranges."""
    from dataclasses import fields

    types = {f.name: f.type for f in fields(cls)}
    bad = sorted(set(options) - set(types))
    if bad:
        raise InputError(f"{name}: unknown option(s) {', '.join(bad)}; known: {', '.join(sorted(types))}")
    for key, value in options.items():
        check_option_value("--drafter-opt", f"drafter {name!r}", key, value, types[key])
    return cls(**options)
