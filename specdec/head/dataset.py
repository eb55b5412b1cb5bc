"""Reading SpecDec++ training data built by specdec.head.data: the shards of one or more data folders into
memory (`load_dataset`), and extra per-position features (`add_extra_features`)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch

from specdec.errors import DataError, InputError

MANIFEST = "manifest.json"
LABEL_KINDS = ("label", "label_expected", "label_greedy")
ALIGNS = ("pre", "post")
FOLDER_STRIDE = 1_000_000  # Dataset.prompt = folder index * FOLDER_STRIDE + prompt index in that folder


def load_manifest(out: Path) -> dict[str, Any] | None:
    f = out / MANIFEST
    if not f.is_file():
        return None
    try:
        return json.loads(f.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{f} is corrupt ({e.msg}); delete it to start over") from None


# ------------------------------------------------------------------------------------------- reading
@dataclass
class Dataset:
    features: torch.Tensor  # (N, H) bf16
    labels: torch.Tensor  # (N,) f32 (the chosen label kind)
    prompt: torch.Tensor  # (N,) int32: folder index * FOLDER_STRIDE + prompt index
    position: torch.Tensor  # (N,) int32
    manifest: dict[str, Any]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def split(self, val_fraction: float) -> tuple["Dataset", "Dataset"]:
        """By prompt: in each data folder, the last `val_fraction` of its prompts (by index) are held out."""
        val = torch.zeros(len(self), dtype=torch.bool)
        folder = self.prompt // FOLDER_STRIDE
        for f in torch.unique(folder):
            ids = torch.unique(self.prompt[folder == f])
            n_val = int(round(len(ids) * val_fraction))
            if n_val:
                val |= (folder == f) & (self.prompt >= ids[-n_val])
        return self._take(~val), self._take(val)

    def _take(self, m: torch.Tensor) -> "Dataset":
        return Dataset(self.features[m], self.labels[m], self.prompt[m], self.position[m], self.manifest)


EXTRA_FEATURES = ("top_logprob",)


@torch.no_grad()
def add_extra_features(ds: "Dataset", draft, names: list[str] | tuple[str, ...], batch: int = 512) -> "Dataset":
    """Append per-position features computed from the "pre" hidden states through the frozen draft's
    lm_head (they are the hidden states that produce q_t): "top_logprob" = log max_x q_t(x) at temperature 1,
    what `DraftStep.top_prob` carries at drafting time. Features become float32 (N, H + len(names))."""
    bad = [n for n in names if n not in EXTRA_FEATURES]
    if bad:
        raise InputError(f"unknown extra feature(s) {bad}; known: {', '.join(EXTRA_FEATURES)}")
    if not names:
        return ds
    cols = []
    for i in range(0, len(ds), batch):
        logq = draft.lm_head(ds.features[i : i + batch].to(draft.lm_head.weight.dtype)).float().log_softmax(-1)
        cols.append(logq.max(-1).values[:, None])
    extra = torch.cat(cols) if cols else torch.zeros(0, 1)
    return Dataset(torch.cat([ds.features.float(), extra], 1), ds.labels, ds.prompt, ds.position, ds.manifest)


def load_dataset(data_dir: str | os.PathLike | Iterable[str | os.PathLike], label: str = "label",
                 align: str = "pre", labelled_only: bool = True) -> Dataset:
    """Read the shards of one or more data folders (in shard order) into memory."""
    from safetensors.torch import load_file

    if label not in LABEL_KINDS:
        raise InputError(f"unknown label kind {label!r}; known: {', '.join(LABEL_KINDS)}")
    if align not in ALIGNS:
        raise InputError(f"unknown alignment {align!r}; known: {', '.join(ALIGNS)}")
    fkey = "features" if align == "pre" else "features_post"
    dirs = [data_dir] if isinstance(data_dir, (str, os.PathLike)) else list(data_dir)
    feats, labels, prompts, pos = [], [], [], []
    manifest: dict[str, Any] = {}
    for fi, d in enumerate(dirs):
        d = Path(d)
        m = load_manifest(d)
        if m is None:
            raise DataError(f"{d} has no {MANIFEST}; build it with `specdec head build-data`")
        if manifest and m["config"].get("draft_identity", {}).get("fingerprint") != \
                manifest["config"].get("draft_identity", {}).get("fingerprint"):
            raise DataError(f"{d} was built with another draft model than {dirs[0]}")
        manifest = manifest or m
        for name in sorted(m["shards"]):
            t = load_file(str(d / name))
            keep = t["mask"].bool() if labelled_only else torch.ones_like(t["mask"], dtype=torch.bool)
            feats.append(t[fkey][keep])
            labels.append(t[label][keep])
            prompts.append(t["prompt"][keep] + fi * FOLDER_STRIDE)  # prompt ids stay distinct across folders
            pos.append(t["position"][keep])
    if not feats:
        raise DataError(f"no finished shards in {', '.join(map(str, dirs))}")
    return Dataset(torch.cat(feats), torch.cat(labels), torch.cat(prompts), torch.cat(pos), manifest)
