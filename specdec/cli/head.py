"""``specdec head``: build training data for, train, evaluate and calibrate SpecDec++ acceptance heads.

    specdec head build-data --prompts ../shared/data/gsm8k/train.jsonl --count 200 --out runs/specdecpp/data
    specdec head train --data runs/specdecpp/data --out my-head.safetensors
    specdec head eval --head my-head.safetensors --data runs/specdecpp/heldout
    specdec head calibrate --json costs.json          # c1, c2, delta and Theorem 3.1's threshold on this machine

Then: ``specdec generate ... --draft D --policy specdecpp --policy-opt head=my-head.safetensors``.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from specdec.cli.errors import OneLineGroup
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from specdec.config import DEFAULT_DRAFT, DEFAULT_TARGET
from specdec.validate import set_threads

head_app = typer.Typer(cls=OneLineGroup, help="SpecDec++ acceptance heads: build-data, train, eval, calibrate.",
                       no_args_is_help=True)


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _command_line() -> str:
    """The command as `specdec head ...` (also when run as `python -m specdec.cli.head ...`)."""
    if not sys.argv:
        return ""
    args = sys.argv[1:]
    if sys.argv[0].endswith(("head.py", "specdec.cli.head")):
        args = ["head", *args]
    return "specdec " + " ".join(shlex.quote(a) for a in args)


def _emit_json(obj: dict, path: str | None) -> None:
    text = json.dumps(obj, indent=2, default=float)
    if path in (None, "-"):
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    else:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(text + "\n")
        os.replace(tmp, p)


# --------------------------------------------------------------------------------------------- build-data
@head_app.command("build-data")
def build_data(
    out: Annotated[str, typer.Option("--out", "-o", help="Folder for the shards and manifest.json.")],
    prompts: Annotated[str, typer.Option(
        "--prompts", help="Prompt file (.jsonl with question/prompt/text/turns, or .txt).")] = "../shared/data/gsm8k/train.jsonl",
    target: Annotated[str, typer.Option("--target", "-t")] = DEFAULT_TARGET,
    draft: Annotated[str, typer.Option("--draft", "-d")] = DEFAULT_DRAFT,
    start: Annotated[int, typer.Option("--start", help="First prompt index.")] = 0,
    count: Annotated[int, typer.Option("--count", "-n", help="Number of prompts.")] = 200,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Target response length cap.")] = 128,
    responder: Annotated[str, typer.Option(
        "--responder", help="hf-batch (batched HF greedy generate, fastest on CPU) | engine (this engine's "
        "lossless speculation, one prompt at a time; allows --response-temperature)")] = "hf-batch",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Prompts per hf-batch generate call.")] = 16,
    response_temperature: Annotated[float, typer.Option(
        "--response-temperature", help="How the target answers (0 = greedy; engine responder only).")] = 0.0,
    temperature: Annotated[float, typer.Option("--temperature", help="Draft sampling temperature for the labels.")] = 1.0,
    keep_prob: Annotated[float, typer.Option("--keep-prob", help="Share of positions keeping the target token.")] = 0.15,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    shard_size: Annotated[int, typer.Option("--shard-size", help="Prompts per shard.")] = 16,
    chat: Annotated[bool, typer.Option("--chat/--no-chat", help="Wrap prompts in the chat template.")] = True,
    estimate_only: Annotated[bool, typer.Option("--estimate-only", help="Measure one prompt, print the estimate, stop.")] = False,
    max_shards: Annotated[Optional[int], typer.Option("--max-shards", help="Stop after this many new shards.")] = None,
    allow_eval_prompts: Annotated[bool, typer.Option(
        "--allow-eval-prompts", help="Allow GSM8K test / Spec-Bench prompts (held-out evaluation data only).")] = False,
    threads: Annotated[Optional[int], typer.Option("--threads")] = None,
    cache_dir: Annotated[Optional[str], typer.Option("--cache-dir")] = None,
    dtype: Annotated[str, typer.Option("--dtype")] = "bfloat16",
    json_out: Annotated[Optional[str], typer.Option("--json", help="Write the manifest summary here (- = stdout).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Generate (or resume) sharded training data: target responses, labels min(1, p/q), draft features."""
    from specdec.head import jobs

    set_threads(threads)
    err = _err()
    summary = jobs.build_data(
        out=out, prompts=prompts, target=target, draft=draft, start=start, count=count, max_new_tokens=max_new_tokens,
        responder=responder, batch_size=batch_size, response_temperature=response_temperature,
        temperature=temperature, keep_prob=keep_prob, seed=seed, shard_size=shard_size, chat=chat,
        estimate_only=estimate_only, max_shards=max_shards, allow_eval_prompts=allow_eval_prompts,
        cache_dir=cache_dir, dtype=dtype, progress=progress, command=_command_line(),
        log=lambda m: err.print(f"[dim]{escape(m)}[/]"))
    if json_out:
        _emit_json(summary, json_out)
    else:
        _out().print(f"{summary['shards']} shards, {summary['prompts']} prompts, {summary['positions']} positions "
                     f"({summary['labelled']} labelled) in {out}")


