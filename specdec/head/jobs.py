"""The four SpecDec++ head jobs, whole: build data, train, evaluate, calibrate. `specdec head ...` (specdec/cli/head.py)
only parses options into these calls and prints what they return; tests and scripts call them directly.

Each job checks its inputs before any model loads and returns a plain dict (the CLI's --json)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from specdec.errors import InputError

EVAL_FILES = ("gsm8k/test", "spec_bench")  # evaluation prompts: never training data
Log = Callable[[str], None]


def is_eval_file(path: str) -> bool:
    p = str(Path(path).resolve())
    return any(s in p for s in EVAL_FILES)


def load_model(name: str, dtype: str = "bfloat16", cache_dir: str | None = None):
    """(model, tokenizer) of a zoo name, folder or hub id: the one loader of the head jobs (tests swap it)."""
    from specdec.zoo import load_causal_lm

    return load_causal_lm(name, dtype=dtype, cache_dir=cache_dir)


def check_build(prompts: str, *, allow_eval_prompts: bool, keep_prob: float, temperature: float, count: int,
                responder: str, response_temperature: float) -> None:
    """build-data's inputs, before any model loads."""
    if is_eval_file(prompts) and not allow_eval_prompts:
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


def build_data(*, out: str, prompts: str, target: str, draft: str, start: int = 0, count: int = 200,
               max_new_tokens: int = 128, responder: str = "hf-batch", batch_size: int = 16,
               response_temperature: float = 0.0, temperature: float = 1.0, keep_prob: float = 0.15, seed: int = 0,
               shard_size: int = 16, chat: bool = True, estimate_only: bool = False, max_shards: int | None = None,
               allow_eval_prompts: bool = False, cache_dir: str | None = None, dtype: str = "bfloat16",
               progress: bool = True, command: str = "", log: Log = print) -> dict:
    """Generate (or resume) sharded training data; returns the summary (shards, prompts, positions, ...)."""
    from policies.specdecpp.head import draft_identity
    from specdec.api import SpecDecoder
    from specdec.config import EngineConfig, SpecConfig
    from specdec.drafters.draft_model import check_same_vocabulary
    from specdec.head.data import (DataConfig, build_dataset, make_hf_batch_responder, make_responder,
                                   read_prompts, write_manifest)
    from specdec.zoo.load import eos_token_ids

    check_build(prompts, allow_eval_prompts=allow_eval_prompts, keep_prob=keep_prob, temperature=temperature,
                count=count, responder=responder, response_temperature=response_temperature)
    texts = read_prompts(prompts)
    t0 = time.perf_counter()
    tmodel, tok = load_model(target, dtype, cache_dir)
    dmodel, dtok = load_model(draft, dtype, cache_dir)
    check_same_vocabulary(tok, dtok)  # another vocabulary crashed (smaller) or built wrong labels (larger)
    log(f"loaded {target} + {draft} in {time.perf_counter() - t0:.0f}s")
    cfg = DataConfig(target=target, draft=draft, prompts=str(Path(prompts).resolve()), start=start, count=count,
                     max_new_tokens=max_new_tokens, response_temperature=response_temperature, temperature=temperature,
                     keep_prob=keep_prob, seed=seed, shard_size=shard_size, chat=chat,
                     draft_identity=draft_identity(dmodel, draft), responder=responder)
    if responder == "engine":
        dec = SpecDecoder(tmodel, tok, spec=SpecConfig(drafter="draft-model", policy="constant", k=4),
                          engine=EngineConfig(dtype=dtype), draft=draft, model_loader=lambda name: (dmodel, dtok))
        respond = make_responder(dec, max_new_tokens, response_temperature, seed)
    else:
        eos = eos_token_ids(tok, tmodel)
        pad = tok.pad_token_id if tok.pad_token_id is not None else eos[0]
        respond = make_hf_batch_responder(tmodel, pad, eos, max_new_tokens, batch_size)
    manifest = build_dataset(cfg, out, target=tmodel, draft=dmodel, tokenizer=tok, respond=respond, prompts=texts,
                             batch_size=batch_size if responder == "hf-batch" else 1, progress=progress, log=log,
                             estimate_only=estimate_only, max_shards=max_shards)
    manifest["eos_token_ids"] = eos_token_ids(tok, tmodel)
    manifest.setdefault("commands", []).append(command)
    write_manifest(Path(out), manifest)
    shards = manifest["shards"].values()
    return {"out": out, "shards": len(shards), "prompts": sum(s["prompts"][1] - s["prompts"][0] for s in shards),
            "positions": sum(s["positions"] for s in shards), "labelled": sum(s["labelled"] for s in shards),
            "seconds": round(sum(s["seconds"] for s in shards), 1), "estimate": manifest.get("estimate")}


