"""The measurements behind docs/mlm.md, reproducible with one command each:

    python -m mlm_generate.experiments sst2 --out docs/results/mlm/sst2.json
    python -m mlm_generate.experiments maskpredict --out docs/results/mlm/maskpredict.json
    python -m mlm_generate.experiments mmlu --subjects astronomy,marketing --out docs/results/mlm/mmlu_smoke.json
    python -m mlm_generate.experiments drafter --out docs/results/mlm/drafter.json

All run on one CPU thread by default (`--threads`).
"""
from __future__ import annotations

import csv
import json
import platform
import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import torch
import typer

from specdec.datadir import resolve_data_dir
from specdec.validate import set_threads

app = typer.Typer(add_completion=False, no_args_is_help=True)
DATA = resolve_data_dir()


def _env(threads: int) -> dict:
    import transformers  # noqa: PLC0415

    return {"torch": torch.__version__, "transformers": transformers.__version__, "threads": threads,
            "cpu": platform.processor() or platform.machine(), "python": platform.python_version()}


def _write(out: Optional[Path], obj: dict) -> None:
    text = json.dumps(obj, indent=2)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    typer.echo(text)


def _mean_std(xs: list[float]) -> dict:
    return {"mean": statistics.fmean(xs), "std": statistics.stdev(xs) if len(xs) > 1 else 0.0, "n": len(xs),
            "values": xs}


@app.command()
def sst2(data: Path = typer.Option(DATA / "sst2"), model: str = "bert-tiny-splade",
         seeds: str = "0,1,2", heads: str = "mlm,cls", epochs: float = 2.0, batch_size: int = 32,
         lr: float = 1e-4, warmup: float = 0.1, dummy_mlm: bool = False, threads: int = 1,
         runs_dir: Optional[Path] = None, out: Optional[Path] = None):
    """Fine-tune through the MLM head and through a classification head, same budget and seeds."""
    from mlm_generate.classifier import MLMClassifier  # noqa: PLC0415
    from mlm_generate.finetune import FinetuneConfig, finetune, load_tsv  # noqa: PLC0415
    from mlm_generate.models import load_mlm  # noqa: PLC0415
    from mlm_generate.templates import SENTIMENT, Verbalizer  # noqa: PLC0415

    set_threads(threads)
    train, dev, test = (load_tsv(data / f"{s}.tsv") for s in ("train", "dev", "test"))
    mlm = load_mlm(model)
    labels = ["negative", "positive"]
    t0 = time.perf_counter()
    clf = MLMClassifier(mlm, SENTIMENT, batch_size=64)
    zs = clf.predict_proba([e.text for e in test], Verbalizer.of({"negative": ["negative"], "positive": ["positive"]}))
    zero_shot = float((zs.argmax(1) == torch.tensor([e.label for e in test])).float().mean())
    runs = []
    for head in heads.split(","):
        for seed in (int(s) for s in seeds.split(",")):
            cfg = FinetuneConfig(head=head, epochs=epochs, batch_size=batch_size, lr=lr, warmup_ratio=warmup,
                                 seed=seed, dummy_mlm=dummy_mlm and head == "mlm")
            rd = runs_dir / f"{head}-seed{seed}" if runs_dir else None
            res = finetune(mlm, train, labels, cfg, rd, eval_sets={"dev": dev, "test": test}, progress=False,
                           export=False)
            runs.append({"head": head, "seed": seed, "steps": res.steps, "seconds": res.seconds,
                         "final_loss": res.losses[-1][1], **res.metrics})
            typer.echo(json.dumps(runs[-1]), err=True)
    summary = {h: {"test_accuracy": _mean_std([r["test_accuracy"] for r in runs if r["head"] == h]),
                   "dev_accuracy": _mean_std([r["dev_accuracy"] for r in runs if r["head"] == h])}
               for h in heads.split(",")}
    _write(out, {"experiment": "sst2 MLM head vs classification head", "model": model,
                 "data": {"train": len(train), "dev": len(dev), "test": len(test), "path": str(data)},
                 "config": asdict(FinetuneConfig(epochs=epochs, batch_size=batch_size, lr=lr, warmup_ratio=warmup,
                                                 dummy_mlm=dummy_mlm)),
                 "template": asdict(SENTIMENT), "zero_shot_test_accuracy": zero_shot, "summary": summary,
                 "runs": runs, "seconds": time.perf_counter() - t0, "env": _env(threads)})


