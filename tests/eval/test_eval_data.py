"""Loaders: clear errors for missing / malformed files and unknown subjects; subsets; data dir."""
import pytest

from eval import data as D
from eval.tasks import MMLU_SUBJECTS, TASKS, get_task
from specdec.errors import DataError, UnknownNameError

from evalhelpers import write_mmlu


def test_registry_lists_tasks():
    assert {"mmlu", "mmlu_cloze", "mmlu_mlm", "gsm8k", "gsm8k_cot", "gsm8k_chat"} <= set(TASKS.names())
    with pytest.raises(UnknownNameError, match="known: .*gsm8k"):
        get_task("gsm9k")
    assert get_task("mmlu", num_fewshot=5).num_fewshot == 5 and get_task("mmlu").num_fewshot == 0
    assert len(MMLU_SUBJECTS) == 57


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv(D.DATA_ENV, raising=False)
    assert D.resolve_data_dir(None) == D.REPO_ROOT.parent / "shared" / "data"
    monkeypatch.setenv(D.DATA_ENV, str(tmp_path / "env"))
    assert D.resolve_data_dir(None) == tmp_path / "env"
    assert D.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"


def test_missing_file_names_path_and_flag(tmp_path):
    with pytest.raises(DataError) as e:
        D.load_mmlu(tmp_path, "test", ["anatomy"])
    msg = str(e.value)
    assert str(tmp_path / "mmlu" / "test" / "anatomy_test.csv") in msg and "--data-dir" in msg and "SPECDEC_DATA" in msg
    with pytest.raises(DataError, match=r"gsm8k/test.jsonl.*--data-dir"):
        D.load_gsm8k(tmp_path, "test")


def test_mmlu_loads_quoted_multiline_rows(data_dir):
    got = D.load_mmlu(data_dir, "test", ["abstract_algebra", "anatomy"])
    aa = got["abstract_algebra"]
    assert [x.answer for x in aa] == [1, 0, 1, 2]
    assert aa[3].choices == ("True, True", "False, False", "True, False", "False, True")
    assert got["anatomy"][2].question == "Multi-line\nquestion here?"
    assert aa[0].id == "abstract_algebra/0"
    # the mmlu folder itself is accepted as --data-dir too
    assert D.load_mmlu(data_dir / "mmlu", "test", ["anatomy"])["anatomy"][0].question.startswith("Which bone")


@pytest.mark.parametrize("row, match", [
    (["q?", "a", "b", "c", "A"], r"anatomy_test.csv:2: malformed MMLU row: expected 6 fields"),
    (["q?", "a", "b", "c", "d", "E"], r"anatomy_test.csv:2: .*A, B, C, D, got 'E'"),
    (["", "a", "b", "c", "d", "A"], r"anatomy_test.csv:2: .*empty question"),
])
def test_malformed_mmlu_row(tmp_path, row, match):
    write_mmlu(tmp_path, {"anatomy": [["ok?", "a", "b", "c", "d", "A"], row]})
    with pytest.raises(DataError, match=match):
        D.load_mmlu(tmp_path, "test", ["anatomy"])


def test_empty_and_non_utf8_files(tmp_path):
    p = tmp_path / "mmlu" / "test"
    p.mkdir(parents=True)
    (p / "anatomy_test.csv").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="no rows"):
        D.load_mmlu(tmp_path, "test", ["anatomy"])
    (p / "anatomy_test.csv").write_bytes(b"\xff\xfe,a,b,c,d,A\n")
    with pytest.raises(DataError, match="not UTF-8"):
        D.load_mmlu(tmp_path, "test", ["anatomy"])


@pytest.mark.parametrize("line, match", [
    ("{not json", r"test.jsonl:2: malformed GSM8K line: not JSON"),
    ('{"question": "q"}', r"test.jsonl:2: .*string fields"),
    ('{"question": "q", "answer": "no final"}', r"test.jsonl:2: .*no '#### N'"),
    ('[1, 2]', r"test.jsonl:2: .*an object"),
])
def test_malformed_gsm8k_line(tmp_path, line, match):
    d = tmp_path / "gsm8k"
    d.mkdir()
    (d / "test.jsonl").write_text('{"question": "q", "answer": "#### 1"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=match):
        D.load_gsm8k(tmp_path, "test")


def test_unknown_subject_lists_valid_ones():
    with pytest.raises(UnknownNameError) as e:
        D.parse_subjects("anatomy,astronmy")
    msg = str(e.value)
    assert "'astronmy'" in msg and "did you mean 'astronomy'" in msg and "world_religions" in msg and "stem" in msg


def test_subjects_and_categories():
    assert D.parse_subjects(None) == list(MMLU_SUBJECTS)
    assert D.parse_subjects("Anatomy, mmlu_astronomy") == ["anatomy", "astronomy"]
    hum = D.parse_subjects("humanities")
    assert "philosophy" in hum and all(MMLU_SUBJECTS[s] == "humanities" for s in hum) and len(hum) == 13


def test_stratified_subset_is_seeded_and_ordered():
    by = {"a": list(range(20)), "b": list(range(3))}
    one = D.stratified(by, 5, seed=0)
    assert one == D.stratified(by, 5, seed=0)
    assert one["a"] == sorted(one["a"]) and len(one["a"]) == 5 and one["b"] == [0, 1, 2]
    assert D.stratified(by, 5, seed=1)["a"] != one["a"]
    assert D.stratified(by, None, 0) is by


def test_hf_dataset_path_gives_a_clear_error_without_datasets_or_network(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_datasets(name, *a, **k):
        if name == "datasets":
            raise ImportError("no datasets")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    with pytest.raises(DataError, match="needs the `datasets` package.*--data-dir"):
        D.load_gsm8k(None, "test", hf_dataset="openai/gsm8k:main")
