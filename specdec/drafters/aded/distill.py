"""A self-distilled corpus for the tri-gram store: greedy answers of a model (ideally the target, or a
smaller model of the same family and tokenizer) to training prompts.

Two ways to answer: `generate_answers` (transformers' batched `generate`, bf16: fine for the 0.5B) and
`engine_answers` (this engine, one prompt at a time, int4 weights from the GGUF's codes, drafted losslessly: the
target's own greedy answers as it runs here). Why both: on a 2-core AVX2 EPYC transformers' batched bf16 1.5B ran
under 10 tokens/s at batch 16 and its int4 model 15, where the engine answered ~17 tokens/s one prompt at a time
(docs/aded.md, "The target's own answers as the store").

Why: ADED approximates the *target's* next-token distribution. Human-written corpora (GSM8K solutions)
differ in style from an instruction model's answers ("To determine ..., we need to follow these steps:"),
so their tri-grams are accepted less often; the ADED paper's stores come from LLM-written chat data.
Prompts must not come from the benchmark being measured (e.g. GSM8K *train*, never test).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch
from specdec.prompt import encode_prompt


DATA_SOURCES = ("gsm8k", "broad")  # the --prompts names read from the datasets folder


def prompts_from(source: str, data: Path, limit: int) -> list[str]:
    """`gsm8k` (train questions), `broad` (a mix of training prompts of many kinds, `prompts.broad_prompts`), or
    a file: .jsonl (field question / prompt / instruction / first of turns) or text (one prompt per line)."""
    from specdec.errors import DataError
    from specdec.jsonl import read_jsonl
    from specdec.validate import read_utf8

    if source in DATA_SOURCES:
        from specdec.drafters.aded.prompts import broad_prompts, gsm8k_train_questions

        return (gsm8k_train_questions(data) if source == "gsm8k" else broad_prompts(data))[:limit]
    path = Path(source).expanduser()
    if not path.is_file():
        raise DataError(f"--prompts {source!r}: not gsm8k or broad, and no such file")
    if path.suffix != ".jsonl":
        return [line.strip() for line in read_utf8(path).splitlines() if line.strip()][:limit]
    rows = []
    for _, rec in read_jsonl(path):
        if not isinstance(rec, dict):
            continue
        text = next((rec[k] for k in ("question", "prompt", "instruction") if isinstance(rec.get(k), str)), None)
        text = text or (rec.get("turns") or [None])[0]
        if text:
            rows.append(text)
    return rows[:limit]


def resume(path: Path, prompts: Sequence[str]) -> int:
    """How many of `prompts` a partial corpus at `path` already answers (its rows must be their first prompts,
    in order); 0 when there is no file. A file from other prompts is a DataError, never overwritten."""
    from specdec.errors import DataError
    from specdec.jsonl import read_jsonl

    if not path.is_file():
        return 0
    done = [rec.get("prompt") if isinstance(rec, dict) else None for _, rec in read_jsonl(path)]
    if len(done) > len(prompts) or done != list(prompts[: len(done)]):
        raise DataError(f"--out {path}: holds answers to other prompts than these; remove it or pick another --out")
    return len(done)


def engine_answers(decoder, prompts: Sequence[str], max_new_tokens: int = 256,
                   progress: Callable[[int, int], None] | None = None) -> Iterator[dict]:
    """Greedy chat answers through a SpecDecoder (`specdec.api.load`), one prompt at a time, with its drafter
    (lossless: the target's own greedy text); yields {"prompt", "answer", "seconds"} per prompt."""
    for i, p in enumerate(prompts):
        t0 = time.perf_counter()
        res = decoder.generate(p, chat=True, max_new_tokens=max_new_tokens)
        yield {"prompt": p, "answer": res.text, "seconds": time.perf_counter() - t0}
        if progress:
            progress(i + 1, len(prompts))


@torch.no_grad()
def generate_answers(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 256, batch: int = 16,
                     progress: Callable[[int, int], None] | None = None) -> Iterator[dict]:
    """Greedy chat answers, batched (left padding); yields {"prompt", "answer", "seconds"} per prompt."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    done = 0
    for i in range(0, len(prompts), batch):
        part = list(prompts[i: i + batch])
        rows = [encode_prompt(tokenizer, p, chat=True) for p in part]
        enc = tokenizer.pad({"input_ids": rows}, return_tensors="pt")  # (b, T) each, left padded
        t0 = time.perf_counter()
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)  # (b, T + new)
        dt = (time.perf_counter() - t0) / len(part)
        for p, row in zip(part, out[:, enc["input_ids"].shape[1]:]):  # row: (new,)
            yield {"prompt": p, "answer": tokenizer.decode(row, skip_special_tokens=True), "seconds": dt}
        done += len(part)
        if progress:
            progress(done, len(prompts))
