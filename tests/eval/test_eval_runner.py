"""Runs that hold up: resume after an interruption, atomic summaries, bad inputs leave nothing behind."""
import json

import pytest

from eval import runner as R
from eval.pipeline import execute
from specdec.errors import DataError, InputError, SpecDecError, UnknownNameError

from evalhelpers import byte_tokenizer


SUBJ = "abstract_algebra,anatomy,marketing"


class Boom(RuntimeError):
    pass


def fail_after(n):
    """An evaluate_hook that lets n items through, then raises (an interruption mid-run)."""
    def hook(fn):
        calls = {"n": 0}

        def wrapped(item):
            if calls["n"] >= n:
                raise Boom(f"killed after {n}")
            calls["n"] += 1
            return fn(item)
        return wrapped
    return hook


def counting(seen):
    def hook(fn):
        def wrapped(item):
            seen.append(item.id)
            return fn(item)
        return wrapped
    return hook


def strip_volatile(summary):
    s = json.loads(json.dumps(summary))
    for k in ("load_s", "wall_s_this_invocation", "plots"):
        s.pop(k, None)
    s["run"].pop("threads", None)
    if "speed" in s:  # timings differ run to run; counts must not
        for k in ("seconds", "tokens_per_s"):
            s["speed"].pop(k)
    return s


@pytest.mark.parametrize("task, kw", [
    ("mmlu", {"num_fewshot": 1, "subjects": SUBJ}),
    ("gsm8k", {"max_new_tokens": 8, "limit": 5}),
])
def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path, data_dir, decoder, task, kw):
    common = dict(data_dir=str(data_dir), decoder=decoder, plots=False, say=lambda m: None, **kw)
    full = execute(task, out=tmp_path / "full", **common)

    out = tmp_path / "resumed"
    with pytest.raises(Boom):
        execute(task, out=out, evaluate_hook=fail_after(3), **common)
    assert len(R.read_results(out / R.RESULTS)) == 3
    assert not (out / R.SUMMARY).exists() and not (out / R.SUMMARY_MD).exists()

    seen = []
    again = execute(task, out=out, evaluate_hook=counting(seen), **common)
    done_first = [json.loads(line)["id"] for line in (out / R.RESULTS).read_text().splitlines()[:3]]
    assert not set(seen) & set(done_first) and len(seen) == full["n"] - 3
    assert strip_volatile(again) == strip_volatile(full)
    assert json.loads((out / R.SUMMARY).read_text())["n"] == full["n"]
    assert (out / R.SUMMARY_MD).read_text().startswith(f"# {task}")


def test_torn_last_line_is_redone(tmp_path, data_dir, decoder):
    common = dict(data_dir=str(data_dir), decoder=decoder, plots=False, say=lambda m: None, subjects=SUBJ)
    out = tmp_path / "run"
    with pytest.raises(Boom):
        execute("mmlu", out=out, evaluate_hook=fail_after(2), **common)
    with open(out / R.RESULTS, "a") as f:
        f.write('{"id": "anatomy/0", "subj')  # a crash in the middle of a write
    seen = []
    s = execute("mmlu", out=out, evaluate_hook=counting(seen), **common)
    assert s["n"] == 9 and len(seen) == 7
    lines = (out / R.RESULTS).read_text().splitlines()
    assert len(lines) == 9 and all(json.loads(x) for x in lines)


def test_a_different_run_in_the_same_folder_is_refused(tmp_path, data_dir, decoder):
    common = dict(data_dir=str(data_dir), decoder=decoder, plots=False, say=lambda m: None)
    execute("mmlu", out=tmp_path / "r", subjects="anatomy", **common)
    with pytest.raises(InputError, match="holds a different run.*--overwrite"):
        execute("mmlu", out=tmp_path / "r", subjects="marketing", **common)
    s = execute("mmlu", out=tmp_path / "r", subjects="marketing", overwrite=True, **common)
    assert list(s["subjects"]) == ["marketing"]


@pytest.mark.parametrize("task, kw, err, match", [
    ("mmlu", {"subjects": "anatomy,astrology"}, UnknownNameError, "unknown MMLU subject 'astrology'.*valid subjects"),
    ("mmlu", {"data_dir": "MISSING"}, DataError, "mmlu/test/abstract_algebra_test.csv is missing.*--data-dir"),
    ("gsm8k", {"data_dir": "MISSING"}, DataError, "gsm8k/test.jsonl is missing.*--data-dir"),
    ("mmlu", {"subjects": "anatomy,world_religions"}, DataError, "world_religions_test.csv is missing"),
    ("mmlu", {"num_fewshot": 6}, InputError, "out of 0..5"),
    ("gsm8k", {"subjects": "anatomy"}, InputError, "for MMLU tasks"),
    ("mmlu", {"drafter": "prompt-lookup", "subjects": SUBJ}, InputError, "no drafter"),
    ("gsm8k", {"max_new_tokens": 0}, InputError, "--max-new-tokens must be >= 1"),
    ("gsm8k", {"k": 0, "drafter": "prompt-lookup"}, InputError, "must be >= 1, got 0"),
    ("gsm8k", {"policy": "nope", "drafter": "prompt-lookup"}, UnknownNameError, "nope"),
    ("gsm8k", {"drafter": "prompt-lookup", "drafter_options": {"bogus": 1}}, InputError, "has no option bogus"),
    ("gsm8k", {"num_fewshot": -1}, InputError, "--num-fewshot must be >= 0"),
])
def test_bad_inputs_leave_no_output(tmp_path, data_dir, decoder, task, kw, err, match):
    kw = dict(kw)
    if kw.get("data_dir") == "MISSING":
        kw["data_dir"] = str(tmp_path / "nowhere")
    kw.setdefault("data_dir", str(data_dir))
    out = tmp_path / "out"
    with pytest.raises(err, match=match):
        execute(task, out=out, decoder=decoder, plots=False, say=lambda m: None, **kw)
    assert not out.exists()