@app.command()
def maskpredict(data: Path = typer.Option(DATA / "sst2" / "test.tsv"), model: str = "bert-tiny-splade",
                n: int = 200, mask_ratio: float = 0.15, iterations: str = "1,2,4,8,10", gen_prompts: int = 30,
                gen_lengths: str = "8,12,16", seed: int = 0, threads: int = 1, out: Optional[Path] = None):
    """Round-trip infill accuracy (15% of each SST-2 test sentence masked) and generation speed vs T."""
    from mlm_generate.finetune import load_tsv  # noqa: PLC0415
    from mlm_generate.models import load_mlm  # noqa: PLC0415
    from mlm_generate.nar import GenerationConfig, generate, iterative_fill  # noqa: PLC0415

    set_threads(threads)
    mlm = load_mlm(model)
    tok = mlm.tokenizer
    sents = [e.text for e in load_tsv(data)][:n]
    g = torch.Generator().manual_seed(seed)
    special = torch.tensor(mlm.special_ids())
    batches = []
    for s in sents:
        ids = torch.tensor([tok(s, truncation=True, max_length=mlm.max_length)["input_ids"]])
        cand = (~torch.isin(ids, special)).nonzero()[:, 1]
        k = max(1, round(mask_ratio * len(cand)))
        pick = cand[torch.randperm(len(cand), generator=g)[:k]]
        fill = torch.zeros_like(ids, dtype=torch.bool)
        fill[0, pick] = True
        batches.append((ids, fill))
    Ts = [int(t) for t in iterations.split(",")]
    hits = {1: 0, 10: 0, 100: 0}
    n_tok = 0
    with torch.no_grad():  # how far from the argmax is the true token? (one all-mask pass)
        for ids, fill in batches:
            masked = ids.masked_fill(fill, mlm.mask_id)
            logits = mlm.logits_at(masked, torch.ones_like(ids), fill)
            logits[:, special] = float("-inf")
            rank = (logits > logits.gather(1, ids[fill][:, None])).sum(1)
            for kk in hits:
                hits[kk] += int((rank < kk).sum())
            n_tok += int(fill.sum())
    infill_topk = {f"top{kk}": v / n_tok for kk, v in hits.items()}
    infill = []
    for T in Ts:
        correct = total = passes = 0
        t0 = time.perf_counter()
        for ids, fill in batches:
            outp, _, p = iterative_fill(mlm, ids, torch.ones_like(ids), fill, T)
            correct += int((outp[fill] == ids[fill]).sum())
            total += int(fill.sum())
            passes += p
        dt = time.perf_counter() - t0
        infill.append({"T": T, "accuracy": correct / total, "masked_tokens": total, "forward_passes": passes,
                       "seconds": dt, "tokens_per_second": total / dt})
        typer.echo(json.dumps(infill[-1]), err=True)
    lens = tuple(int(x) for x in gen_lengths.split(","))
    prompts = [" ".join(s.split()[:5]) for s in sents[:gen_prompts]]
    gen = []
    for method, Tvals in (("mask-predict", Ts), ("block", [1, 2, 4])):
        for T in Tvals:
            cfg = (GenerationConfig(lengths=lens, iterations=T) if method == "mask-predict"
                   else GenerationConfig(method="block", lengths=lens, block_size=4, steps_per_block=T))
            t0 = time.perf_counter()
            toks = lp = passes = 0
            distinct = []
            samples = []
            for p in prompts:
                r = generate(mlm, p, cfg)
                toks += r.length
                lp += r.avg_logprob
                passes += r.forward_passes
                distinct.append(len(set(r.tokens)) / max(1, r.length))
                if len(samples) < 3:
                    samples.append({"prompt": p, "text": r.text})
            dt = time.perf_counter() - t0
            gen.append({"method": method, "T" if method == "mask-predict" else "steps_per_block": T,
                        "tokens_per_second": toks / dt, "mean_token_logprob": lp / len(prompts),
                        "distinct_token_ratio": statistics.fmean(distinct),
                        "forward_passes_per_prompt": passes / len(prompts), "samples": samples})
            typer.echo(json.dumps({k: v for k, v in gen[-1].items() if k != "samples"}), err=True)
    _write(out, {"experiment": "mask-predict quality and speed", "model": model, "n_sentences": len(sents),
                 "mask_ratio": mask_ratio, "infill": infill,
                 "infill_one_pass_topk_accuracy": infill_topk,
                 "generation": {"prompts": len(prompts), "length_candidates": lens,
                                "note": "tokens/s counts the chosen candidate's tokens; all length candidates "
                                        "are decoded in one batch", "results": gen},
                 "env": _env(threads)})


