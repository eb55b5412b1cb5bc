"""`specdec bench` / `bench-plot` and specdec.bench, on tiny random models (the `tiny_zoo` fixture below)."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spec_helpers import install_tiny_zoo
import specdec.bench.runner as bench_runner
from specdec.bench import load_prompts, parse_setup, read_report, run_bench, write_json_atomic
from specdec.bench.report import REQUIRED_SETUP_KEYS
from specdec.cli.main import app
from specdec.errors import DataError, InputError

runner = CliRunner()
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
PROMPTS = ["w5 w6 w7 w8 w5 w6", "w10 w11 w12", "w3 w9 w3 w9 w3"]
PER_PROMPT_KEYS = {"prompt_index", "prompt_tokens", "tokens", "seconds", "tokens_per_s", "acceptance_rate",
                   "mean_accepted_length", "target_calls", "identical"}


@pytest.fixture
def tiny_zoo(monkeypatch, target_model, draft_model, tokenizer):
    """Tiny random models behind `specdec.api._load_hf` (the one place models get loaded), by name:
    tiny-target, tiny-draft (a noisy copy of the target), tiny-self (the target again).
    Returns the list of names loaded so far. (Not in a conftest.py: a second `conftest` module would shadow
    tests/conftest.py for the tests that `from conftest import ...`.)"""
    models = {"tiny-target": target_model, "tiny-draft": draft_model, "tiny-self": target_model}
    return install_tiny_zoo(monkeypatch, models, tokenizer)


@pytest.fixture
def prompt_file(tmp_path):
    p = tmp_path / "prompts.txt"
    p.write_text("\n".join(PROMPTS) + "\n\n")
    return p


def bench(tmp_path, prompt_file, *extra):
    out = tmp_path / "out" / "bench.json"
    args = ["bench", "--target", "tiny-target", "--prompts", str(prompt_file), "--max-new-tokens", "16",
            "--json", str(out), *extra]
    return runner.invoke(app, args), out


def test_bench_json_shape_and_identical(tiny_zoo, tmp_path, prompt_file):
    res, out = bench(tmp_path, prompt_file, "--draft", "tiny-draft", "--hf", "--plot", str(tmp_path / "b.png"))
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    assert set(rep) == {"setups", "machine", "config", "complete", "anchors"} and rep["complete"] is True
    assert rep["config"]["ignore_eos"] is True  # every row generates exactly max_new_tokens
    assert all(p["tokens"] == 16 for s in rep["setups"].values() for p in s["per_prompt"])
    assert all(s["peak_rss_mb"] > 0 for s in rep["setups"].values())
    setups = rep["setups"]
    assert list(setups) == ["plain", "draft-model", "prompt-lookup", "hf_generate", "hf_assisted"]
    for name, s in setups.items():
        assert set(REQUIRED_SETUP_KEYS) <= set(s), name
        assert len(s["per_prompt"]) == 3 and all(PER_PROMPT_KEYS <= set(p) for p in s["per_prompt"])
        assert s["median_tokens_per_s"] > 0 and s["speedup"] > 0
        assert isinstance(s["identical"], bool)  # HF outputs are compared and recorded too
    for name in ("plain", "draft-model", "prompt-lookup"):  # this engine, greedy: lossless
        assert setups[name]["identical"] is True, name
    assert setups["plain"]["speedup"] == 1.0 and setups["plain"]["acceptance_rate"] is None
    assert setups["plain"]["mean_accepted_length"] == 1.0
    assert setups["prompt-lookup"]["acceptance_rate"] is not None
    assert setups["draft-model"]["drafter"] == "draft-model" and setups["draft-model"]["k"] == 4
    assert setups["hf_generate"]["per_prompt"][0]["target_calls"] > 0
    m = rep["machine"]
    assert {"cpu", "cores", "torch_threads", "torch", "transformers", "dtype", "compile"} <= set(m)
    assert m["dtype"] == "float32" and m["compile"] is False
    assert rep["config"]["num_prompts"] == 3 and rep["config"]["max_new_tokens"] == 16
    assert rep["config"]["draft"] == "tiny-draft"
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "plain" in res.stdout and "speedup" in res.stdout  # the table
    assert [p.name for p in out.parent.iterdir()] == ["bench.json"]  # no temporary left over


def test_bench_without_draft_custom_setups(tiny_zoo, tmp_path, prompt_file):
    res, out = bench(tmp_path, prompt_file, "--no-hf", "--setup", "pl2=prompt-lookup:constant:2",
                     "--setup", "plh=prompt-lookup:heuristic")
    assert res.exit_code == 0, res.output
    setups = json.loads(out.read_text())["setups"]
    assert list(setups) == ["plain", "pl2", "plh"]
    assert setups["pl2"]["k"] == 2 and setups["plh"]["policy"] == "heuristic" and setups["plh"]["k"] == 4
    assert all(s["identical"] is True for s in setups.values())
    res, out = bench(tmp_path, prompt_file, "--no-hf")  # default without a draft: prompt-lookup only
    assert list(json.loads(out.read_text())["setups"]) == ["plain", "prompt-lookup"]


def test_a_failing_setup_is_recorded_and_the_others_survive(tiny_zoo, tmp_path, prompt_file, monkeypatch):
    real = bench_runner.hf_backend

    def failing(*a, **kw):
        backend, calls = real(*a, **kw), [0]

        def run(ids):
            calls[0] += 1
            if calls[0] == 3:  # warm-up, prompt 1, then fail on prompt 2
                raise RuntimeError("boom midway")
            return backend(ids)

        return run

    monkeypatch.setattr(bench_runner, "hf_backend", failing)
    res, out = bench(tmp_path, prompt_file, "--hf")
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    assert rep["setups"]["hf_generate"]["failed"] is True and "boom midway" in rep["setups"]["hf_generate"]["error"]
    assert rep["setups"]["plain"]["median_tokens_per_s"] > 0 and rep["setups"]["prompt-lookup"]["identical"]
    assert [p.name for p in out.parent.iterdir()] == ["bench.json"]  # no temporary left over


def test_the_report_is_written_after_every_setup(tiny_zoo, tmp_path, prompt_file, monkeypatch):
    """A bench killed late keeps what it measured: after each setup the file holds the setups so far."""
    import specdec.bench.pipeline as pipeline

    seen = []
    real = pipeline.write_json_atomic

    def spy(path, obj):
        seen.append((list(obj["setups"]), obj["complete"]))
        return real(path, obj)

    monkeypatch.setattr(pipeline, "write_json_atomic", spy)
    res, out = bench(tmp_path, prompt_file, "--setup", "pl2=prompt-lookup:constant:2")
    assert res.exit_code == 0, res.output
    assert seen[0] == (["plain"], False) and seen[1] == (["plain", "pl2"], False)
    assert seen[-1] == (["plain", "pl2"], True)


def test_bench_repeats_end_to_end(tiny_zoo, tmp_path, prompt_file):
    res, out = bench(tmp_path, prompt_file, "--setup", "pl2=prompt-lookup:constant:2", "--repeats", "2")
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    assert rep["config"]["repeats"] == 2 and rep["complete"] is True
    for name, s in rep["setups"].items():
        rows = s["per_prompt"]
        assert len(rows) == 3 and all(len(p["repeat_seconds"]) == 2 for p in rows), name
        assert all(p["seconds"] == min(p["repeat_seconds"]) for p in rows)  # of two runs, the lower middle one
        assert s["identical_prompts"] == 3
        assert s["repeat_spread"] == pytest.approx(statistics.median(max(p["repeat_seconds"]) / min(p["repeat_seconds"])
                                                                     for p in rows))
    assert "spread" in res.output  # the table's column for --repeats


def test_output_paths_are_checked_before_any_work(tiny_zoo, tmp_path, prompt_file):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    for flag, path, needle in [("--json", str(tmp_path), "is a folder"), ("--json", str(blocker / "r.json"), "is a file"),
                               ("--plot", str(blocker / "p.png"), "is a file"), ("--plot", str(tmp_path / "p.jpg"), ".png")]:
        res = runner.invoke(app, ["bench", "--target", "tiny-target", "--prompts", str(prompt_file), flag, path])
        assert res.exit_code == 1 and needle in res.stderr and "Traceback" not in res.output, (flag, path, res.output)
    assert tiny_zoo == [], "paths are checked before any model is loaded"


def test_bench_errors_are_one_line(tiny_zoo, tmp_path, prompt_file):
    for extra, needle in [(["--setup", "x=nope"], "unknown drafter 'nope'"), (["--setup", "plain=prompt-lookup"], "reserved"),
                          (["--setup", "x=draft-model"], "--draft"), (["--setup", "x=prompt-lookup:c:0"], "K must be"),
                          (["--repeats", "3", "--by-setup"], "only with --interleave")]:
        res, out = bench(tmp_path, prompt_file, *extra)
        assert res.exit_code == 1 and "Traceback" not in res.output, res.output
        assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert not out.exists()
    assert tiny_zoo == [], "setups are checked before any model is loaded"


def test_write_json_atomic_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "r.json"
    write_json_atomic(p, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(p, {"a": object()})  # fails while serializing
    assert json.loads(p.read_text()) == {"a": 1}
    assert [x.name for x in tmp_path.iterdir()] == ["r.json"]


def test_run_bench_detects_differences_and_speedup():
    def fake(out, tps, drafted=None, accepted=None):
        def run(ids):
            st = {"tokens": len(out), "seconds": len(out) / tps, "tokens_per_s": tps, "drafted": drafted,
                  "accepted": accepted, "rounds": 2 if drafted else len(out), "target_calls": 3}
            return list(out), st
        return run

    res = run_bench({"fast": fake([1, 2, 9, 4], 30.0, 4, 2), "plain": fake([1, 2, 3, 4], 10.0)}, [[5], [6]])
    assert list(res) == ["plain", "fast"]  # the reference runs first
    assert res["fast"]["identical"] is False and res["fast"]["identical_prompts"] == 0
    assert res["fast"]["speedup"] == pytest.approx(3.0)
    assert res["fast"]["acceptance_rate"] == pytest.approx(0.5) and res["fast"]["mean_accepted_length"] == 2.0
    sampled = run_bench({"plain": fake([1], 1.0)}, [[5]], greedy=False)
    assert sampled["plain"]["identical"] is None


def _logged(name, log, out, tps, fail_at=None):
    """A fake backend that logs (setup, prompt) for each call and raises on prompt `fail_at`."""
    def run(ids):
        log.append((name, ids[0]))
        if ids[0] == fail_at:
            raise RuntimeError("out of memory")
        return list(out), {"tokens": len(out), "seconds": len(out) / tps, "tokens_per_s": tps, "rounds": len(out)}
    return run


@pytest.mark.parametrize("interleave", [False, True])
def test_run_bench_orders_calls_setup_by_setup_or_prompt_by_prompt(interleave):
    log = []
    setups = {"a": _logged("a", log, [1, 2], 20.0), "plain": _logged("plain", log, [1, 2], 10.0),
              "b": _logged("b", log, [1, 3], 40.0)}
    res = run_bench(setups, [[5], [6]], interleave=interleave)
    if interleave:  # warm-ups (prompt 0 again), then each prompt through every setup, the reference first
        assert log == [("plain", 5), ("a", 5), ("b", 5), ("plain", 5), ("a", 5), ("b", 5),
                       ("plain", 6), ("a", 6), ("b", 6)]
    else:
        assert log == [("plain", 5), ("plain", 5), ("plain", 6), ("a", 5), ("a", 5), ("a", 6),
                       ("b", 5), ("b", 5), ("b", 6)]
    assert list(res) == ["plain", "a", "b"]
    assert res["a"]["identical_prompts"] == 2 and res["b"]["identical_prompts"] == 0
    assert res["a"]["speedup"] == pytest.approx(2.0) and res["b"]["speedup"] == pytest.approx(4.0)
    assert [r["prompt_index"] for r in res["b"]["per_prompt"]] == [0, 1]


def test_repeats_rotate_the_order_and_keep_each_setups_median_run():
    """--repeats 3: each prompt runs 3 times through every setup, the reference first the first time, the order
    rotated by one each further time; a row is the median-time run, with every run's seconds; a setup whose output
    changed on any run is not identical."""
    log = []

    def timed(name, secs, outs=None):
        secs, outs = iter(secs), iter(outs or [])

        def run(ids):
            log.append((name, ids[0]))
            out = next(outs, [1, 2])
            t = next(secs)
            return list(out), {"tokens": 2, "seconds": t, "tokens_per_s": 2 / t, "rounds": 2}
        return run

    setups = {"plain": timed("plain", [9, 1.0, 3.0, 2.0, 4.0, 6.0, 5.0]),
              "a": timed("a", [9, 0.5, 0.7, 0.6, 0.2, 0.9, 0.4]),
              "b": timed("b", [9, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], outs=[[1, 2], [1, 2], [1, 2], [1, 2], [1, 2], [7, 7]])}
    res = run_bench(setups, [[5], [6]], interleave=True, repeats=3)
    turns = [("plain", "a", "b"), ("a", "b", "plain"), ("b", "plain", "a")]
    want = [(n, 5) for n in turns[0]] + [(n, p) for p in (5, 6) for t in turns for n in t]
    assert log == want
    assert [r["repeat_seconds"] for r in res["plain"]["per_prompt"]] == [[1.0, 3.0, 2.0], [4.0, 6.0, 5.0]]
    assert [r["seconds"] for r in res["plain"]["per_prompt"]] == [2.0, 5.0]  # the medians
    assert [r["seconds"] for r in res["a"]["per_prompt"]] == [0.6, 0.4]
    # the medians over prompts of the kept runs' tokens/s: (3.33 + 5) / 2 against (1 + 0.4) / 2
    assert res["a"]["speedup"] == pytest.approx((2 / 0.6 + 2 / 0.4) / (2 / 2.0 + 2 / 5.0))
    assert [r["identical"] for r in res["b"]["per_prompt"]] == [True, False]  # its last run of prompt 6 differed
    assert res["plain"]["repeat_spread"] == pytest.approx(statistics.median([3.0 / 1.0, 6.0 / 4.0]))
    assert res["b"]["repeat_spread"] == 1.0
    once = run_bench({"plain": timed("plain", [9, 1.0, 2.0])}, [[5], [6]])
    assert once["plain"]["repeat_spread"] is None  # one run a prompt: nothing to spread


def test_replayed_answers_are_not_runs():
    """A backend that answers a repeat from memory (llama-server's ngram-mod) marks it `replayed`: the row keeps
    its real runs only, so its seconds and spread are not three copies of one run."""
    def plain(ids):
        return [1], {"tokens": 1, "seconds": 1.0, "tokens_per_s": 1.0, "rounds": 1}

    seen = set()

    def memo(ids):
        replay = tuple(ids) in seen
        seen.add(tuple(ids))
        st = {"tokens": 1, "seconds": 2.0 + ids[0], "tokens_per_s": 1 / (2.0 + ids[0]), "rounds": 1}
        return [1], ({**st, "replayed": True} if replay else st)

    res = run_bench({"plain": plain, "m": memo}, [[5], [6]], interleave=True, repeats=3)
    rows = res["m"]["per_prompt"]
    assert [r["repeat_seconds"] for r in rows] == [[7.0], [8.0]]  # prompt 5's one real run was the warm-up's
    assert res["m"]["repeat_spread"] is None and res["plain"]["repeat_spread"] == 1.0
    assert all(r["identical"] for r in rows)


@pytest.mark.parametrize("repeats,interleave", [(0, True), (2, False), (True, True), (1.5, True)])
def test_repeats_are_checked(repeats, interleave):
    with pytest.raises(InputError, match="--repeats must be a whole number >= 1"):
        run_bench({"plain": _logged("plain", [], [1], 10.0)}, [[5]], interleave=interleave, repeats=repeats)


def test_interleaved_run_keeps_going_past_a_failing_setup():
    log, seen = [], []
    setups = {"plain": _logged("plain", log, [1], 10.0), "bad": _logged("bad", log, [1], 20.0, fail_at=6),
              "ok": _logged("ok", log, [1], 30.0)}
    res = run_bench(setups, [[5], [6], [7]], interleave=True, keep_going=True,
                    on_setup=lambda n, r: seen.append((n, bool(r.get("failed")))))
    assert res["bad"]["failed"] and "out of memory" in res["bad"]["error"]
    assert ("bad", 7) not in log and ("ok", 7) in log  # dropped after its failure, the others go on
    assert len(res["ok"]["per_prompt"]) == 3 and res["ok"]["speedup"] == pytest.approx(3.0)
    assert seen[0] == ("bad", True) and sorted(seen[1:]) == [("ok", False), ("plain", False)]
    failing_reference = {"plain": _logged("plain", [], [1], 10.0, fail_at=6), "ok": _logged("ok", [], [1], 30.0)}
    with pytest.raises(RuntimeError, match="out of memory"):  # no reference: nothing to compare with
        run_bench(failing_reference, [[5], [6]], interleave=True, keep_going=True)


def test_parse_setup():
    s = parse_setup("pl8=prompt-lookup:confidence:8")
    assert (s.name, s.drafter, s.policy, s.k) == ("pl8", "prompt-lookup", "confidence", 8)
    assert parse_setup("x=none").drafter is None
    for bad in ("x", "=prompt-lookup", "x=", "x=a:b:c:d", "x=a:b:two", "hf_generate=prompt-lookup"):
        with pytest.raises(InputError):
            parse_setup(bad)


def test_load_prompts_files(tmp_path, monkeypatch):
    (tmp_path / "p.txt").write_text("one\n\ntwo\nthree\n")
    assert [p.text for p in load_prompts(str(tmp_path / "p.txt"))] == ["one", "two", "three"]
    assert [p.text for p in load_prompts(f"{tmp_path / 'p.txt'}:2")] == ["one", "two"]
    (tmp_path / "p.jsonl").write_text('{"prompt": "a"}\n{"prompt": "b"}\n')
    assert [p.text for p in load_prompts(str(tmp_path / "p.jsonl"))] == ["a", "b"]
    (tmp_path / "bad.jsonl").write_text('{"text": "a"}\n')
    with pytest.raises(DataError, match="prompt"):
        load_prompts(str(tmp_path / "bad.jsonl"))
    with pytest.raises(DataError, match="no such file"):
        load_prompts(str(tmp_path / "missing.txt"))
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_text('{"question": "q1", "answer": "#### 1"}\n{"question": "q2"}\n')
    monkeypatch.setenv("SPECDEC_DATA", str(tmp_path))
    assert [p.text for p in load_prompts("gsm8k:5")] == ["q1", "q2"]
    monkeypatch.setenv("SPECDEC_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="--data-dir"):
        load_prompts("gsm8k:1")
    with pytest.raises(InputError):
        load_prompts("gsm8k:zero", data_dir=tmp_path)


@pytest.mark.skipif(not (SHARED / "spec_bench" / "question.jsonl").exists(), reason="shared data not present")
def test_load_prompts_shared_data():
    sb = load_prompts("spec_bench:3", data_dir=SHARED)
    first = json.loads((SHARED / "spec_bench" / "question.jsonl").read_text().splitlines()[0])
    assert len(sb) == 3 and sb[0].text == first["turns"][0] and sb[0].category == "writing"
    per = load_prompts("spec_bench:2", data_dir=SHARED, per_category=True)
    cats = {p.category for p in per}
    assert len(cats) == 13 and len(per) == 26
    gsm = load_prompts("gsm8k:2", data_dir=SHARED)
    assert gsm[0].text.startswith("Janet") and len(gsm) == 2


def test_bench_plot_command(tmp_path):
    rep = {"setups": {"plain": {"median_tokens_per_s": 10.0, "speedup": 1.0, "acceptance_rate": None,
                                "mean_accepted_length": 1.0, "identical": True, "per_prompt": [{"tokens_per_s": 10.0}]},
                      "pl": {"median_tokens_per_s": 15.0, "speedup": 1.5, "acceptance_rate": 0.5,
                             "mean_accepted_length": 2.0, "identical": True, "per_prompt": [{"tokens_per_s": 15.0}]}},
           "machine": {"cpu": "x"}, "config": {"target": "t"}}
    write_json_atomic(tmp_path / "r.json", rep)
    assert read_report(tmp_path / "r.json") == rep
    res = runner.invoke(app, ["bench-plot", str(tmp_path / "r.json"), str(tmp_path / "r.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "bad.json").write_text("{nope")
    res = runner.invoke(app, ["bench-plot", str(tmp_path / "bad.json"), str(tmp_path / "x.png")])
    assert res.exit_code == 1 and "not valid JSON" in res.stderr and not (tmp_path / "x.png").exists()


def test_auto_max_context_fits_the_longest_prompt(tokenizer):
    from specdec.bench import BenchPrompt, auto_max_context

    short, long = BenchPrompt("hi there", "x"), BenchPrompt("word " * 300, "x")
    n_long = len(tokenizer("word " * 300, add_special_tokens=True)["input_ids"])
    assert auto_max_context(tokenizer, [short], 16, chat=False) == 512  # floor
    got = auto_max_context(tokenizer, [short, long], 200, chat=False)
    assert got % 256 == 0 and n_long + 200 + 64 <= got < n_long + 200 + 64 + 256


def test_bench_sizes_the_cache_to_the_prompts_unless_told(tiny_zoo, tmp_path, prompt_file):
    res, out = bench(tmp_path, prompt_file, "--no-hf", "--setup", "pl=prompt-lookup")
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["config"]["engine"]["max_context"] == 512
    res, out = bench(tmp_path, prompt_file, "--no-hf", "--setup", "pl=prompt-lookup", "--max-context", "300")
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["config"]["engine"]["max_context"] == 300


def test_a_plain_setup_on_another_runner_is_that_runners_plain_row():
    """`NAME=plain,weights=..` only asks for the other runner's plain row: it is not timed a second time."""
    from types import SimpleNamespace

    from specdec.bench.pipeline import plan_groups
    from specdec.config import EngineConfig

    setups = [parse_setup(t, 4, "constant") for t in ("pl=prompt-lookup", "q8=plain,weights=int8",
                                                        "q8pl=prompt-lookup,weights=int8", "again=plain")]
    groups = plan_groups(SimpleNamespace(engine=EngineConfig(backend="torch"), target="tiny-target", setups=setups))
    assert [(g[0], [s.name for s in g[2]]) for g in groups] == [("plain", ["pl", "again"]),
                                                               ("plain@torch-int8", ["q8pl"])]


def test_cost_curve_is_measured_per_runner_and_reported(tiny_zoo, tmp_path, prompt_file):
    res, out = bench(tmp_path, prompt_file, "--setup", "lookup=prompt-lookup", "--cost-curve")
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    curve = rep["cost_curves"]["plain"]
    from specdec.runners.costs import CURVE_ROWS

    assert curve["rows"] == [r for r in CURVE_ROWS if r <= 64] and len(curve["ms"]) == len(curve["rows"])
    assert all(ms > 0 for ms in curve["ms"]) and curve["vs_one_row"][0] == 1.0
    assert curve["runner"] and "verification pass by rows" in res.output
    res, out = bench(tmp_path, prompt_file, "--setup", "lookup=prompt-lookup")
    assert "cost_curves" not in json.loads(out.read_text())  # only when asked


class _FakeServer:
    """A llama-server row as the pipeline sees one (prepare, call, close, info), answering a fixed output."""

    def __init__(self, log: list) -> None:
        self.log, self.info, self.closed = log, {"backend": "llamacpp-server", "peak_rss_mb": None}, False

    def prepare(self, prompts) -> None:
        self.log.append(("prepare", len(prompts)))

    def __call__(self, ids):
        self.log.append(("call", list(ids)))
        return [7] * 4, {"tokens": 4, "seconds": 0.1, "tokens_per_s": 40.0, "acceptance_rate": None,
                         "mean_accepted_length": 1.0, "target_calls": 4, "rounds": 4, "compile_s": 0.0}

    def close(self) -> None:
        self.closed = True
        self.info = {**self.info, "peak_rss_mb": 123.0}


@pytest.mark.parametrize("order", ["--interleave", "--by-setup"])
def test_llamacpp_rows_run_interleaved_with_the_engines_rows(tiny_zoo, tmp_path, prompt_file, monkeypatch, order):
    import specdec.bench.llamacpp_server as L
    import specdec.bench.pipeline as pipeline

    log, calls, fake = [], [], {}
    monkeypatch.setattr(L, "find_server", lambda path=None: Path("/bin/true"))

    def backends(plan, say):
        fake["b"] = _FakeServer(log)
        return {"llamacpp_plain": (fake["b"], fake["b"].info)}

    monkeypatch.setattr(pipeline, "_llamacpp_backends", backends)
    real = pipeline.R.run_bench

    def spy(setups, prompts, **kw):
        calls.append((list(setups), kw.get("interleave")))
        return real(setups, prompts, **kw)

    monkeypatch.setattr(pipeline.R, "run_bench", spy)
    res, out = bench(tmp_path, prompt_file, "--setup", "pl=prompt-lookup", "--llamacpp", "plain", order)
    assert res.exit_code == 0, res.output
    if order == "--interleave":  # one run, prompt by prompt: this engine's rows and the server's side by side
        assert calls == [(["plain", "pl", "llamacpp_plain"], True)]
    else:  # the server after this engine's rows, on its own
        assert calls == [(["plain", "pl"], False), (["llamacpp_plain"], None)]
    rep = json.loads(out.read_text())
    row = rep["setups"]["llamacpp_plain"]
    assert row["median_tokens_per_s"] == 40.0 and row["identical_prompts"] == 0  # compared with our plain's ids
    assert fake["b"].closed and row["peak_rss_mb"] == 123.0  # the server stopped, its description kept
    assert log[0] == ("prepare", len(PROMPTS)) and sum(1 for e in log if e[0] == "call") == len(PROMPTS) + 1


def test_external_backends_declare_what_the_pipeline_calls():
    from specdec.bench.runner import ExternalBackend
    from specdec.bench.vllm import VLLMBackend

    v = VLLMBackend("vllm_plain", request={}, info={})
    assert isinstance(v, ExternalBackend) and isinstance(_FakeServer([]), ExternalBackend)
    v.close()  # nothing started: nothing to stop, no error
    assert not isinstance(lambda ids: ([], {}), ExternalBackend)  # an engine row is a plain Backend


def test_machine_info_names_the_kernel_path(monkeypatch):
    """The report says which path of the int4/int8 kernel ran passes of how many rows; a bad SPECDEC_QKERNEL
    is written as such (it is refused where the kernel loads), not raised here."""
    from specdec.bench.report import machine_info
    from specdec.weights import kernels

    monkeypatch.setenv("SPECDEC_QKERNEL", "vnni")
    info = machine_info("float32", False)
    assert (info["qkernel"], info["amx_min_rows"], info["cpu_amx"]) == ("vnni", 0, kernels.cpu_has_amx())
    assert info["bf16_prefill"] is False
    monkeypatch.setenv("SPECDEC_QKERNEL", "auto")
    runs_amx = kernels.cpu_supported() and kernels.cpu_has_amx()
    info = machine_info("float32", False)
    assert info["amx_min_rows"] == (kernels.AMX_MIN_ROWS if runs_amx else 0)
    assert info["bf16_prefill"] == (runs_amx and kernels.cpu_has_amx_bf16())
    monkeypatch.setenv("SPECDEC_QKERNEL", "int8")
    assert machine_info("float32", False)["bf16_prefill"] is False
    monkeypatch.setenv("SPECDEC_QKERNEL", "tiles")
    assert machine_info("float32", False)["qkernel"].startswith("invalid")
