"""Fault injection on real `specdec` processes: truncated and bit-flipped cache files, SIGINT and SIGKILL
during a pull and during an eval run, concurrent pulls into an empty cache, a read-only cache, two runs on one
folder. Each asserts the outcome: one clear error line, nothing half-written, a resumed run identical to an
uninterrupted one. (tests/reliability/fault_child.py is the child process.)"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent
CHILD = HERE / "fault_child.py"
NAME = "tiny-bert"
sys.path.insert(0, str(HERE.parent / "eval"))


def _open_dir() -> Path:
    """A fresh folder outside pytest's tmp_path (the cache fixture may make parts of it immutable)."""
    d = Path(tempfile.mkdtemp(prefix="specdec-faults-"))
    d.chmod(0o755)
    return d


@pytest.fixture(scope="module")
def world():
    """Shared across the module: the tiny BERT's files (the fake package) and a tiny causal LM folder with
    MMLU-format data for eval runs."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    from evalhelpers import byte_tokenizer, tiny_model, write_mmlu

    root = _open_dir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "paris", "is", "the", "capital", "of", "."]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
    bert = root / "bert"
    BertTokenizer(vocab_file=str(root / "vocab.txt")).save_pretrained(bert)
    BertForMaskedLM(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32, max_position_embeddings=32)).save_pretrained(bert)
    lm = root / "lm"
    tok = byte_tokenizer()
    tiny_model(len(tok)).save_pretrained(lm)
    tok.save_pretrained(lm)
    write_mmlu(root / "data")
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    yield {"root": root, "bert": bert, "lm": lm, "data": root / "data"}
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def cache():
    d = _open_dir()
    yield d / "cache"
    subprocess.run(["chattr", "-R", "-i", str(d)], capture_output=True, check=False)
    subprocess.run(["chmod", "-R", "u+w", str(d)], check=False)
    shutil.rmtree(d, ignore_errors=True)


def spec_file(world, **delays) -> Path:
    files = {f"model/{f.name}": str(f) for f in sorted(world["bert"].iterdir()) if f.is_file()}
    p = Path(tempfile.mkstemp(dir=world["root"], suffix=".json")[1])
    p.write_text(json.dumps({"name": NAME, "files": files, **delays}))
    p.chmod(0o644)
    return p


def child(world, cache, *args, **delays) -> subprocess.Popen:
    env = {**os.environ, "SPECDEC_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
           "OMP_NUM_THREADS": "1", "HOME": str(world["root"]), "TORCHINDUCTOR_CACHE_DIR": str(world["root"] / "ind"),
           "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    opts = [str(spec_file(world, **delays))]
    return subprocess.Popen([sys.executable, str(CHILD), *opts, "--", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=str(world["root"]))


def finish(p: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def wait_for(p: subprocess.Popen, marker: str, count: int = 1, timeout: float = 90) -> None:
    """Read the child's stdout until `marker` was printed `count` times."""
    seen, t0 = 0, time.monotonic()
    while seen < count:
        line = p.stdout.readline()
        if not line:
            raise AssertionError(f"child ended before {marker!r} x{count}: {p.stderr.read()[-2000:]}")
        seen += marker in line
        assert time.monotonic() - t0 < timeout, f"no {marker!r} within {timeout} s"


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


def temps(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.glob(f".{NAME}.*") if not p.name.endswith(".lock")) if cache.exists() else []


def ok(res: tuple[int, str, str]) -> tuple[int, str, str]:
    assert res[0] == 0, res[2][-3000:]
    return res


def pull(world, cache, **kw) -> tuple[int, str, str]:
    return finish(child(world, cache, "models", "pull", NAME, **kw))


def fill(world, cache, **kw) -> tuple[int, str, str]:
    return finish(child(world, cache, "mlm", "fill", "paris is the [MASK] .", "--model", NAME, **kw))


