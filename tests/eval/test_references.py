"""eval.references: a finished GSM8K run folder as replay references (prompt ids, output ids)."""
from __future__ import annotations

import json

import pytest

from evalhelpers import byte_tokenizer
from eval.data import load_gsm8k
from eval.gsm8k import GSM8KPrompter, prompt_sha256
from eval.references import bench_references, run_references
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


def write_bench(path, data_dir, tok, outputs, temperature=0.0, tokens=None):
    (data_dir / "spec_bench").mkdir(parents=True, exist_ok=True)
    qs = [{"question_id": i, "category": c, "turns": [f"Question {i} about {c}?"]}
          for i, c in enumerate(["coding", "coding", "writing"])]
    (data_dir / "spec_bench" / "question.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))
    from specdec.prompt import encode_prompt
    counts = tokens or [len(encode_prompt(tok, q["turns"][0], True)) for q in qs[::2]]
    cfg = {"prompts": "spec_bench:1", "per_category": True, "chat": True, "data_dir": str(data_dir),
           "prompt_tokens": counts, "sampling": {"temperature": temperature}}
    per = [{"prompt_index": i, "output_ids": o} for i, o in enumerate(outputs)]
    path.write_text(json.dumps({"config": cfg, "setups": {"plain": {"per_prompt": per}}}))


def test_bench_references_rebuild_the_bench_prompts_with_their_categories(tmp_path, data_dir):
    tok = byte_tokenizer(chat=True)
    write_bench(tmp_path / "b.json", data_dir, tok, [[5, 6, 7], [8]])
    prompts, refs, cats = bench_references(tmp_path / "b.json", tok)
    assert cats == ["coding", "writing"]  # one per category: question 1 (coding) is skipped
    assert refs == [[5, 6, 7], [8]]
    assert "Question 2 about writing?" in tok.decode(prompts[1])


def test_bench_references_refuse_other_prompts_sampled_runs_and_missing_setups(tmp_path, data_dir):
    tok = byte_tokenizer(chat=True)
    write_bench(tmp_path / "b.json", data_dir, tok, [[5], [8]], tokens=[3, 3])
    with pytest.raises(DataError, match="tokens here"):
        bench_references(tmp_path / "b.json", tok)
    with pytest.raises(DataError, match="no per-prompt outputs for setup 'aded'"):
        bench_references(tmp_path / "b.json", tok, setup="aded")
    write_bench(tmp_path / "s.json", data_dir, tok, [[5], [8]], temperature=0.7)
    with pytest.raises(DataError, match="sampled"):
        bench_references(tmp_path / "s.json", tok)
    (tmp_path / "x.json").write_text("[]")
    with pytest.raises(DataError, match="not a `specdec bench --json` file"):
        bench_references(tmp_path / "x.json", tok)
