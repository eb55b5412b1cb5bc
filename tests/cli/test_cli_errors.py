"""OneLineGroup: every failure of a command is one red line -- a project error, an OS error (disk full, a
read-only folder), a usage error -- with exit codes 1, 1 and 2."""
from __future__ import annotations

import errno

import typer
from typer.testing import CliRunner

from specdec.cli.errors import OneLineGroup
from specdec.errors import InputError

app = typer.Typer(cls=OneLineGroup, add_completion=False)


@app.command()
def full(n: int = 1) -> None:
    raise OSError(errno.ENOSPC, "No space left on device", "/out/report.json")


@app.command()
def bad() -> None:
    raise InputError("a clear reason")


def _one_line(res) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.output
    return lines[0]


def test_disk_full_is_one_line():
    res = CliRunner().invoke(app, ["full"])
    assert res.exit_code == 1
    assert _one_line(res) == "error: cannot write /out/report.json: No space left on device"


def test_project_error_and_usage_error():
    res = CliRunner().invoke(app, ["bad"])
    assert res.exit_code == 1 and _one_line(res) == "error: a clear reason"
    res = CliRunner().invoke(app, ["full", "--n", "1.5"])
    assert res.exit_code == 2 and "Invalid value for '--n'" in _one_line(res)


def test_stdout_on_a_full_device_is_one_line(tmp_path):
    """A real process whose stdout is /dev/full (every write fails with ENOSPC): one line, exit 1."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    if not Path("/dev/full").exists():
        import pytest

        pytest.skip("no /dev/full on this system")
    env = {**os.environ, "SPECDEC_CACHE": str(tmp_path / "cache")}
    with open("/dev/full", "w") as full:
        res = subprocess.run([sys.executable, "-m", "specdec.cli.main", "models", "list"], stdout=full,
                             stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 1 and lines == ["error: cannot write: No space left on device"], res.stderr
