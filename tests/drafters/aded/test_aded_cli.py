"""`specdec aded build / replay` on toy inputs (no real model)."""
from __future__ import annotations

import json

from spec_helpers import make_tokenizer
from typer.testing import CliRunner

from specdec.cli.aded import aded_app, iter_texts
from specdec.drafters.aded.store import TrigramStore, tokenizer_fingerprint


def _tokenizer_folder(tmp_path):
    tok = make_tokenizer()
    folder = tmp_path / "toy-model"
    tok.save_pretrained(folder)
    (folder / "config.json").write_text("{}")  # a model folder, as the zoo resolver expects
    return tok, folder


def test_build_from_files(tmp_path):
    tok, folder = _tokenizer_folder(tmp_path)
    (tmp_path / "a.txt").write_text("w1 w2 w3 w1 w2 w3 w1 w2 w4")
    (tmp_path / "b.jsonl").write_text(json.dumps({"prompt": "w5 w6", "answer": "w7 w8 w9"}) + "\n\n")
    out = tmp_path / "store.safetensors"
    res = CliRunner().invoke(aded_app, ["build", "--from", str(tmp_path / "a.txt"), "--from", str(tmp_path / "b.jsonl"),
                                        "--tokenizer", str(folder), "--out", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["corpus_tokens"] == 9 + 5 and report["file_bytes"] > 0
    store = TrigramStore.load(out, tokenizer=tok)
    ids = tok("w1 w2 w3 w4", add_special_tokens=False)["input_ids"]
    succ, w = store.successors(ids[0], ids[1])
    assert succ == [ids[2], ids[3]] and abs(w[0] - 2 / 3) < 1e-6
    assert store.meta["tokenizer_fingerprint"] == tokenizer_fingerprint(tok)


def test_build_errors_are_one_line(tmp_path):
    _, folder = _tokenizer_folder(tmp_path)
    res = CliRunner().invoke(aded_app, ["build", "--from", str(tmp_path / "missing.txt"), "--tokenizer", str(folder),
                                        "--out", str(tmp_path / "s.safetensors")])
    assert res.exit_code == 1 and "not a file, folder or dataset" in res.output and "Traceback" not in res.output


def test_datasets_are_read(tmp_path):
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "train.jsonl").write_text(json.dumps({"question": "Q?", "answer": "2+2=<<2+2=4>>4\n#### 4"}) + "\n")
    (tmp_path / "spec_bench").mkdir()
    (tmp_path / "spec_bench" / "question.jsonl").write_text(json.dumps({"turns": ["t1", "t2"]}) + "\n")
    assert list(iter_texts("gsm8k", tmp_path)) == ["Q?\n2+2=4\nThe answer is 4"]
    assert list(iter_texts("spec_bench", tmp_path)) == ["t1", "t2"]


def test_replay_command(tmp_path):
    report = {"dataset": "toy", "replay_data": {"prompts": [[1, 2, 3, 1, 2]], "references": [[3, 1, 2, 3, 1, 2, 3]]}}
    (tmp_path / "r.json").write_text(json.dumps(report))
    res = CliRunner().invoke(aded_app, ["replay", "--references", str(tmp_path / "r.json"), "--budget", "3:3",
                                        "--out", str(tmp_path / "o.json")])
    assert res.exit_code == 0, res.output
    rows = json.loads((tmp_path / "o.json").read_text())["rows"]
    assert {r["variant"] for r in rows} == {"tree", "chain", "no-adapt", "persist"}
    tree = next(r for r in rows if r["variant"] == "tree")
    assert tree["accepted_per_round"] > 0  # the repeated pattern is learned from the prompt
    assert next(r for r in rows if r["variant"] == "no-adapt")["accepted_per_round"] == 0  # empty store, no learning


def test_replay_suffix_variant_and_unknown_variant(tmp_path):
    report = {"dataset": "toy", "replay_data": {"prompts": [[1, 2, 3, 1, 2]], "references": [[3, 1, 2, 3, 1, 2, 3]]}}
    (tmp_path / "r.json").write_text(json.dumps(report))
    base = ["replay", "--references", str(tmp_path / "r.json"), "--budget", "3:3", "--out", str(tmp_path / "o.json")]
    res = CliRunner().invoke(aded_app, base + ["--variants", "no-adapt,suffix"])
    assert res.exit_code == 0, res.output
    rows = {r["variant"]: r for r in json.loads((tmp_path / "o.json").read_text())["rows"]}
    assert rows["no-adapt"]["accepted_per_round"] == 0 and rows["suffix"]["accepted_per_round"] > 0
    # without adaptation the empty store drafts nothing; the prompt's own repeats still give suffix matches
    from specdec.drafters.aded.store import TrigramStore
    from specdec.drafters.aded.tune import TRIGRAM_TREE, replay

    alone = replay(TrigramStore.empty(8), TRIGRAM_TREE.with_options(adapt=False, suffix=True, suffix_min_match=2),
                   report["replay_data"]["prompts"], report["replay_data"]["references"], 3, 3)
    assert alone["accepted_per_round"] > 0
    res = CliRunner().invoke(aded_app, base + ["--variants", "tree,nope"])
    assert res.exit_code != 0 and "unknown nope" in res.output and "Traceback" not in res.output