@pytest.mark.parametrize("kw, err, match", [
    ({"drafter": "suffixdecoding", "drafter_options": {"x": 1}}, InputError, "takes no --drafter-opt"),
    ({"drafter": "hybrid"}, InputError, "no vLLM counterpart"),
    ({"drafter": "suffixdecoding", "vllm_venv": "NONE"}, SpecDecError, "bash eval/setup_vllm.sh"),
])
def test_vllm_setups_are_checked_before_data_or_models(tmp_path, data_dir, kw, err, match):
    kw = dict(kw)
    if kw.get("vllm_venv") == "NONE":
        kw["vllm_venv"] = str(tmp_path / "no-venv")
    out = tmp_path / "out"
    with pytest.raises(err, match=match):
        execute("gsm8k", backend="vllm", out=out, data_dir=str(tmp_path / "nowhere"), plots=False,
                say=lambda m: None, **kw)
    assert not out.exists()


def test_out_under_a_file_is_one_clear_error(tmp_path, data_dir, decoder):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match=r"--out .*/f/run: .*/f is a file, not a folder"):
        execute("gsm8k", out=tmp_path / "f" / "run", data_dir=str(data_dir), decoder=decoder, say=lambda m: None)


def test_malformed_file_leaves_no_output(tmp_path, data_dir, decoder):
    (data_dir / "gsm8k" / "test.jsonl").write_text('{"question": "q", "answer": "#### 1"}\n{"question": 3}\n')
    with pytest.raises(DataError, match=r"test.jsonl:2"):
        execute("gsm8k", out=tmp_path / "o", data_dir=str(data_dir), decoder=decoder, say=lambda m: None)
    assert not (tmp_path / "o").exists()


def test_chat_task_without_template_fails_before_writing(tmp_path, data_dir, bmodel):
    from specdec.api import SpecDecoder
    from specdec.config import EngineConfig

    dec = SpecDecoder(bmodel, byte_tokenizer(chat=False), engine=EngineConfig(dtype="float32"))
    with pytest.raises(InputError, match="no chat template"):
        execute("gsm8k_chat", out=tmp_path / "o", data_dir=str(data_dir), decoder=dec, model="tiny", say=lambda m: None)
    assert not (tmp_path / "o").exists()


