"""specdec.drafters.aded.corpus: the `stdlib` source (this Python's standard library, code on every machine)."""
from __future__ import annotations

import sysconfig
from pathlib import Path

from specdec.drafters.aded.corpus import DATASETS, iter_texts, stdlib_files


def test_stdlib_files_leave_out_tests_and_gui_folders(tmp_path):
    for rel in ["json/__init__.py", "os.py", "email/mime/text.py", "test/test_os.py", "ctypes/test/x.py",
                "unittest/tests/y.py", "idlelib/z.py", "tkinter/w.py", "test_support.py", "__phello__/spam.py",
                "site-packages/pkg/m.py", "README.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    got = [f.relative_to(tmp_path).as_posix() for f in stdlib_files(tmp_path)]
    assert got == ["email/mime/text.py", "json/__init__.py", "os.py"]


def test_stdlib_source_reads_the_running_pythons_library_without_a_data_folder(tmp_path):
    assert "stdlib" in DATASETS
    root = Path(sysconfig.get_paths()["stdlib"])
    texts = iter_texts("stdlib", tmp_path / "no-data-here")  # no datasets folder needed
    first = next(texts)
    assert first == stdlib_files()[0].read_text(encoding="utf-8")
    assert (root / "os.py") in stdlib_files() and not any("/test/" in f.as_posix() for f in stdlib_files())
