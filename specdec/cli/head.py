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
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from specdec.cli.errors import OneLineGroup
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from specdec.config import DEFAULT_DRAFT, DEFAULT_TARGET
from specdec.validate import set_threads
from specdec.errors import InputError
from specdec.zoo.load import eos_token_ids

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


def _load(name: str, dtype: str, cache_dir: str | None):
    from specdec.zoo import load_causal_lm

    return load_causal_lm(name, dtype=dtype, cache_dir=cache_dir)


EVAL_FILES = ("gsm8k/test", "spec_bench")  # evaluation prompts: never training data


def _is_eval_file(path: str) -> bool:
    p = str(Path(path).resolve())
    return any(s in p for s in EVAL_FILES)


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
    from specdec.head.data import (DataConfig, build_dataset, make_hf_batch_responder, make_responder,
                                   read_prompts)
    from policies.specdecpp.head import draft_identity
    from specdec.api import SpecDecoder
    from specdec.config import EngineConfig, SpecConfig

    set_threads(threads)
    if _is_eval_file(prompts) and not allow_eval_prompts:
        raise InputError(f"{prompts} holds evaluation prompts (GSM8K test / Spec-Bench); they must not become "
                         "training data. Pass --allow-eval-prompts only to build a held-out evaluation set.")
    if not 0 <= keep_prob < 1 or temperature <= 0:
        raise InputError("need 0 <= --keep-prob < 1 and --temperature > 0")
    if count is not None and count < 1:
        raise InputError(f"--count must be >= 1, got {count}")
    if responder not in ("hf-batch", "engine"):
        raise InputError(f"--responder must be hf-batch or engine, not {responder!r}")
    if responder == "hf-batch" and response_temperature > 0:
        raise InputError("--response-temperature needs --responder engine (hf-batch answers greedily)")
    err = _err()
    texts = read_prompts(prompts)
    t0 = time.perf_counter()
    tmodel, tok = _load(target, dtype, cache_dir)
    dmodel, dtok = _load(draft, dtype, cache_dir)
    from specdec.drafters.draft_model import check_same_vocabulary

    check_same_vocabulary(tok, dtok)  # another vocabulary crashed (smaller) or built wrong labels (larger)
    err.print(f"[dim]loaded {escape(target)} + {escape(draft)} in {time.perf_counter() - t0:.0f}s[/]")
    ident = draft_identity(dmodel, draft)
    cfg = DataConfig(target=target, draft=draft, prompts=str(Path(prompts).resolve()), start=start, count=count,
                     max_new_tokens=max_new_tokens, response_temperature=response_temperature, temperature=temperature,
                     keep_prob=keep_prob, seed=seed, shard_size=shard_size, chat=chat, draft_identity=ident,
                     responder=responder)
    if responder == "engine":
        dec = SpecDecoder(tmodel, tok, spec=SpecConfig(drafter="draft-model", policy="constant", k=4),
                          engine=EngineConfig(dtype=dtype), draft=draft, model_loader=lambda name: (dmodel, dtok))
        respond = make_responder(dec, max_new_tokens, response_temperature, seed)
    else:
        eos = eos_token_ids(tok, tmodel)
        pad = tok.pad_token_id if tok.pad_token_id is not None else eos[0]
        respond = make_hf_batch_responder(tmodel, pad, eos, max_new_tokens, batch_size)

    manifest = build_dataset(cfg, out, target=tmodel, draft=dmodel, tokenizer=tok, respond=respond, prompts=texts,
                             progress=progress, log=lambda m: err.print(f"[dim]{escape(m)}[/]"),
                             estimate_only=estimate_only, max_shards=max_shards)
    manifest["eos_token_ids"] = eos_token_ids(tok, tmodel)
    manifest.setdefault("commands", []).append(_command_line())
    from specdec.head.data import write_manifest

    write_manifest(Path(out), manifest)
    shards = manifest["shards"]
    summary = {"out": out, "shards": len(shards), "prompts": sum(s["prompts"][1] - s["prompts"][0] for s in shards.values()),
               "positions": sum(s["positions"] for s in shards.values()),
               "labelled": sum(s["labelled"] for s in shards.values()),
               "seconds": round(sum(s["seconds"] for s in shards.values()), 1), "estimate": manifest.get("estimate")}
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
    from specdec.head.dataset import load_dataset
    from specdec.head.evaluate import evaluate_head
    from policies.specdecpp.head import save_head
    from specdec.head.train import TrainConfig, train_head

    set_threads(threads)
    err = _err()
    ds = load_dataset(data, label=label, align=align)
    cfgd = ds.manifest["config"]
    if _is_eval_file(cfgd.get("prompts", "")) and not allow_eval_data:
        raise InputError(f"{data[0]} was built from evaluation prompts ({cfgd.get('prompts')}); never train on them")
    extras = [x.strip() for x in (extra_features or "").split(",") if x.strip()]
    if extras:
        if align != "pre":
            raise InputError("--extra-features needs --align pre (the confidence of the token being judged)")
        from specdec.head.dataset import add_extra_features

        ds = add_extra_features(ds, _load(cfgd["draft"], "bfloat16", None)[0], extras)
    tr, va = ds.split(val_fraction)
    err.print(f"[dim]{len(tr)} training / {len(va)} validation positions (hidden size {ds.features.shape[1]})[/]")
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, reject_weight=reject_weight,
                      num_blocks=blocks, seed=seed, checkpoint_every=checkpoint_every, label=label, align=align,
                      standardize=standardize)
    work = work_dir or str(Path(out).with_suffix("")) + ".work"
    t0 = time.perf_counter()
    head, state = train_head(tr, cfg, work, val=va if len(va) else None, resume=resume, progress=progress,
                             log=lambda m: err.print(f"[dim]{escape(m)}[/]"))
    val_metrics = evaluate_head(head, va, reject_weight=reject_weight) if len(va) else None
    meta = {
        "align": align, "label": label, "reject_weight": reject_weight, "extra_features": extras, "eos_token_ids": ds.manifest.get("eos_token_ids", []),
        "target": cfgd.get("target"), "draft": cfgd.get("draft"),
        "train": {"command": _command_line(), "config": cfg.__dict__, "positions": len(tr), "val_positions": len(va),
                  "data": [str(d) for d in data], "data_prompts": cfgd.get("prompts"),
                  "steps": state.step, "seconds": round(state.seconds, 1)},
        "val": {k: v for k, v in (val_metrics or {}).items() if k != "reliability"},
    }
    if threshold is not None:
        meta["threshold"] = threshold
    save_head(out, head, cfgd["draft_identity"], meta)
    report = {"out": out, "seconds": round(time.perf_counter() - t0, 1), "history": state.history, **meta}
    if json_out:
        _emit_json(report, json_out)
    else:
        v = meta["val"]
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
    from specdec.head.dataset import load_dataset, load_manifest
    from specdec.head.evaluate import evaluate_head
    from policies.specdecpp.head import bundled_head, load_head

    set_threads(threads)
    man = load_manifest(Path(data[0]))
    if man is None:
        raise InputError(f"{data[0]} has no manifest.json; build it with `specdec head build-data`")
    ident = man["config"]["draft_identity"]
    path = head or bundled_head(ident.get("name"))
    if path is None:
        raise InputError(f"no bundled head for draft {ident.get('name')!r}; pass --head")
    hf = load_head(path, draft=ident)  # refuses a head trained for another draft
    kind = label or hf.meta.get("label", "label")
    ds = load_dataset(data, label=kind, align=hf.meta.get("align", "pre"))
    if hf.meta.get("extra_features"):
        from specdec.head.dataset import add_extra_features

        ds = add_extra_features(ds, _load(man["config"]["draft"], "bfloat16", None)[0], hf.meta["extra_features"])
    m = evaluate_head(hf.head, ds, bins, reject_weight=hf.meta.get("reject_weight"))
    m.update(head=str(path), data=[str(d) for d in data], label=kind, prompts=int(len(set(ds.prompt.tolist()))))
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
    from specdec.head.costs import measure_costs
    from specdec.runners.torch_runner import TorchRunner

    set_threads(threads)
    tmodel, _ = _load(target, dtype, cache_dir)
    dmodel, _ = _load(draft, dtype, cache_dir)
    res = measure_costs(TorchRunner(tmodel, max_context=context + 64), TorchRunner(dmodel, max_context=context + 64),
                        context=context, k=k, repeats=repeats)
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
