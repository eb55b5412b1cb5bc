"""Quantized weights of a pulled zoo model, built once from its GGUF and cached next to the bf16 copy.

    <cache>/<name>/model.gguf                  the GGUF as shipped (the llama.cpp runner reads it too)
    <cache>/<name>/weights-int4.packed    4-bit codes where the GGUF is 4-bit, 6-bit for Q6_K, 8-bit elsewhere
                                          (weights/quant.py)
    <cache>/<name>/weights-int8.packed    8-bit codes everywhere

The files are safetensors, named `.packed` so that loaders reading every `*.safetensors` of a model folder (vLLM:
seen failing on "lm_head.codes" when the folder held `weights-int4.safetensors`, the name before) see only the
bf16 model. A file of the old name is removed (and rebuilt under the new one) the first time it is needed.

Built on first use under the model's pull lock (about 10-30 s for the 1.5B), checked against the bf16
weights, and recorded in the manifest (size, sha256) so `specdec models verify` covers it.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from specdec.errors import ModelLoadError
from specdec.weights import quant
from specdec.zoo.catalog import cache_root
from specdec.jsonl import write_text_atomic
from specdec.zoo.sources import sha256_file
from specdec.zoo.store import GGUF_FILE, MANIFEST, TEMP_MARK, _pull_lock, leftovers, record_verified



def packed_name(weights: str) -> str:
    return f"weights-{weights}.packed"


def _legacy_name(weights: str) -> str:
    return f"weights-{weights}.safetensors"  # before stop 26: vLLM loaded it as part of the model


def _gguf_arch_map(reader):
    import gguf

    arch = reader.fields["general.architecture"].contents()
    n_blocks = int(reader.fields[f"{arch}.block_count"].contents())
    enum = next((a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == arch), None)
    if enum is None:
        raise ModelLoadError(f"GGUF architecture {arch!r} is unknown to the gguf library")
    return arch, gguf.get_tensor_name_map(enum, n_blocks)


def _unpermute_rows(n_head: int):
    """llama GGUFs store q/k rows permuted for llama.cpp's rope (convert_hf_to_gguf's `permute`): the
    index that takes GGUF rows back to HF order."""
    def inverse(rows: int) -> torch.Tensor:
        idx = torch.arange(rows)
        perm = idx.reshape(n_head, 2, rows // n_head // 2).swapaxes(1, 2).reshape(rows)  # gguf row i = hf row perm[i]
        inv = torch.empty_like(perm)
        inv[perm] = idx
        return inv
    return inverse


def build_packed(gguf_path: Path, bf16_dir: Path, weights: str, say=lambda msg: None) -> tuple[dict, dict]:
    """`QWeight` tensors for `quant.quantize_model` and a report {tensor: "SOURCE -> bits"}: the GGUF's own
    codes where they fit (4-bit types and Q6_K in int4 mode, Q8_0 / Q5_0 always), else 8-bit round-to-nearest
    (4-bit in int4-all mode) from the bf16 copy. Every tensor is checked against the bf16 copy before it is kept."""
    import gguf
    from safetensors import safe_open

    reader = gguf.GGUFReader(str(gguf_path))
    arch, tmap = _gguf_arch_map(reader)
    by_name = {t.name: t for t in reader.tensors}
    config = json.loads((bf16_dir / "config.json").read_text())
    out: dict[str, torch.Tensor] = {}
    report: dict[str, str] = {}
    with safe_open(str(bf16_dir / "model.safetensors"), framework="pt") as st:
        keys = set(st.keys())
        names = [k[: -len(".weight")] for k in sorted(keys)
                 if k.endswith(".weight") and k[: -len(".weight")].split(".")[-1] in quant.LINEAR_SUFFIXES]
        if "lm_head.weight" not in keys and config.get("tie_word_embeddings"):
            names.append("lm_head")
        for i, name in enumerate(names):
            src = f"{name}.weight" if f"{name}.weight" in keys else "model.embed_tokens.weight"
            w = st.get_tensor(src)  # (N, K) bf16
            base = tmap.get_name(name) if name != "lm_head" else "output"
            t = by_name.get(f"{base}.weight") or (by_name.get("token_embd.weight") if name == "lm_head" else None)
            qtype = t.tensor_type.name if t is not None else "none"
            N, K = w.shape
            four = weights.startswith("int4")
            exact = ((qtype in quant.INT4_TYPES and four) or (qtype in quant.INT6_TYPES and weights == "int4")
                     or (qtype in quant.INT8_TYPES and weights != "int4-all"))
            if exact:
                c = quant.gguf_codes(t.data, qtype, N, K)
                if arch == "llama" and name.split(".")[-1] in ("q_proj", "k_proj"):
                    heads = config["num_attention_heads"] if name.endswith("q_proj") else config.get(
                        "num_key_value_heads", config["num_attention_heads"])
                    c = c.rows(_unpermute_rows(heads)(N))
            else:
                c = quant.rtn_codes(w, 4 if weights == "int4-all" else 8)
            _check(name, w, c, exact)
            out.update(quant.pack(c).tensors(name))
            report[name] = f"{qtype} -> {'' if exact else 'rtn '}{c.bits}-bit"
            if (i + 1) % 32 == 0 or i + 1 == len(names):
                say(f"packing {weights}: {i + 1}/{len(names)} tensors")
    return out, report


def _check(name: str, w: torch.Tensor, c: quant.Codes, exact: bool) -> None:
    """Every 7th row of the packed weight against the bf16 copy: exact codes must round to it (one bf16 ulp:
    2^-7 of the value), round-to-nearest ones lie within 1% of the row's largest weight."""
    idx = torch.arange(0, w.shape[0], 7)
    got, ref = c.rows(idx).dequantize(), w[idx].float()
    if exact:
        bad = (got - ref).abs() > ref.abs() * 2.0 ** -7 + 1e-7
        err = f"{int(bad.sum())} of {bad.numel()} values differ by more than one bf16 ulp" if bad.any() else ""
    else:  # 8-bit: half a step of max/127; 4-bit: half a step of (max - min)/15 of a group
        rel = float(((got - ref).abs().amax(1) / ref.abs().amax(1).clamp_min(1e-12)).max())
        limit = 0.01 if c.bits == 8 else 0.08
        err = f"an error of {rel:.1%} of a row's largest weight" if rel > limit else ""
    if err:
        raise ModelLoadError(f"packing {name}: the packed weights differ from the bf16 copy ({err}): wrong "
                             f"tensor mapping or a corrupt GGUF")


