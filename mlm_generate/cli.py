"""`specdec mlm fill|classify|finetune|generate` (mounted by the main CLI as `mlm_app`).
Every command takes `--json` and then prints exactly one JSON object on stdout."""
from __future__ import annotations

import functools
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer

from specdec.cli.errors import OneLineGroup

from specdec.errors import DataError, InputError, SpecDecError

mlm_app = typer.Typer(cls=OneLineGroup, help="Masked LMs: generative classification, MLM-head fine-tuning, non-autoregressive "
                           "generation.", no_args_is_help=True, add_completion=False)

MODEL = typer.Option("bert-tiny-splade", "--model", "-m", help="zoo name, local folder or hub id of a masked LM")
JSON = typer.Option(False, "--json", help="print one JSON object on stdout")
THREADS = typer.Option(None, "--threads", help="torch threads (default: torch's)")


def _run(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        as_json = kwargs.get("as_json", False)
        try:
            from specdec.validate import set_threads  # noqa: PLC0415

            set_threads(kwargs.get("threads"))
            out = fn(*args, **kwargs)
        except SpecDecError as e:
            if not as_json:
                raise  # the group prints it as one red line
            typer.echo(json.dumps({"error": str(e), "type": type(e).__name__}))
            raise typer.Exit(1) from None
        if as_json:
            typer.echo(json.dumps(out, default=str))
    return wrapper


def _labels_spec(s: str):
    """"neg,pos" -> ["neg", "pos"]; "neg=bad|awful;pos=good|great" -> {"neg": [...], "pos": [...]}."""
    if "=" not in s:
        labels = [x.strip() for x in s.split(",") if x.strip()]
        _distinct(labels, s)
        return labels
    out = {}
    for part in s.split(";"):
        if not part.strip():
            continue
        if "=" not in part:
            raise InputError(f"--labels part {part!r} must look like label=word|word")
        lab, words = part.split("=", 1)
        if lab.strip() in out:
            raise InputError(f"--labels {s!r}: label {lab.strip()!r} is given twice")
        out[lab.strip()] = [w for w in words.split("|") if w]
        if not out[lab.strip()]:
            raise InputError(f"--labels {s!r}: label {lab.strip()!r} has no words")
    _distinct(list(out), s)
    return out


def _distinct(labels: list[str], given: str) -> None:
    """At least two labels, none twice: with `a,a` every answer would be 'a' at 0.5."""
    if len(labels) < 2:
        raise InputError(f"--labels needs at least two comma-separated labels, got {given!r}")
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        raise InputError(f"--labels {given!r}: {', '.join(twice)} given twice; each label once")


def _read_examples(path: Path, k: int) -> list[dict]:
    from specdec.jsonl import read_jsonl  # noqa: PLC0415

    if not path.is_file():
        raise DataError(f"{path} does not exist")
    rows = [r for _, r in read_jsonl(path, "not JSON")]
    return rows[:k] if k >= 0 else rows


@mlm_app.command()
@_run
def fill(text: str = typer.Argument(..., help="text with [MASK] / <mask> where tokens are missing"),
         model: str = MODEL, top_k: int = typer.Option(5, "--top-k"),
         iterations: int = typer.Option(1, "--iterations", "-T", help="mask-predict iterations over the masks"),
         threads: Optional[int] = THREADS, as_json: bool = JSON):
    """Fill the masks in TEXT; show each mask's top-k."""
    from mlm_generate.models import load_mlm  # noqa: PLC0415
    from mlm_generate.nar import fill_text  # noqa: PLC0415

    if top_k < 1 or iterations < 1:  # checked before the model loads, again in fill_text for API callers
        raise InputError(f"--top-k and --iterations must be >= 1, got {top_k} and {iterations}")
    out = fill_text(load_mlm(model), text, iterations=iterations, top_k=top_k)
    if not as_json:
        typer.echo(out["text"])
        for m in out["masks"]:
            typer.echo(f"  @{m['position']}: " + "  ".join(f"{t['token']} {t['prob']:.3f}" for t in m["top"]))
    return out


@mlm_app.command()
@_run
def classify(text: str = typer.Argument(..., help="the text / question to classify"),
             labels: Optional[str] = typer.Option(None, "--labels", help="'neg,pos' or 'neg=bad|awful;pos=good'"),
             choice: Optional[list[str]] = typer.Option(None, "--choice", help="a multiple-choice option (repeat)"),
             examples: Optional[Path] = typer.Option(None, "--examples", help="JSONL in-context examples: "
                                                     "{text,label} or {question,choices,answer}"),
             k: int = typer.Option(-1, "--k", help="use the first k examples (-1 = all)"),
             template: Optional[str] = typer.Option(None, "--template", help="modernbert-instruct | sentiment"),
             joint: str = typer.Option("chain", "--joint", help="multi-token words: chain | independent"),
             model: str = MODEL, threads: Optional[int] = THREADS, as_json: bool = JSON):
    """Zero-/k-shot classification (--labels) or multiple choice (--choice ...) with the MLM head."""
    from mlm_generate.classifier import MLMClassifier  # noqa: PLC0415
    from mlm_generate.templates import Example  # noqa: PLC0415

    if not text.strip():
        raise InputError("empty text: give the text or question to classify")
    if bool(labels) == bool(choice):
        raise InputError("give either --labels (label set) or --choice options (multiple choice)")
    label_spec = _labels_spec(labels) if labels else None  # checked before the model loads
    if choice and len(set(choice)) != len(choice):
        raise InputError("--choice: an option is given twice; each option once")
    rows = _read_examples(examples, k) if examples else []
    clf = MLMClassifier(model, template, joint=joint)
    if choice:
        exs = []
        for r in rows:
            if not {"question", "choices", "answer"} <= set(r):
                raise DataError("multiple-choice examples need question, choices and answer (a letter)")
            exs.append(Example(text=r["question"], answer=r["answer"], choices=tuple(r["choices"])))
        probs = clf.score_choices(text, list(choice), exs)
        letters = [chr(65 + i) for i in range(len(choice))]
        result = {"mode": "multiple-choice", "probs": dict(zip(letters, probs)),
                  "prediction": letters[max(range(len(probs)), key=probs.__getitem__)]}
    else:
        pairs = []
        for r in rows:
            if not {"text", "label"} <= set(r):
                raise DataError("label-set examples need text and label")
            pairs.append((r["text"], r["label"]))
        probs = clf.classify(text, label_spec, pairs)
        result = {"mode": "labels", "probs": probs, "prediction": max(probs, key=probs.get)}
    result.update(model=model, template=asdict(clf.template), shots=len(rows),
                  prompt=clf.template.render(clf.tokenizer, text, choice or None) if choice else None)
    if not as_json:
        for lab, p in result["probs"].items():
            typer.echo(f"{lab}\t{p:.4f}")
        typer.echo(f"prediction: {result['prediction']}")
    return result


@mlm_app.command()
@_run
def finetune(data: Optional[Path] = typer.Option(None, "--data", help="folder with train.tsv [dev.tsv test.tsv] "
                                                 "(sentence<TAB>label), e.g. ../shared/data/sst2"),
             train: Optional[Path] = typer.Option(None, "--train"), dev: Optional[Path] = typer.Option(None, "--dev"),
             test: Optional[Path] = typer.Option(None, "--test"),
             labels: str = typer.Option("negative,positive", "--labels", help="label words, index order"),
             head: str = typer.Option("mlm", "--head", help="mlm (answer-token loss) | cls (classification head)"),
             epochs: float = typer.Option(2.0, "--epochs"), max_steps: int = typer.Option(0, "--max-steps"),
             batch_size: int = typer.Option(32, "--batch-size"), lr: float = typer.Option(1e-4, "--lr"),
             warmup: float = typer.Option(0.1, "--warmup", help="warm-up fraction of the steps"),
             weight_decay: float = typer.Option(0.01, "--weight-decay"), seed: int = typer.Option(0, "--seed"),
             dummy_mlm: bool = typer.Option(False, "--dummy-mlm/--no-dummy-mlm", help="20%/30% dummy MLM mix"),
             max_length: int = typer.Option(128, "--max-length"), limit: int = typer.Option(0, "--limit"),
             template: str = typer.Option("sentiment", "--template"),
             out: Optional[Path] = typer.Option(None, "--out", help="checkpoints + final model (resumable)"),
             resume: bool = typer.Option(True, "--resume/--no-resume"),
             checkpoint_every: int = typer.Option(0, "--checkpoint-every"),
             progress: bool = typer.Option(True, "--progress/--no-progress"),
             model: str = MODEL, threads: Optional[int] = THREADS, as_json: bool = JSON):
    """Fine-tune through the MLM head (or a classification head) and report accuracy."""
    from mlm_generate.finetune import FinetuneConfig, finetune as run, load_tsv  # noqa: PLC0415

    if data is not None:
        train = train or data / "train.tsv"
        dev = dev or (data / "dev.tsv" if (data / "dev.tsv").is_file() else None)
        test = test or (data / "test.tsv" if (data / "test.tsv").is_file() else None)
    if train is None:
        raise InputError("give --data DIR or --train FILE")
    if out is not None and out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file; give a folder for the checkpoints and the final model")
    if out is not None:
        from specdec.validate import check_writable_folder  # noqa: PLC0415

        check_writable_folder(out, f"--out {out}")
    label_spec = _labels_spec(labels)
    train_rows = load_tsv(train, limit or None)  # every input read and checked before the model loads
    if not train_rows:
        raise DataError(f"--train {train}: no examples")
    cfg = FinetuneConfig(head=head, epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=lr,
                         warmup_ratio=warmup, weight_decay=weight_decay, seed=seed, dummy_mlm=dummy_mlm,
                         max_length=max_length, checkpoint_every=checkpoint_every)
    evals = {name: load_tsv(p) for name, p in (("dev", dev), ("test", test)) if p is not None}
    res = run(model, train_rows, label_spec, cfg, out, eval_sets=evals,
              template=template, resume=resume, progress=progress and sys.stderr.isatty())
    d = res.to_dict()
    d.update(model=model, train=str(train), n_train=len(train_rows))
    if not as_json:
        typer.echo(f"{head} head: {res.steps} steps in {res.seconds:.1f}s; "
                   + ", ".join(f"{k} {v:.4f}" for k, v in res.metrics.items()))
    return d


@mlm_app.command()
@_run
def generate(prompt: str = typer.Argument("", help="text the generation continues"),
             method: str = typer.Option("mask-predict", "--method", help="mask-predict | block"),
             lengths: str = typer.Option("16", "--lengths", help="comma-separated length candidates"),
             iterations: int = typer.Option(10, "--iterations", "-T"),
             block_size: int = typer.Option(4, "--block-size"), steps_per_block: int = typer.Option(2, "--steps-per-block"),
             suffix: str = typer.Option("", "--suffix", help="text after the generated span (infilling)"),
             model: str = MODEL, threads: Optional[int] = THREADS, as_json: bool = JSON):
    """Non-autoregressive generation: mask-predict or block-wise confidence unmasking."""
    from mlm_generate.models import load_mlm  # noqa: PLC0415
    from mlm_generate.nar import GenerationConfig, generate as run  # noqa: PLC0415

    try:
        lens = tuple(int(x) for x in lengths.split(",") if x.strip())
    except ValueError:
        raise InputError(f"--lengths must be comma-separated integers, got {lengths!r}") from None
    cfg = GenerationConfig(method=method, lengths=lens, iterations=iterations, block_size=block_size,
                           steps_per_block=steps_per_block)
    res = run(load_mlm(model), prompt, cfg, suffix=suffix)
    if not as_json:
        typer.echo(f"{prompt}{' ' if prompt else ''}{res.text}")
        typer.echo(f"[{res.method}: {res.stats().summary()}, mean log-prob {res.avg_logprob:.3f}]", err=True)
    d = res.to_dict()
    d.update(prompt=prompt, model=model)
    return d


if __name__ == "__main__":  # python -m mlm_generate.cli ...
    mlm_app()
