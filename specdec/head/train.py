"""Training the acceptance head on cached draft features (CPU-friendly: the draft never runs here).

Loss (soft-label weighted binary cross-entropy, as in the official SpecDec++ code): for logits z (N, 2),
log-probabilities l = log_softmax(z), soft label y in [0, 1] (1 = accept) and reject weight w,

    loss = sum_i [ y_i * (-l_i1) + w * (1 - y_i) * (-l_i0) ] / sum_i [ y_i + w * (1 - y_i) ]

AdamW, linear warm-up then cosine decay. The shuffling of epoch e is a permutation seeded by
(seed, e), so an interrupted run resumed from its checkpoint (model, optimizer, step) replays exactly the
batches the uninterrupted run would have seen: the result is bit-identical (same thread count).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from specdec.head.dataset import Dataset
from policies.specdecpp.head import AcceptanceHead
from specdec.errors import InputError

CHECKPOINT = "checkpoint.pt"


def weighted_soft_bce(logits: torch.Tensor, y: torch.Tensor, reject_weight: float = 6.0) -> torch.Tensor:
    """logits (N, 2) (class 1 = accept), soft labels y (N,) -> scalar loss (see the module docstring)."""
    logp = torch.log_softmax(logits.float(), -1)
    y = y.float()
    num = (y * -logp[:, 1] + reject_weight * (1 - y) * -logp[:, 0]).sum()
    den = (y + reject_weight * (1 - y)).sum().clamp_min(1e-12)
    return num / den


@dataclass
class TrainConfig:
    epochs: int = 4
    batch_size: int = 256
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.03
    reject_weight: float = 6.0
    num_blocks: int = 3
    seed: int = 0
    checkpoint_every: int = 100  # steps
    label: str = "label"
    align: str = "pre"
    standardize: bool = True  # inputs standardized with the training features' mean / std (head.py)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.reject_weight <= 0:
            raise InputError("epochs, batch_size, lr and reject_weight must be positive")


@dataclass
class TrainState:
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)  # per checkpoint / epoch: loss, val
    seconds: float = 0.0


def _lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    warm = max(1, int(total * cfg.warmup_ratio))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    frac = (step - warm) / max(1, total - warm)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))


def _load_ckpt(path: Path) -> dict:
    """A checkpoint as plain data: `weights_only=True` (tensors, numbers, strings, lists, dicts), so a crafted
    file cannot run code; a truncated or foreign file is one clear error."""
    try:
        saved = torch.load(path, weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise InputError(f"{path} is not a readable head checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:120]}); "
                         "delete it or use --no-resume") from None
    if not isinstance(saved, dict) or not {"head", "opt", "state", "config", "n_train", "hidden_size"} <= set(saved):
        raise InputError(f"{path} is not a head checkpoint (missing keys); delete it or use --no-resume")
    return saved


def _save_ckpt(path: Path, head, opt, state: TrainState, cfg: TrainConfig, n_train: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"head": head.state_dict(), "opt": opt.state_dict(), "state": asdict(state), "config": asdict(cfg),
                "n_train": n_train, "hidden_size": head.hidden_size}, tmp)
    os.replace(tmp, path)


def train_head(train: Dataset, cfg: TrainConfig, work_dir: str | os.PathLike, val: Dataset | None = None,
               resume: bool = True, stop_after: int | None = None, progress: bool = False,
               log: Callable[[str], None] = print) -> tuple[AcceptanceHead, TrainState]:
    """Train (or resume training) a head; checkpoints go to `work_dir/checkpoint.pt` every
    `cfg.checkpoint_every` steps and at the end. `stop_after`: stop (after checkpointing) once this many
    steps are done in total -- used to test interruption."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / CHECKPOINT
    N, H = train.features.shape
    if N == 0:
        raise InputError("no training positions")
    steps_per_epoch = math.ceil(N / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    torch.manual_seed(cfg.seed)
    head = AcceptanceHead(H, cfg.num_blocks)
    if cfg.standardize:
        head.set_normalization(train.features)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = TrainState()
    if resume and ckpt.is_file():
        saved = _load_ckpt(ckpt)
        keys = ("epochs", "batch_size", "lr", "weight_decay", "warmup_ratio", "reject_weight", "num_blocks", "seed",
                "label", "align", "standardize")
        diff = [k for k in keys if saved["config"].get(k) != getattr(cfg, k)]
        if diff or saved["n_train"] != N or saved["hidden_size"] != H:
            raise InputError(f"{ckpt} belongs to a run with other settings or data ({', '.join(diff) or 'data size'}); "
                             "use another --work-dir or --no-resume")
        head.load_state_dict(saved["head"])
        opt.load_state_dict(saved["opt"])
        state = TrainState(**saved["state"])
        log(f"resumed from {ckpt} at step {state.step}/{total}")
    if state.step >= total:
        return head, state
    t0 = time.perf_counter() - state.seconds
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  disable=not progress) as bar:
        task = bar.add_task("training", total=total, completed=state.step)
        # an interruption loses at most the steps since the last checkpoint (every cfg.checkpoint_every steps)
        _loop(head, opt, train, val, cfg, state, ckpt, t0, total, steps_per_epoch, N, stop_after, bar, task, log)
    head.eval()
    return head, state


def _loop(head, opt, train, val, cfg, state, ckpt, t0, total, steps_per_epoch, N, stop_after, bar, task, log):
    running: list[float] = []
    while state.step < total:
        epoch, b = divmod(state.step, steps_per_epoch)
        g = torch.Generator().manual_seed(cfg.seed * 7919 + epoch)
        perm = torch.randperm(N, generator=g)
        idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
        head.train()
        for group in opt.param_groups:
            group["lr"] = _lr_at(state.step, total, cfg)
        loss = weighted_soft_bce(head(train.features[idx].float()), train.labels[idx], cfg.reject_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state.step += 1
        running.append(float(loss.detach()))
        bar.advance(task)
        end_epoch = state.step % steps_per_epoch == 0
        if state.step % cfg.checkpoint_every == 0 or end_epoch or state.step == total:
            rec: dict[str, Any] = {"step": state.step, "epoch": state.step / steps_per_epoch,
                                   "train_loss": sum(running) / len(running)}
            running = []
            if val is not None and len(val) and (end_epoch or state.step == total):
                with torch.no_grad():
                    vl = torch.cat([head(val.features[i : i + 4096].float()) for i in range(0, len(val), 4096)])
                    rec["val_loss"] = float(weighted_soft_bce(vl, val.labels, cfg.reject_weight))
                    from specdec.head.evaluate import weighted_auc

                    rec["val_auc"] = weighted_auc(vl.float().softmax(-1)[:, 1], val.labels)
            state.history.append(rec)
            state.seconds = time.perf_counter() - t0
            _save_ckpt(ckpt, head, opt, state, cfg, N)
            if end_epoch or state.step == total:
                msg = f"epoch {rec['epoch']:.0f}: step {state.step}/{total}, train loss {rec['train_loss']:.4f}"
                if "val_loss" in rec:
                    msg += f", val loss {rec['val_loss']:.4f}, val AUC {rec['val_auc']:.3f}"
                log(msg)
        if stop_after is not None and state.step >= stop_after:
            if state.step % cfg.checkpoint_every and not (state.step % steps_per_epoch == 0):
                state.seconds = time.perf_counter() - t0
                _save_ckpt(ckpt, head, opt, state, cfg, N)
            break