# --------------------------------------------------------------------------------------------- train
@head_app.command("train")
def train(
    data: Annotated[list[str], typer.Option("--data", help="Data folder(s) from build-data (repeatable).")],
    out: Annotated[str, typer.Option("--out", "-o", help="Where to write the head (.safetensors).")],
    work_dir: Annotated[Optional[str], typer.Option(
        "--work-dir", help="Checkpoints (default: OUT without suffix + '.work').")] = None,
    epochs: Annotated[int, typer.Option("--epochs")] = 4,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 256,
    lr: Annotated[float, typer.Option("--lr")] = 3e-4,
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = 0.01,
    reject_weight: Annotated[float, typer.Option("--reject-weight", help="BCE weight w on the reject class.")] = 6.0,
    blocks: Annotated[int, typer.Option("--blocks", help="Residual blocks L.")] = 3,
    standardize: Annotated[bool, typer.Option(
        "--standardize/--no-standardize", help="Standardize inputs with the training features' mean/std.")] = True,
    label: Annotated[str, typer.Option("--label", help="label (min(1,p/q) of the sampled token) | label_expected | label_greedy")] = "label",
    align: Annotated[str, typer.Option("--align", help="pre (hidden that produced the token) | post (paper's code)")] = "pre",
    extra_features: Annotated[Optional[str], typer.Option(
        "--extra-features", help="Not in the paper: append the draft's own confidence to the hidden state "
        "(top_logprob = log max q; computed through the draft's lm_head, so the draft is loaded).")] = None,
    val_fraction: Annotated[float, typer.Option("--val-fraction", help="Prompts held out for validation.")] = 0.1,
    threshold: Annotated[Optional[float], typer.Option(
        "--threshold", help="Recommended threshold recorded in the head (default: none, the policy calibrates).")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every")] = 100,
    resume: Annotated[bool, typer.Option("--resume/--no-resume")] = True,
    allow_eval_data: Annotated[bool, typer.Option("--allow-eval-data")] = False,
    threads: Annotated[Optional[int], typer.Option("--threads")] = None,
    json_out: Annotated[Optional[str], typer.Option("--json", help="Write the training report here (- = stdout).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Train an acceptance head on cached draft features (checkpointed; rerun the same command to resume)."""
    from specdec.head import jobs
    from specdec.head.train import TrainConfig

    set_threads(threads)
    err = _err()
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, reject_weight=reject_weight,
                      num_blocks=blocks, seed=seed, checkpoint_every=checkpoint_every, label=label, align=align,
                      standardize=standardize)
    report = jobs.train(data=data, out=out, cfg=cfg, work_dir=work_dir,
                        extra_features=[x.strip() for x in (extra_features or "").split(",") if x.strip()],
                        val_fraction=val_fraction, threshold=threshold, allow_eval_data=allow_eval_data,
                        resume=resume, progress=progress, command=_command_line(),
                        log=lambda m: err.print(f"[dim]{escape(m)}[/]"))
    if json_out:
        _emit_json(report, json_out)
    else:
        v = report["val"]
        _out().print(f"wrote {out}" + (f": val AUC {v['auc']:.3f}, BCE {v['bce']:.4f}, ECE {v['ece']:.3f}" if v else ""))


# --------------------------------------------------------------------------------------------- eval
@head_app.command("eval")
def evaluate(
    data: Annotated[list[str], typer.Option("--data", help="Held-out data folder(s) from build-data.")],
    head: Annotated[Optional[str], typer.Option("--head", help="Head file (default: the bundled one for the data's draft).")] = None,
    label: Annotated[Optional[str], typer.Option("--label", help="Label kind (default: the head's).")] = None,
    bins: Annotated[int, typer.Option("--bins")] = 10,
    threads: Annotated[Optional[int], typer.Option("--threads")] = None,
    json_out: Annotated[Optional[str], typer.Option("--json", help="Write the metrics here (- = stdout).")] = None,
) -> None:
    """Accuracy and calibration of a head on held-out positions: AUC, BCE, Brier, ECE, reliability table."""
    from specdec.head import jobs

    set_threads(threads)
    m = jobs.evaluate(data=data, head=head, label=label, bins=bins)
    path, kind = m["head"], m["label"]
    if json_out:
        _emit_json(m, json_out)
        if json_out == "-":
            return
    out = _out()
    out.print(f"{escape(str(path))} on {m['positions']} held-out positions ({m['prompts']} prompts, label {kind}"
              f"{', predictions de-weighted (w=%g)' % m['reject_weight'] if m['deweighted'] else ''}):")
    out.print(f"  AUC {m['auc']:.3f} (vs label >= 0.5: {m['auc_binary_0.5']:.3f}), BCE {m['bce']:.4f}, "
              f"Brier {m['brier']:.4f} (constant predictor {m['brier_constant']:.4f}), ECE {m['ece']:.3f}, "
              f"mean label {m['mean_label']:.3f}, mean prediction {m['mean_pred']:.3f}")
    t = Table(title="reliability (positions binned by predicted P(accept))")
    for c in ("bin", "positions", "mean predicted", "mean label (observed)"):
        t.add_column(c, justify="right")
    for r in m["reliability"]:
        if r["count"]:
            t.add_row(f"{r['lo']:.1f}-{r['hi']:.1f}", str(r["count"]), f"{r['mean_pred']:.3f}", f"{r['mean_label']:.3f}")
    out.print(t)


# --------------------------------------------------------------------------------------------- calibrate
@head_app.command("calibrate")
def calibrate(
    target: Annotated[str, typer.Option("--target", "-t")] = DEFAULT_TARGET,
    draft: Annotated[str, typer.Option("--draft", "-d")] = DEFAULT_DRAFT,
    context: Annotated[int, typer.Option("--context", help="Tokens already in the cache while timing.")] = 256,
    k: Annotated[int, typer.Option("--k", help="Longest verification timed (1 + k tokens).")] = 8,
    repeats: Annotated[int, typer.Option("--repeats")] = 5,
    threads: Annotated[Optional[int], typer.Option("--threads")] = None,
    cache_dir: Annotated[Optional[str], typer.Option("--cache-dir")] = None,
    dtype: Annotated[str, typer.Option("--dtype")] = "bfloat16",
    json_out: Annotated[Optional[str], typer.Option("--json", help="Write the costs here (usable as costs=FILE).")] = None,
) -> None:
    """Time the draft step and the target's verification on this machine; print c1, c2, delta and h*."""
    from specdec.head import jobs

    set_threads(threads)
    res = jobs.calibrate(target=target, draft=draft, context=context, k=k, repeats=repeats, cache_dir=cache_dir,
                         dtype=dtype)
    res.update(target=target, draft=draft, threads=threads, command=_command_line())
    if json_out:
        _emit_json(res, json_out)
        if json_out == "-":
            return
    _out().print(
        f"draft step {res['c_draft'] * 1e3:.1f} ms, target verify {res['verify_a'] * 1e3:.1f} ms + "
        f"{res['verify_b'] * 1e3:.1f} ms/token, overhead delta {res['delta'] * 1e3:.1f} ms -> c1 {res['c1'] * 1e3:.1f} ms, "
        f"c2 {res['c2'] * 1e3:.1f} ms; Theorem 3.1 threshold (c2+delta)/(c1+c2+delta) = {res['threshold']:.3f}, "
        f"auto threshold at plain decoding's rate 1 - c1/(c2+delta) = {res['threshold_auto_at_plain_rate']:.3f}")


if __name__ == "__main__":  # python -m specdec.cli.head ... (the same as `specdec head ...`)
    head_app()