def train(*, data: list[str], out: str, cfg, work_dir: str | None = None, extra_features: list[str] = (),
          val_fraction: float = 0.1, threshold: float | None = None, allow_eval_data: bool = False,
          resume: bool = True, progress: bool = True, command: str = "", log: Log = print) -> dict:
    """Train a head (`cfg`: a TrainConfig) on build-data folders, checkpointed in `work_dir` (a rerun resumes);
    writes `out` and returns the report (validation metrics, history)."""
    from policies.specdecpp.head import save_head
    from specdec.head.dataset import add_extra_features, load_dataset
    from specdec.head.evaluate import evaluate_head
    from specdec.head.train import train_head

    extras = list(extra_features)
    if extras and cfg.align != "pre":
        raise InputError("--extra-features needs --align pre (the confidence of the token being judged)")
    ds = load_dataset(data, label=cfg.label, align=cfg.align)
    cfgd = ds.manifest["config"]
    if is_eval_file(cfgd.get("prompts", "")) and not allow_eval_data:
        raise InputError(f"{data[0]} was built from evaluation prompts ({cfgd.get('prompts')}); never train on them")
    if extras:
        ds = add_extra_features(ds, load_model(cfgd["draft"], "bfloat16", None)[0], extras)
    tr, va = ds.split(val_fraction)
    log(f"{len(tr)} training / {len(va)} validation positions (hidden size {ds.features.shape[1]})")
    work = work_dir or str(Path(out).with_suffix("")) + ".work"
    t0 = time.perf_counter()
    head, state = train_head(tr, cfg, work, val=va if len(va) else None, resume=resume, progress=progress, log=log)
    val_metrics = evaluate_head(head, va, reject_weight=cfg.reject_weight) if len(va) else None
    meta = {
        "align": cfg.align, "label": cfg.label, "reject_weight": cfg.reject_weight, "extra_features": extras,
        "eos_token_ids": ds.manifest.get("eos_token_ids", []), "target": cfgd.get("target"), "draft": cfgd.get("draft"),
        "train": {"command": command, "config": cfg.__dict__, "positions": len(tr), "val_positions": len(va),
                  "data": [str(d) for d in data], "data_prompts": cfgd.get("prompts"),
                  "steps": state.step, "seconds": round(state.seconds, 1)},
        "val": {k: v for k, v in (val_metrics or {}).items() if k != "reliability"},
    }
    if threshold is not None:
        meta["threshold"] = threshold
    save_head(out, head, cfgd["draft_identity"], meta)
    return {"out": out, "seconds": round(time.perf_counter() - t0, 1), "history": state.history, **meta}


def evaluate(*, data: list[str], head: str | None = None, label: str | None = None, bins: int = 10) -> dict:
    """A head's accuracy and calibration on held-out build-data folders (default head: the bundled one of the
    data's draft): AUC, BCE, Brier, ECE and the reliability table."""
    from policies.specdecpp.head import bundled_head, load_head
    from specdec.head.dataset import add_extra_features, load_dataset, load_manifest
    from specdec.head.evaluate import evaluate_head

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
        ds = add_extra_features(ds, load_model(man["config"]["draft"], "bfloat16", None)[0], hf.meta["extra_features"])
    m = evaluate_head(hf.head, ds, bins, reject_weight=hf.meta.get("reject_weight"))
    m.update(head=str(path), data=[str(d) for d in data], label=kind, prompts=int(len(set(ds.prompt.tolist()))))
    return m


def calibrate(*, target: str, draft: str, context: int = 256, k: int = 8, repeats: int = 5,
              cache_dir: str | None = None, dtype: str = "bfloat16") -> dict:
    """The draft step's and the target's verification costs on this machine: c1, c2, delta and Theorem 3.1's
    threshold (usable as the policy's costs=FILE)."""
    from specdec.head.costs import measure_costs
    from specdec.runners.torch_runner import TorchRunner

    tmodel, _ = load_model(target, dtype, cache_dir)
    dmodel, _ = load_model(draft, dtype, cache_dir)
    return measure_costs(TorchRunner(tmodel, max_context=context + 64), TorchRunner(dmodel, max_context=context + 64),
                         context=context, k=k, repeats=repeats)
