"""Fine-tuning a masked LM through its MLM head (answer-token loss), or a classification head on the
same encoder as the baseline, with one training loop: AdamW, linear warm-up then linear decay,
gradient clipping, seeds, progress bars, atomic checkpoints and bit-exact resumption.

MLM head ("It's All in The [MASK]"): the prompt ends in the answer slot's mask(s); the loss is the
cross-entropy of the label's first verbalizer word at those masks only. Optional "dummy MLM" mix
(as published for ModernBERT-Large-Instruct): a fraction `dummy_fraction` (0.2) of the examples
also get `dummy_mask_ratio` (0.3) of their other tokens replaced by the mask token and labelled as
the mask token itself; their answer mask keeps its answer label.

Checkpoint layout under `out_dir`: `ckpt-<step>/{model.safetensors, optim.pt, state.json}` written
to a temporary folder then renamed, and `latest.json` (replaced atomically) naming the newest one.
"""
from __future__ import annotations

import copy
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from mlm_generate.models import MLM, load_mlm
from mlm_generate.templates import PromptTemplate, Verbalizer, get_template
from specdec.errors import DataError, InputError, SpecDecError
from specdec.jsonl import write_json_atomic


class CheckpointError(SpecDecError):
    """A checkpoint folder is missing, incomplete, or from a different run configuration."""


@dataclass(frozen=True)
class FinetuneConfig:
    head: str = "mlm"  # mlm | cls
    epochs: float = 2.0
    max_steps: int = 0  # > 0 overrides epochs
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    max_length: int = 128
    seed: int = 0
    dummy_mlm: bool = False
    dummy_fraction: float = 0.2
    dummy_mask_ratio: float = 0.3
    checkpoint_every: int = 0  # steps; 0 = only at the end
    keep_checkpoints: int = 2
    eval_batch_size: int = 64
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.head not in ("mlm", "cls"):
            raise InputError(f"head must be 'mlm' or 'cls', got {self.head!r}")
        if self.batch_size < 1 or self.lr <= 0 or self.epochs <= 0 and self.max_steps <= 0:
            raise InputError("batch_size >= 1, lr > 0 and a positive epochs or max_steps are required")
        if not 0 <= self.warmup_ratio < 1 or not 0 <= self.dummy_fraction <= 1 or not 0 < self.dummy_mask_ratio < 1:
            raise InputError("warmup_ratio in [0, 1), dummy_fraction in [0, 1], dummy_mask_ratio in (0, 1)")


@dataclass(frozen=True)
class LabeledExample:
    text: str
    label: int
    choices: tuple[str, ...] | None = None