def test_summary_is_never_half_written(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    R.atomic_write_json(path, {"ok": 1})

    class Unserialisable:
        def __str__(self):
            raise Boom("fails mid-write")

    with pytest.raises(Boom):
        R.atomic_write_json(path, {"ok": 2, "bad": Unserialisable()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary left behind


def test_gsm8k_chat_run_with_plots_and_report(tmp_path, data_dir, decoder):
    from typer.testing import CliRunner

    from eval.cli import eval_app

    s = execute("gsm8k_chat", out=tmp_path / "c", data_dir=str(data_dir), decoder=decoder, model="tiny", limit=2,
                max_new_tokens=6, compare_plain=True, drafter="prompt-lookup", say=lambda m: None)
    assert s["n"] == 2 and s["primary"] == "auto" and s["plain"]["identical_outputs"] == 2
    assert (tmp_path / "c" / "plots" / "speed.png").stat().st_size > 1000
    m = execute("mmlu", out=tmp_path / "m", data_dir=str(data_dir), decoder=decoder, say=lambda m: None, subjects=SUBJ)
    assert (tmp_path / "m" / "plots" / "accuracy_per_subject.png").stat().st_size > 1000
    res = CliRunner().invoke(eval_app, ["report", str(tmp_path / "c"), str(tmp_path / "m"), "--out", str(tmp_path / "cmp")])
    assert res.exit_code == 0, res.output
    assert "gsm8k_chat" in res.output and (tmp_path / "cmp" / "speed.png").exists()
    res = CliRunner().invoke(eval_app, ["report", str(tmp_path / "m")])
    assert res.exit_code == 0 and "| **all** | 9 |" in res.output
    assert m["n"] == 9
    res = CliRunner().invoke(eval_app, ["run", "mmlu", "--out", str(tmp_path / "x"), "--subjects", "nope"])
    assert res.exit_code == 1 and "unknown MMLU subject 'nope'" in res.output and not (tmp_path / "x").exists()


def test_eval_app_mounts_under_a_parent_cli():
    import typer
    from typer.testing import CliRunner

    from eval.cli import eval_app

    parent = typer.Typer()
    parent.add_typer(eval_app, name="eval")

    @parent.command()
    def other():  # a second command so "eval" stays a sub-command
        pass

    res = CliRunner().invoke(parent, ["eval", "tasks"])
    assert res.exit_code == 0 and "gsm8k_chat" in res.output and "mmlu_cloze" in res.output


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    """The tiny model saved as a Hugging Face folder, with and without a chat template."""
    from evalhelpers import tiny_model

    out = {}
    for name, chat in (("chat", True), ("nochat", False)):
        d = tmp_path_factory.mktemp(f"tiny-{name}")
        tok = byte_tokenizer(chat=chat)
        tiny_model(len(tok)).save_pretrained(d)
        tok.save_pretrained(d)
        out[name] = d
    return out


def test_real_loading_path_with_a_model_folder(tmp_path, data_dir, tiny_folders):
    s = execute("gsm8k_chat", model=str(tiny_folders["chat"]), out=tmp_path / "o", data_dir=str(data_dir), limit=2,
                max_new_tokens=5, dtype="float32", threads=1, plots=False, say=lambda m: None)
    assert s["n"] == 2 and s["max_context"] >= 512 and s["max_context"] % 256 == 0
    m = execute("mmlu", model=str(tiny_folders["chat"]), out=tmp_path / "m", data_dir=str(data_dir), subjects=SUBJ,
                dtype="float32", threads=1, plots=False, say=lambda m: None)
    assert m["n"] == 9 and m["truncated"] == 0


def test_model_without_chat_template_fails_before_writing(tmp_path, data_dir, tiny_folders):
    with pytest.raises(InputError, match="has no chat template; use gsm8k"):
        execute("gsm8k_chat", model=str(tiny_folders["nochat"]), out=tmp_path / "o", data_dir=str(data_dir),
                limit=2, dtype="float32", say=lambda m: None)
    assert not (tmp_path / "o").exists()


def test_exact_len_reaches_the_engine_and_is_refused_where_it_cannot_apply(tmp_path, data_dir, decoder, monkeypatch):
    import specdec.api
    import specdec.zoo.load

    seen = {}

    def fake_open(run):
        seen["engine"] = run.engine
        return decoder

    monkeypatch.setattr(specdec.api, "open_run", fake_open)  # eval checks the run once, then opens it unchecked
    monkeypatch.setattr(specdec.zoo.load, "check_model_name", lambda *a: None)
    s = execute("gsm8k_chat", out=tmp_path / "c", data_dir=str(data_dir), model="tiny", limit=1, max_new_tokens=4,
                max_context=256, exact_len=5, drafter="prompt-lookup", say=lambda m: None)
    assert seen["engine"].exact_query_len == 5 and s["n"] == 1
    assert json.loads((tmp_path / "c" / "run.json").read_text())["exact_len"] == 5
    with pytest.raises(InputError, match="--exact-len is for generation tasks"):
        execute("mmlu", out=tmp_path / "m", data_dir=str(data_dir), decoder=decoder, exact_len=5, say=lambda m: None)
    assert not (tmp_path / "m").exists()


def test_a_second_run_on_one_folder_is_refused_while_the_first_holds_it(tmp_path):
    first = R.Run(tmp_path / "o", {"task": "gsm8k"})
    assert first.prepare() == []
    second = R.Run(tmp_path / "o", {"task": "gsm8k"})
    with pytest.raises(InputError, match=r"another run is writing to .*pid \d+"):
        second.prepare()
    first.execute(["a", "b"], lambda x: {"id": x, "ok": True}, item_id=lambda x: x)
    first.release()
    assert second.prepare() != []  # once released, the same run resumes: nothing was duplicated
    ids = [r["id"] for r in R.read_results(tmp_path / "o" / R.RESULTS)]
    assert ids == ["a", "b"]


def test_cli_options_are_parsed_like_every_other_command(tmp_path, monkeypatch):
    """`eval run --drafter-opt adapt=false` used to arrive as the string 'false' (truthy): one KEY=VALUE parser now."""
    from typer.testing import CliRunner

    import eval.cli as C

    seen = {}

    def fake_execute(task, run=None, **kw):
        kw["run"] = run
        seen.update(kw)
        raise InputError("stop here")

    monkeypatch.setattr(C, "execute", fake_execute)
    res = CliRunner().invoke(C.eval_app, ["run", "gsm8k", "--out", str(tmp_path / "o"), "--drafter", "aded",
                                          "--drafter-opt", "adapt=false", "--drafter-opt", "max-ngram=4",
                                          "--policy-opt", "threshold=0.5"])
    assert res.exit_code == 1 and "stop here" in res.output
    assert seen["run"].spec.drafter_options == {"adapt": False, "max_ngram": 4}
    assert seen["run"].spec.policy_options == {"threshold": 0.5}
