"""The one resolver of the datasets folder (MMLU, GSM8K, Spec-Bench, SST-2) for bench, eval, aded, mlm and the
experiments: `--data-dir` > `$SPECDEC_DATA` > `<project>/../shared/data`. Not checked here: each loader names
the file it misses and how to point at the folder."""
from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "SPECDEC_DATA"
REPO_ROOT = Path(__file__).resolve().parents[1]


def default_data_dir() -> Path:
    return REPO_ROOT.parent / "shared" / "data"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return default_data_dir()