def packed_path(folder: Path, weights: str) -> Path:
    return folder / packed_name(weights)


def ensure_packed(name: str, folder: Path, weights: str, cache_dir=None, say=lambda msg: None) -> Path:
    """The packed file of zoo model `name` (pulled at `folder`), built now if missing or made by another
    torch's packing; recorded in the manifest."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = packed_path(folder, weights)

    def current() -> bool:
        if not path.is_file():
            return False
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
        except Exception:  # noqa: BLE001 - an unreadable file is rebuilt
            return False
        return meta.get("format_version") == str(quant.FORMAT_VERSION)

    legacy = folder / _legacy_name(weights)
    if current() and not legacy.exists():
        return path
    with _pull_lock(cache_root(cache_dir), folder.name, say):
        if legacy.exists():  # its old name made it part of the model for vLLM / other loaders: gone, rebuilt below
            say(f"removing {legacy.name} (renamed {path.name}: a *.safetensors file in the model folder is read as "
                "part of the model by other loaders)")
            legacy.unlink()
            manifest_path = folder / MANIFEST
            manifest = json.loads(manifest_path.read_text())
            manifest.get("files", {}).pop(legacy.name, None)
            write_text_atomic(manifest_path, json.dumps(manifest, indent=2) + "\n")
        for stale in leftovers(folder):  # a killed packing's temp (under the lock: nobody else writes one now)
            say(f"removing {stale.name}, left by an interrupted packing")
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
        if current():
            return path
        gguf = folder / GGUF_FILE
        if not gguf.is_file():
            raise ModelLoadError(f"{name}: no {GGUF_FILE} in {folder} to build {weights} weights from (pulled by an "
                                 f"older version); run `specdec models pull {name} --force`")
        t0 = time.perf_counter()
        say(f"{name}: building {weights} weights from {gguf.name} (once; cached in {folder})")
        tensors, report = build_packed(gguf, folder, weights, say)
        # a temp FOLDER named as the cleanup knows: safetensors' own temp file (it writes NAME.tmpXXXX beside
        # the file it is asked for) lands inside it, so a SIGKILL leaves nothing the next run cannot find
        tmp_dir = folder / f".{path.name}{TEMP_MARK}{os.getpid()}"
        meta = {"format_version": str(quant.FORMAT_VERSION), "weights": weights,
                "torch": torch.__version__, "sources": json.dumps(report)}
        try:
            tmp_dir.mkdir()
            tmp = tmp_dir / path.name
            save_file(tensors, str(tmp), metadata=meta)
            tmp.chmod(0o644)
            os.replace(tmp, path)
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        manifest_path = folder / MANIFEST
        manifest = json.loads(manifest_path.read_text())
        manifest.setdefault("files", {})[path.name] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
        manifest.setdefault("packed", {})[weights] = {
            "seconds": round(time.perf_counter() - t0, 1), "torch": torch.__version__,
            "4-bit tensors": sum(v.endswith("4-bit") for v in report.values()),
            "6-bit tensors": sum(v.endswith("6-bit") for v in report.values()),
            "8-bit tensors": sum(v.endswith("8-bit") for v in report.values())}
        write_text_atomic(manifest_path, json.dumps(manifest, indent=2) + "\n")
        record_verified(folder, [path.name])
        say(f"{name}: {weights} weights ready in {time.perf_counter() - t0:.1f} s "
            f"({path.stat().st_size / 1e9:.2f} GB)")
    return path


SAFETENSORS_DTYPES = {"U8": torch.uint8, "I8": torch.int8, "I16": torch.int16, "I32": torch.int32,
                      "I64": torch.int64, "F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32}


def load_packed(path: Path) -> dict[str, torch.Tensor]:
    """The packed tensors as views of the file mapped copy-on-write: nothing is read until used, and
    `quant.to_hugepages` then copies each tensor once into 64-byte-aligned huge-page memory (the kernel's
    64-byte loads of a misaligned tensor each touch two cache lines: measured, the 1.5B's output layer 17.5 ms
    instead of 10 ms a token). Parsed here (an 8-byte header length, a JSON header, the data) because
    safetensors' own loader copies every tensor into fresh memory first."""
    import mmap

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        try:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n)) if 0 < n <= size - 8 else None
        except (ValueError, UnicodeDecodeError):
            header = None
        if not isinstance(header, dict):
            raise ModelLoadError(f"{path}: not a safetensors file (unreadable header); delete it to rebuild it")
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = SAFETENSORS_DTYPES[info["dtype"]]
            lo, hi = info["data_offsets"]
            shape = tuple(int(x) for x in info["shape"])
        except (KeyError, TypeError, ValueError):
            raise ModelLoadError(f"{path}: bad header entry for {name}; delete the file to rebuild it") from None
        count = int(np.prod(shape)) if shape else 1
        if not 0 <= lo <= hi <= size - base or hi - lo != count * torch.empty(0, dtype=dtype).element_size():
            raise ModelLoadError(f"{path}: {name} lies outside the file or has the wrong size; delete the file "
                                 f"to rebuild it")
        out[name] = torch.frombuffer(buf, dtype=dtype, count=count, offset=base + lo).view(shape) if count else \
            torch.empty(shape, dtype=dtype)
    return out
