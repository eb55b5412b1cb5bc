"""The SpecDec++ acceptance head: draft hidden state (H,) -> P(the target accepts the drafted token).

    x -> (x - mu) / sigma -> x + SiLU(W_1 x + b_1) -> ... (L residual blocks, own weights) -> Linear(H, 2)
      -> softmax[1]

mu, sigma: fixed per-dimension statistics of the training features (buffers saved with the weights; 0 and
1 = off). Not in the paper: the draft's final hidden states have a few dimensions ~20x larger than the
rest, which on our small CPU data set cost ~0.03 AUC and most of the calibration (docs/specdecpp.md).

Saved as one safetensors file. The file's string metadata records the draft model the head was trained
on (its *identity*: name, architecture numbers and a fingerprint of some of its weights); `load_head`
refuses a head whose identity does not match the draft it is asked to serve.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from specdec.errors import InputError

FORMAT = "specdec-acceptance-head"
FORMAT_VERSION = "1"
BUNDLED_DIR = Path(__file__).parent / "heads"
# draft zoo name -> the head shipped for it (trained with the bundled target noted in its metadata)
BUNDLED = {"qwen2.5-coder-0.5b-instruct": BUNDLED_DIR / "qwen2.5-coder-0.5b-to-1.5b.safetensors"}
# not in the paper: the head also sees the draft's own confidence (log max q), see docs/specdecpp.md
BUNDLED_CONF = {"qwen2.5-coder-0.5b-instruct": BUNDLED_DIR / "qwen2.5-coder-0.5b-to-1.5b-conf.safetensors"}


class HeadMismatchError(InputError):
    """A head was trained for another draft model (or has another shape)."""


class AcceptanceHead(nn.Module):
    """L residual blocks ``x + SiLU(Linear(x))`` then ``Linear(H, 2)``; ``accept_prob`` = softmax[..., 1]."""

    def __init__(self, hidden_size: int, num_blocks: int = 3) -> None:
        super().__init__()
        if hidden_size < 1 or num_blocks < 0:
            raise InputError(f"bad head shape: hidden_size={hidden_size}, num_blocks={num_blocks}")
        self.hidden_size = hidden_size
        self.num_blocks = num_blocks
        self.blocks = nn.ModuleList(nn.Linear(hidden_size, hidden_size) for _ in range(num_blocks))
        self.out = nn.Linear(hidden_size, 2)
        self.register_buffer("in_mean", torch.zeros(hidden_size))
        self.register_buffer("in_scale", torch.ones(hidden_size))

    @torch.no_grad()
    def set_normalization(self, features: torch.Tensor, eps: float = 1e-3) -> None:
        """Standardize inputs with the mean / std of `features` (N, H)."""
        f = features.float()
        self.in_mean.copy_(f.mean(0))
        self.in_scale.copy_(1.0 / (f.std(0) + eps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., H) any float dtype -> logits (..., 2) in the head's dtype."""
        x = (x.to(self.out.weight.dtype) - self.in_mean) * self.in_scale
        for lin in self.blocks:
            x = x + F.silu(lin(x))
        return self.out(x)

    @torch.no_grad()
    def accept_prob(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., H) -> P(accept) (...,) float32."""
        return self.forward(x).float().softmax(-1)[..., 1]


def deweight(p: torch.Tensor | float, reject_weight: float | None):
    """Undo the reject-class weight of the training loss. With weight w on the reject class, the loss is
    minimised at P_w = y / (y + w (1 - y)) for a true acceptance probability y, so y = w P_w / (1 - P_w + w P_w).
    The head's raw output P_w ranks positions as well as y does (same AUC) but is biased low by design; the
    policy multiplies the de-weighted probabilities so that 1 - prod is P(at least one rejection)."""
    if not reject_weight or reject_weight == 1:
        return p
    w = float(reject_weight)
    return w * p / (1 - p + w * p)


# ----------------------------------------------------------------------------------------- identity
def _fingerprint(model: nn.Module) -> str:
    """sha256 (16 hex) of a few of the model's weights, in float32: the final norm, the first layer's
    input norm and 64 evenly spaced rows of the input embedding. Stable across bf16/fp32 loads of the
    same checkpoint (the float32 values of bf16 weights are exact)."""
    h = hashlib.sha256()
    inner = getattr(model, "model", model)
    parts: list[torch.Tensor] = []
    norm = getattr(inner, "norm", None)
    if norm is not None and getattr(norm, "weight", None) is not None:
        parts.append(norm.weight)
    layers = getattr(inner, "layers", None)
    if layers is not None and len(layers) and hasattr(layers[0], "input_layernorm"):
        parts.append(layers[0].input_layernorm.weight)
    emb = model.get_input_embeddings().weight if hasattr(model, "get_input_embeddings") else None
    if emb is not None:
        idx = torch.linspace(0, emb.shape[0] - 1, 64).long()
        parts.append(emb[idx])
    for p in parts:
        t = p.detach().to(torch.bfloat16).float().cpu().contiguous()  # bf16-rounded: same for fp32/bf16 loads
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def draft_identity(model: nn.Module, name: str | None = None) -> dict[str, Any]:
    """What identifies a draft model: its name (as given), architecture numbers and a weight fingerprint."""
    cfg = model.config
    return {
        "name": name or getattr(cfg, "_name_or_path", "") or "",
        "model_type": cfg.model_type,
        "hidden_size": int(cfg.hidden_size),
        "num_hidden_layers": int(cfg.num_hidden_layers),
        "vocab_size": int(cfg.vocab_size),
        "fingerprint": _fingerprint(model),
    }


def _short_name(name: str) -> str:
    return os.path.basename(str(name).rstrip("/")) if name else ""


def check_identity(recorded: dict[str, Any], actual: dict[str, Any]) -> None:
    """Raise HeadMismatchError when `actual` (a draft's identity, possibly partial) contradicts `recorded`.
    Compared: architecture numbers and the weight fingerprint when both sides have them; the name only
    when no fingerprint is available on one side."""
    diffs = []
    for key in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size", "fingerprint"):
        a, b = recorded.get(key), actual.get(key)
        if a is not None and b is not None and a != b:
            diffs.append(f"{key}: head {a!r} vs draft {b!r}")
    if recorded.get("fingerprint") is None or actual.get("fingerprint") is None:
        a, b = _short_name(recorded.get("name", "")), _short_name(actual.get("name", ""))
        if a and b and a != b:
            diffs.append(f"name: head {a!r} vs draft {b!r}")
    if diffs:
        raise HeadMismatchError(
            f"this acceptance head was trained for draft {recorded.get('name')!r}, not for "
            f"{actual.get('name')!r} ({'; '.join(diffs)}); train one for this draft with "
            "`specdec head build-data` + `specdec head train`, or pass the matching head=PATH"
        )


# ----------------------------------------------------------------------------------------- files
@dataclass
class HeadFile:
    head: AcceptanceHead
    identity: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)  # eos ids, threshold, training info...
    path: str | None = None


def save_head(path: str | os.PathLike, head: AcceptanceHead, identity: dict[str, Any],
              meta: dict[str, Any] | None = None, dtype: torch.dtype = torch.bfloat16) -> Path:
    """Write the head's weights (in `dtype`) and its metadata to `path` (atomically)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to(torch.float32 if k.startswith("in_") else dtype).contiguous()  # stats stay fp32
               for k, v in head.state_dict().items()}
    md = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "hidden_size": str(head.hidden_size),
        "num_blocks": str(head.num_blocks),
        "draft": json.dumps(identity, sort_keys=True),
        "meta": json.dumps(meta or {}, sort_keys=True),
    }
    import shutil
    import tempfile

    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))  # private: no name to hijack
    try:
        tmp = tmp_dir / path.name
        save_file(tensors, str(tmp), metadata=md)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return path