def load_tsv(path: str | os.PathLike, limit: int | None = None) -> list[LabeledExample]:
    """`sentence<TAB>label` lines (SST-2 as shipped in /work/shared/data/sst2)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p} does not exist: pass a `sentence<TAB>label` file")
    from specdec.validate import read_utf8

    out = []
    for n, line in enumerate(read_utf8(p).splitlines(), 1):
        if not line.strip():
            continue
        text, _, lab = line.rstrip("\n").rpartition("\t")
        if not text or not lab.strip().lstrip("-").isdigit():
            raise DataError(f"{p}:{n}: expected `sentence<TAB>integer label`, got {line[:80]!r}")
        out.append(LabeledExample(text=text, label=int(lab)))
        if limit and len(out) >= limit:
            break
    return out


@dataclass
class FinetuneResult:
    config: dict
    steps: int
    seconds: float
    losses: list[tuple[int, float]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    resumed_from: int | None = None
    final_dir: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class _Trainer:
    def __init__(self, mlm: MLM, labels: Verbalizer, cfg: FinetuneConfig, template: PromptTemplate) -> None:
        self.cfg, self.labels, self.template = cfg, labels, template
        self.tok = mlm.tokenizer
        self.mask_id = mlm.mask_id
        torch.manual_seed(cfg.seed)  # head initialisation and dropout stream
        if cfg.head == "mlm":
            self.mlm = MLM(model=copy.deepcopy(mlm.model), tokenizer=mlm.tokenizer, name=mlm.name, source=mlm.source)
            self.model = self.mlm.model
            seqs = labels.encode(self.tok)
            self.answer = [s[0] for s in seqs]  # each label's first word: the training target
            if len({len(a) for a in self.answer}) != 1:
                raise InputError("MLM-head fine-tuning needs every label's first verbalizer word to have the same "
                                 f"number of tokens (got {[len(a) for a in self.answer]}); otherwise the number of "
                                 "masks gives the answer away")
            self.n_masks = len(self.answer[0])
        else:
            from transformers import AutoModelForSequenceClassification  # noqa: PLC0415

            conf = copy.deepcopy(mlm.model.config)
            conf.num_labels = len(labels.labels)
            model = AutoModelForSequenceClassification.from_config(conf)
            missing, unexpected = model.base_model.load_state_dict(mlm.model.base_model.state_dict(), strict=False)
            if unexpected or any("pooler" not in k for k in missing):
                raise InputError(f"encoder weights do not fit the classification model: missing {missing}, "
                                 f"unexpected {unexpected}")
            self.model = model
        self.special = torch.tensor(sorted(set(getattr(self.tok, "all_special_ids", []) or [])), dtype=torch.long)

    # --------------------------------------------------------------- batches
    def _choices(self, ex: LabeledExample):
        return ex.choices if ex.choices is not None else tuple(w[0].strip() for w in self.labels.words)

    def encode(self, batch: Sequence[LabeledExample], gen: torch.Generator | None):
        tok, cfg = self.tok, self.cfg
        if cfg.head == "cls":
            texts = [ex.text if ex.choices is None else self.template.body.format(
                text=ex.text, choices="\n".join(self.template.choice_line.format(letter=chr(65 + i), choice=c)
                                                for i, c in enumerate(ex.choices))) for ex in batch]
            enc = tok(texts, padding=True, truncation=True, max_length=cfg.max_length, return_tensors="pt")
            return enc["input_ids"], enc["attention_mask"], torch.tensor([ex.label for ex in batch])
        prompts = [self.template.render(tok, ex.text, self._choices(ex), n_masks=self.n_masks) for ex in batch]
        side = tok.truncation_side
        tok.truncation_side = "left"
        try:
            enc = tok(prompts, padding=True, truncation=True, max_length=cfg.max_length, return_tensors="pt")
        finally:
            tok.truncation_side = side
        ids, attn = enc["input_ids"], enc["attention_mask"]
        is_mask = ids == self.mask_id
        if not bool((is_mask.sum(1) == self.n_masks).all()):
            raise InputError(f"a prompt lost its answer slot or contains {tok.mask_token!r}; check the template")
        labels = torch.full_like(ids, -100)
        pos = is_mask.nonzero()[:, 1].view(len(batch), self.n_masks)
        target = torch.tensor([self.answer[ex.label] for ex in batch], dtype=torch.long)
        labels[torch.arange(len(batch))[:, None], pos] = target
        if cfg.dummy_mlm and gen is not None:
            ids = ids.clone()
            pick = torch.rand(len(batch), generator=gen) < cfg.dummy_fraction
            cand = (attn == 1) & ~is_mask & ~torch.isin(ids, self.special)
            drop = (torch.rand(ids.shape, generator=gen) < cfg.dummy_mask_ratio) & cand & pick[:, None]
            ids[drop] = self.mask_id
            labels[drop] = self.mask_id
        return ids, attn, labels

    def loss(self, ids, attn, labels) -> torch.Tensor:
        if self.cfg.head == "cls":
            logits = self.model(input_ids=ids, attention_mask=attn).logits
            return torch.nn.functional.cross_entropy(logits.float(), labels)
        where = labels != -100
        logits = self.mlm.logits_at(ids, attn, where)
        return torch.nn.functional.cross_entropy(logits.float(), labels[where])

    @torch.no_grad()
    def predict(self, data: Sequence[LabeledExample]) -> torch.Tensor:
        self.model.eval()
        preds = []
        for i in range(0, len(data), self.cfg.eval_batch_size):
            batch = data[i:i + self.cfg.eval_batch_size]
            if self.cfg.head == "cls":
                ids, attn, _ = self.encode(batch, None)
                preds.append(self.model(input_ids=ids, attention_mask=attn).logits.argmax(-1))
            else:
                ids, attn, labels = self.encode(batch, None)
                where = labels != -100
                lp = torch.log_softmax(self.mlm.logits_at(ids, attn, where).float(), -1).view(len(batch), self.n_masks, -1)
                ans = torch.tensor(self.answer, dtype=torch.long)  # (L, n_masks)
                score = torch.stack([lp[:, j, ans[:, j]] for j in range(self.n_masks)], 0).sum(0)  # (B, L)
                preds.append(score.argmax(-1))
        return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)

    def accuracy(self, data: Sequence[LabeledExample]) -> float:
        if not data:
            return float("nan")
        gold = torch.tensor([ex.label for ex in data])
        return float((self.predict(data) == gold).float().mean())


def _schedule(total: int, warmup: int):
    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))
    return f


def _save_checkpoint(out: Path, step: int, model, optim, sched, state: dict, keep: int) -> None:
    from safetensors.torch import save_model  # noqa: PLC0415

    name = f"ckpt-{step:07d}"
    final = out / name
    tmp = out / f".{name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))
    torch.save({"optim": optim.state_dict(), "sched": sched.state_dict(), "rng": torch.get_rng_state()},
               tmp / "optim.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    write_json_atomic(out / "latest.json", {"checkpoint": name, "step": step})
    ckpts = sorted(p for p in out.glob("ckpt-*") if p.is_dir())
    for old in ckpts[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(out: Path, model, optim, sched, cfg: FinetuneConfig) -> dict | None:
    from safetensors.torch import load_model  # noqa: PLC0415

    latest = out / "latest.json"
    if not latest.is_file():
        return None
    try:
        name = json.loads(latest.read_text())["checkpoint"]
        ck = out / name
        if not isinstance(name, str) or "/" in name or "\\" in name or name in ("", ".", "..") \
                or ck.resolve().parent != out.resolve():  # a crafted latest.json may not point outside --out
            raise CheckpointError(f"{latest} names {name!r}, which is not a checkpoint folder inside {out}; "
                                  f"delete {out} or pass a new --out")
        state = json.loads((ck / "state.json").read_text())
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{latest} names an unreadable checkpoint ({e}); delete {out} or pass a new --out") from e
    want = {k: v for k, v in asdict(cfg).items() if k not in ("checkpoint_every", "keep_checkpoints", "log_every",
                                                               "eval_batch_size")}
    have = {k: state["config"].get(k) for k in want}
    if have != want:
        diff = {k: (have[k], want[k]) for k in want if have[k] != want[k]}
        raise CheckpointError(f"checkpoint {ck} was made with other settings {diff}: use another --out to start over")
    load_model(model, str(ck / "model.safetensors"))
    blob = torch.load(ck / "optim.pt", weights_only=True)
    optim.load_state_dict(blob["optim"])
    sched.load_state_dict(blob["sched"])
    torch.set_rng_state(blob["rng"])
    return state


def finetune(mlm: MLM | str, train: Sequence[LabeledExample], labels: Verbalizer | Sequence[str] | dict,
             config: FinetuneConfig = FinetuneConfig(), out_dir: str | os.PathLike | None = None, *,
             eval_sets: dict[str, Sequence[LabeledExample]] | None = None,
             template: PromptTemplate | str | None = "sentiment", resume: bool = True, progress: bool = True,
             stop_after: int | None = None, export: bool = True) -> FinetuneResult:
    """Train, checkpoint every `config.checkpoint_every` steps (and at the end), evaluate accuracy on
    `eval_sets`. With `resume` an existing `out_dir/latest.json` is continued bit-exactly.
    `stop_after` halts after that many steps in total (simulates an interruption)."""
    from tqdm.auto import tqdm  # noqa: PLC0415

    cfg = config
    if not train:
        raise DataError("no training examples")
    verb = labels if isinstance(labels, Verbalizer) else Verbalizer.of(labels)
    for ex in train:
        if not 0 <= ex.label < len(verb.labels):
            raise DataError(f"label {ex.label} out of range for labels {list(verb.labels)}")
    mlm = mlm if isinstance(mlm, MLM) else load_mlm(mlm)
    tr = _Trainer(mlm, verb, cfg, get_template(template))
    model = tr.model
    per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = cfg.max_steps if cfg.max_steps > 0 else max(1, int(round(cfg.epochs * per_epoch)))
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in n.lower() else decay).append(p)
    optim = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                               {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, _schedule(total, int(cfg.warmup_ratio * total)))
    out = Path(out_dir) if out_dir is not None else None
    step, losses, resumed = 0, [], None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        st = _load_checkpoint(out, model, optim, sched, cfg) if resume else None
        if st is not None:
            step, losses, resumed = st["step"], [tuple(x) for x in st["losses"]], st["step"]
    t0 = time.perf_counter()
    model.train()
    bar = tqdm(total=total, initial=step, disable=not progress, desc=f"finetune[{cfg.head}]", leave=False)
    end = total if stop_after is None else min(total, stop_after)

    def state() -> dict:
        return {"step": step, "total": total, "config": asdict(cfg), "losses": losses, "labels": list(verb.labels)}

    while step < end:
        epoch, k = divmod(step, per_epoch)
        perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))
        batch = [train[i] for i in perm[k * cfg.batch_size:(k + 1) * cfg.batch_size].tolist()]
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        ids, attn, lab = tr.encode(batch, gen)
        loss = tr.loss(ids, attn, lab)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optim.step()
        sched.step()
        step += 1
        lv = loss.detach().item()
        if step % cfg.log_every == 0 or step == 1:
            losses.append((step, lv))
        bar.update(1)
        bar.set_postfix(loss=f"{lv:.4f}")
        if out is not None and ((cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or step == end):
            _save_checkpoint(out, step, model, optim, sched, state(), cfg.keep_checkpoints)
    bar.close()
    seconds = time.perf_counter() - t0
    res = FinetuneResult(config=asdict(cfg), steps=step, seconds=seconds, losses=losses, resumed_from=resumed)
    res.model = model  # type: ignore[attr-defined]  # the trained module, for callers in Python
    res.trainer = tr  # type: ignore[attr-defined]
    if step < total:
        return res  # interrupted on purpose: no evaluation, no export
    for name, data in (eval_sets or {}).items():
        res.metrics[f"{name}_accuracy"] = tr.accuracy(data)
    if out is not None and export:
        final = out / "final"
        tmp = out / f".final.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        mlm.tokenizer.save_pretrained(tmp)
        (tmp / "finetune.json").write_text(json.dumps(res.to_dict(), indent=2))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        res.final_dir = str(final)
    return res
