"""The worked examples of docs/extending/*.md, run as written (the code blocks are read from the pages, so the
pages cannot drift from what works). Each example registers a name; the registries are restored after."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from evalhelpers import byte_tokenizer, tiny_model, write_gsm8k

DOCS = Path(__file__).resolve().parents[2] / "docs" / "extending"


def run_page(name: str) -> dict:
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(encoding="utf-8"), re.S)
    assert blocks, f"{name} has no python example"
    import sys
    import types

    mod = types.ModuleType(f"docs_{name.replace('-', '_').replace('.md', '')}")
    sys.modules[mod.__name__] = mod  # dataclasses look their module up
    try:
        for b in blocks:
            exec(compile(b, str(DOCS / name), "exec"), mod.__dict__)  # noqa: S102 - the project's own documentation
    finally:
        del sys.modules[mod.__name__]
    return mod.__dict__


@pytest.fixture
def restore_registries():
    from eval.tasks import TASKS
    from policies import POLICIES
    from specdec.drafters import DRAFTERS
    from specdec.runners import RUNNERS

    regs = (DRAFTERS, POLICIES, TASKS, RUNNERS)
    for r in regs:
        r.names()  # load plug-ins first, so that the snapshot has them
    saved = [(dict(r._items), dict(r._checks)) for r in regs]
    yield
    for r, (items, checks) in zip(regs, saved):
        r._items.clear(), r._items.update(items)
        r._checks.clear(), r._checks.update(checks)


@pytest.fixture(scope="module")
def dec():
    from specdec.api import SpecDecoder
    from specdec.config import EngineConfig

    tok = byte_tokenizer()
    return SpecDecoder(tiny_model(len(tok)), tok, engine=EngineConfig(dtype="float32", max_context=1024))


def _same_as_plain(dec, spec, prompt="abab abab abab abab ab"):
    from specdec.config import StopConfig
    from specdec.stats import GenerationStats

    ids = dec.encode(prompt, chat=False)
    stop = StopConfig(max_new_tokens=24, eos_token_ids=())
    plain = dec.generate_ids(ids, stop=stop, spec=type(spec)())
    stats = GenerationStats()
    got = dec.generate_ids(ids, stop=stop, spec=spec, stats=stats)
    assert got == plain
    return stats


def test_the_drafter_example_is_lossless_and_checks_its_options(restore_registries, dec):
    from specdec.config import SpecConfig
    from specdec.errors import InputError
    from specdec.spec_check import check_spec

    run_page("add-a-drafter.md")
    stats = _same_as_plain(dec, SpecConfig(drafter="repeat", k=4, guard=False, drafter_options={"times": 3}))
    assert stats.drafted > 0
    with pytest.raises(InputError, match="times must be >= 1"):
        check_spec(SpecConfig(drafter="repeat", drafter_options={"times": 0}))
    with pytest.raises(InputError, match="expects a whole number"):
        check_spec(SpecConfig(drafter="repeat", drafter_options={"times": "x"}))


def test_the_policy_example_backs_off_and_is_lossless(restore_registries, dec):
    from specdec.config import SpecConfig

    ns = run_page("add-a-policy.md")
    p = ns["BackoffPolicy"](k=5)
    assert p.max_draft() == 5
    p.observe(5, 0, 0.01)
    assert p.max_draft() == 1 and p.max_draft() == 1  # no side effect
    p.observe(1, 1)
    assert p.max_draft() == 5
    _same_as_plain(dec, SpecConfig(drafter="prompt-lookup", policy="backoff", k=6, guard=False))


def test_the_task_example_runs_end_to_end(restore_registries, tmp_path, dec):
    from eval.pipeline import execute
    from eval.tasks import get_task

    run_page("add-a-task.md")
    task = get_task("gsm8k_2shot")
    assert task.num_fewshot == 2 and task.max_new_tokens == 128
    write_gsm8k(tmp_path / "data")
    s = execute("gsm8k_2shot", out=tmp_path / "run", data_dir=str(tmp_path / "data"), decoder=dec, limit=2,
                max_new_tokens=8, plots=False, say=lambda m: None)
    assert s["task"] == "gsm8k_2shot" and s["n"] == 2


def test_the_runner_example_counts_passes(restore_registries, monkeypatch):
    import specdec
    from specdec.config import EngineConfig
    from spec_helpers import install_tiny_zoo

    tok = byte_tokenizer()
    install_tiny_zoo(monkeypatch, {"tiny-target": tiny_model(len(tok))}, tok)
    ns = run_page("add-a-runner.md")
    dec = specdec.load("tiny-target", engine=EngineConfig(backend="counting", dtype="float32", max_context=512))
    assert isinstance(dec.target, ns["CountingRunner"])
    out = dec.generate("abab abab", chat=False, max_new_tokens=6, eos_token_ids=(), drafter="prompt-lookup")
    assert len(out.token_ids) == 6 and dec.target.passes >= 2 and dec.target.rows >= dec.target.passes