# ------------------------------------------------------------------ the cache's files
@pytest.mark.parametrize("fault", ["truncated", "bit-flipped"])
def test_a_damaged_cache_file_is_one_clear_line_and_a_forced_pull_repairs_it(world, cache, fault):
    ok(pull(world, cache))
    f = cache / NAME / "model.safetensors"
    data = bytearray(f.read_bytes())
    if fault == "truncated":
        f.write_bytes(bytes(data[: len(data) // 2]))
    else:
        data[-7] ^= 0x10  # one bit of a tensor value: same size, same header
        f.write_bytes(bytes(data))
    rc, out, err = fill(world, cache)
    line = one_error_line(err)
    assert rc == 1 and "model.safetensors" in line and f"specdec models pull {NAME} --force" in line
    rc, _, err = finish(child(world, cache, "models", "pull", NAME, "--force"))
    assert rc == 0, err
    ok(fill(world, cache))


# ------------------------------------------------------------------ kills during a pull
def test_sigkill_during_a_pull_leaves_no_model_and_the_next_pull_cleans_up(world, cache):
    p = child(world, cache, "models", "pull", NAME, copy_delay_s=30)
    wait_for(p, "FAULT-CHILD copied")
    p.kill()
    p.wait(timeout=30)
    assert not (cache / NAME).exists()  # nothing half-written where a model is expected
    assert temps(cache) == [f".{NAME}.tmp-{p.pid}"]  # what a SIGKILL leaves
    rc, _, err = pull(world, cache)
    assert rc == 0, err
    assert "left by an interrupted pull" in err and temps(cache) == []
    rc, out, err = finish(child(world, cache, "models", "verify", NAME))
    assert rc == 0, out + err


def test_sigint_during_a_pull_cleans_up_and_says_so_in_one_line(world, cache):
    p = child(world, cache, "models", "pull", NAME, copy_delay_s=30)
    wait_for(p, "FAULT-CHILD copied")
    p.send_signal(signal.SIGINT)
    rc, _, err = finish(p)
    assert rc != 0 and "Traceback" not in err, err
    assert "interrupted" in err.lower() or "aborted" in err.lower(), err
    assert not (cache / NAME).exists() and temps(cache) == []


def test_concurrent_pulls_into_an_empty_cache_give_one_good_copy(world, cache):
    procs = [child(world, cache, "models", "pull", NAME, copy_delay_s=0.5) for _ in range(3)]
    results = [finish(p) for p in procs]
    assert all(rc == 0 for rc, _, _ in results), [err for _, _, err in results]
    errs = " ".join(err for _, _, err in results)
    assert errs.count("pulled into") == 1 and errs.count("pulled meanwhile by another process") == 2
    assert temps(cache) == []
    assert finish(child(world, cache, "models", "verify", NAME))[0] == 0


# ------------------------------------------------------------------ a read-only cache
def make_read_only(folder: Path) -> None:
    """Every file and folder below `folder` read-only, for root too: root ignores file modes, so as root the
    folders are made immutable (chattr +i; the `cache` fixture undoes it)."""
    if os.geteuid() != 0:
        subprocess.run(["chmod", "-R", "a-w", str(folder)], check=True)
        return
    r = subprocess.run(["chattr", "-R", "+i", str(folder)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot make a folder read-only for root here (chattr: {r.stderr.strip()[:200]})")


def test_a_read_only_empty_cache_is_one_clear_line(world, cache):
    cache.mkdir(parents=True)
    make_read_only(cache)
    rc, _, err = pull(world, cache)
    line = one_error_line(err)
    assert rc == 1 and str(cache) in line and "cannot write" in line


def test_a_read_only_cache_still_loads_what_it_holds(world, cache):
    ok(pull(world, cache))
    (cache / NAME / ".verified.json").unlink(missing_ok=True)  # no stamps: the load re-hashes, writes nothing
    make_read_only(cache)
    rc, out, err = ok(fill(world, cache))
    assert "@4:" in out, out + err  # the masked LM ran: its top tokens for the mask at position 4
    rc, _, err = ok(pull(world, cache))  # already there: nothing to write
    assert "already pulled" in err


# ------------------------------------------------------------------ kills during an eval run, two runs on one folder
def eval_args(world, out: Path) -> list[str]:
    return ["eval", "run", "mmlu", "--model", str(world["lm"]), "--data-dir", str(world["data"]), "--out", str(out),
            "--subjects", "abstract_algebra,anatomy,marketing", "--num-fewshot", "1", "--dtype", "float32", "--threads", "1", "--no-plots"]


def records(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    for r in rows:
        for k in [k for k in r if k.endswith("_s") or k in ("seconds", "tokens_per_s")]:
            r.pop(k)
    return rows


@pytest.fixture(scope="module")
def uninterrupted(world):
    out = world["root"] / "eval-full"
    rc, _, err = finish(child(world, world["root"] / "unused-cache", *eval_args(world, out)))
    assert rc == 0, err
    return records(out), json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_a_killed_eval_run_resumes_to_the_uninterrupted_result(world, cache, uninterrupted, sig):
    out = cache.parent / "run"
    p = child(world, cache, *eval_args(world, out), item_delay_s=1.0)
    wait_for(p, "FAULT-CHILD item", count=3)
    p.send_signal(sig)
    rc, _, err = finish(p)
    assert rc != 0 and "Traceback" not in err, err
    assert not (out / "summary.json").exists()  # nothing claims to be finished
    partial = records(out)
    assert 2 <= len(partial) < len(uninterrupted[0])
    rc, _, err = finish(child(world, cache, *eval_args(world, out)))
    assert rc == 0, err
    got = records(out)
    assert [r["id"] for r in got] == [r["id"] for r in uninterrupted[0]]  # none lost, none duplicated
    assert got == uninterrupted[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == uninterrupted[1]["n"] and summary["acc"] == uninterrupted[1]["acc"]


def test_two_runs_on_one_folder(world, cache, uninterrupted):
    out = cache.parent / "run"
    first = child(world, cache, *eval_args(world, out), item_delay_s=0.5)
    wait_for(first, "FAULT-CHILD item")
    rc, _, err = finish(child(world, cache, *eval_args(world, out)))
    line = one_error_line(err)
    assert rc == 1 and "another run is writing to" in line
    rc, _, err = finish(first)
    assert rc == 0, err
    assert records(out) == uninterrupted[0]  # the refused run wrote nothing