@app.command()
def mmlu(data: Path = typer.Option(DATA / "mmlu"), model: str = "bert-tiny-splade",
         subjects: str = "astronomy,marketing", k: int = 0, limit: int = 0, threads: int = 1,
         out: Optional[Path] = None):
    """Zero-/k-shot MMLU with the MLM classifier (ModernBERT-Instruct prompt) on a few subjects."""
    from mlm_generate.classifier import MLMClassifier  # noqa: PLC0415
    from mlm_generate.templates import Example  # noqa: PLC0415

    set_threads(threads)
    clf = MLMClassifier(model, batch_size=32)
    per, allc, alln = {}, 0, 0
    t0 = time.perf_counter()
    for subj in subjects.split(","):
        rows = list(csv.reader((data / "test" / f"{subj}_test.csv").open(encoding="utf-8")))
        rows = rows[:limit] if limit else rows
        shots = [Example(text=r[0], answer=r[5], choices=tuple(r[1:5]))
                 for r in csv.reader((data / "dev" / f"{subj}_dev.csv").open(encoding="utf-8"))][:k]
        probs = clf.score_choices_batch([r[0] for r in rows], [r[1:5] for r in rows], shots)
        pred = ["ABCD"[max(range(4), key=p.__getitem__)] for p in probs]
        c = sum(p == r[5] for p, r in zip(pred, rows))
        per[subj] = {"accuracy": c / len(rows), "n": len(rows),
                     "prediction_counts": {x: pred.count(x) for x in "ABCD"}}
        allc, alln = allc + c, alln + len(rows)
    _write(out, {"experiment": "MMLU smoke, MLM classifier", "model": model, "shots": k, "subjects": per,
                 "accuracy": allc / alln, "n": alln, "chance": 0.25, "seconds": time.perf_counter() - t0,
                 "prompt_example": clf.template.render(clf.tokenizer, "<question>", ["<A>", "<B>", "<C>", "<D>"]),
                 "env": _env(threads)})


@app.command()
def drafter(target: str = "qwen2.5-coder-1.5b-instruct", mlm: str = "bert-tiny-splade", k: int = 4,
            n_prompts: int = 6, max_new_tokens: int = 48, categories: str = "summarization,qa,writing",
            data: Path = typer.Option(DATA / "spec_bench" / "question.jsonl"), dtype: str = "bfloat16",
            threads: int = 1, out: Optional[Path] = None):
    """Acceptance rate of the `mlm` drafter against the target (greedy, lossless check vs plain decoding)."""
    import specdec  # noqa: PLC0415
    from specdec.config import SpecConfig  # noqa: PLC0415

    from specdec.jsonl import read_jsonl  # noqa: PLC0415

    set_threads(threads)
    rows = [r for _, r in read_jsonl(data)]
    cats = categories.split(",")
    picked = []
    for c in cats:
        picked += [r for r in rows if r["category"] == c][: max(1, n_prompts // len(cats))]
    dec = specdec.load(target, dtype=dtype, threads=threads)
    spec = SpecConfig(drafter="mlm", k=k, drafter_options={"mlm": mlm})
    per, drafted, accepted, same = [], 0, 0, True
    t_mlm = t_tr = 0.0
    for r in picked:
        prompt = r["turns"][0]
        plain = dec.generate(prompt, max_new_tokens=max_new_tokens)
        d = dec.drafter_for(spec)
        t0 = time.perf_counter()
        res = dec.generate(prompt, spec=spec, max_new_tokens=max_new_tokens)
        wall = time.perf_counter() - t0
        s = res.stats
        same &= res.token_ids == plain.token_ids
        drafted += s.drafted
        accepted += s.accepted
        t_mlm += d.totals["mlm_s"]
        t_tr += d.totals["translate_s"]
        per.append({"category": r["category"], "question_id": r["question_id"], "drafted": s.drafted,
                    "accepted": s.accepted, "acceptance_rate": s.acceptance_rate,
                    "mean_accepted_length": s.mean_accepted_length, "seconds_spec": wall,
                    "mlm_s": d.totals["mlm_s"], "translate_s": d.totals["translate_s"], "rounds": d.totals["rounds"],
                    "lossless": res.token_ids == plain.token_ids})
        typer.echo(json.dumps(per[-1]), err=True)
    rounds = sum(p["rounds"] for p in per)
    _write(out, {"experiment": "mlm drafter acceptance", "target": target, "mlm": mlm, "k": k, "dtype": dtype,
                 "greedy": True, "prompts": len(per), "acceptance_rate": accepted / drafted if drafted else 0.0,
                 "drafted": drafted, "accepted": accepted, "all_outputs_identical_to_plain": same,
                 "mlm_ms_per_round": 1000 * t_mlm / max(1, rounds),
                 "translate_ms_per_round": 1000 * t_tr / max(1, rounds), "per_prompt": per, "env": _env(threads)})


if __name__ == "__main__":
    app()
