"""eval.references: a finished GSM8K run folder as replay references (prompt ids, output ids)."""
from __future__ import annotations

import json

import pytest

from evalhelpers import byte_tokenizer
from eval.data import load_gsm8k
from eval.gsm8k import GSM8KPrompter, prompt_sha256
from eval.references import run_references
from eval.tasks import get_task
from specdec.errors import DataError


def write_run(folder, data_dir, texts, task="gsm8k_chat", tamper=False):
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"task": task, "data": str(data_dir), "split": "test"}))
    items = load_gsm8k(data_dir, "test")
    prompter = GSM8KPrompter(get_task(task))
    rows = [{"id": it.id, "text": t, "prompt_sha256": "0" * 64 if tamper else prompt_sha256(prompter.prompt(it))}
            for it, t in zip(items, texts)]
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return items


def test_prompts_rebuilt_from_the_runs_task_and_outputs_tokenized(tmp_path, data_dir):
    tok = byte_tokenizer(chat=True)
    items = write_run(tmp_path / "run", data_dir, ["First answer 4.", "Second: 7"])
    prompts, refs = run_references(tmp_path / "run", tok)
    assert len(prompts) == len(refs) == 2
    assert refs[1] == tok("Second: 7", add_special_tokens=False)["input_ids"]
    assert items[0].question in tok.decode(prompts[0])  # the chat turn holds the question
    assert run_references(tmp_path / "run", tok, limit=1)[1] == refs[:1]


def test_a_run_that_does_not_match_its_data_or_is_not_gsm8k_is_one_line(tmp_path, data_dir):
    tok = byte_tokenizer(chat=True)
    write_run(tmp_path / "bad", data_dir, ["x"], tamper=True)
    with pytest.raises(DataError, match="prompt differs"):
        run_references(tmp_path / "bad", tok)
    with pytest.raises(DataError, match="not a finished"):
        run_references(tmp_path / "none", tok)
    (tmp_path / "mmlu").mkdir()
    (tmp_path / "mmlu" / "run.json").write_text(json.dumps({"task": "mmlu"}))
    (tmp_path / "mmlu" / "results.jsonl").write_text("")
    with pytest.raises(DataError, match="not a zero-shot GSM8K"):
        run_references(tmp_path / "mmlu", tok)