def load_head(path: str | os.PathLike, draft: nn.Module | dict[str, Any] | None = None,
              draft_name: str | None = None) -> HeadFile:
    """Load a head. `draft`: the draft model (full identity check) or an identity dict (partial check);
    `draft_name` alone checks the name. The weights come back in float32."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError(f"acceptance head {str(path)!r} not found; train one with `specdec head train`")
    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
            if md.get("format") != FORMAT:
                raise InputError(f"{path} is not a specdec acceptance head (format {md.get('format')!r})")
            state = {k: f.get_tensor(k).float() for k in f.keys()}
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - not a safetensors file, or a damaged one: one line
        raise InputError(f"acceptance head {path} is not a readable safetensors file ({str(e)[:120]}); pass "
                         f"head=PATH to a file written by `specdec head train`") from None
    identity = json.loads(md.get("draft", "{}"))
    head = AcceptanceHead(int(md["hidden_size"]), int(md["num_blocks"]))
    head.load_state_dict(state, strict=False)  # files without in_mean / in_scale: no standardization
    missing = set(head.state_dict()) - set(state) - {"in_mean", "in_scale"}
    if missing:
        raise InputError(f"{path} lacks weights {sorted(missing)}")
    head.eval()
    actual: dict[str, Any] | None = None
    if isinstance(draft, nn.Module):
        actual = draft_identity(draft, draft_name)
    elif isinstance(draft, dict):
        actual = dict(draft)
    elif draft_name:
        actual = {"name": draft_name}
    if actual is not None:
        check_identity(identity, actual)
    return HeadFile(head=head, identity=identity, meta=json.loads(md.get("meta", "{}")), path=str(path))


def bundled_head(draft_name: str | None = None, conf: bool = False) -> Path | None:
    """The shipped head for a bundled draft (by zoo name or folder name), or None."""
    if draft_name is None:
        return None
    p = (BUNDLED_CONF if conf else BUNDLED).get(_short_name(draft_name))
    return p if p is not None and p.is_file() else None
