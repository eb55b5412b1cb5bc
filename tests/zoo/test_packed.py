"""Packed int4 / int8 weights built from a GGUF's own codes (specdec.zoo.packed): the packed model reproduces
ggml's dequantization of the file, is cached and recorded in the manifest, and refuses a wrong mapping."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gguf_helpers import dequantized_model, gguf_tensor_types, make_gguf_friendly_model, write_gguf
from specdec.errors import ModelLoadError
from specdec.weights import quant
from specdec.zoo import MANIFEST
from specdec.zoo.packed import build_packed, ensure_packed, load_packed, packed_path


def _folder(tmp_path, qtype: str, seed: int = 0, kind: str = "qwen2"):
    """A pulled-model folder as the zoo makes it: bf16 safetensors of the GGUF's dequantized weights,
    model.gguf, a manifest."""
    model = make_gguf_friendly_model(seed=seed, kind=kind)
    folder = tmp_path / f"m-{qtype}-{kind}"
    folder.mkdir()
    gguf = write_gguf(model, folder / "model.gguf", qtype=qtype)
    ref = dequantized_model(model, gguf).to(torch.bfloat16)  # what transformers' GGUF loader would make
    ref.save_pretrained(folder)
    (folder / MANIFEST).write_text(json.dumps({"name": folder.name, "files": {}}))
    return folder, dequantized_model(model, gguf).float()


@pytest.mark.parametrize("qtype,bits", [("Q4_K", 4), ("Q4_0", 4), ("Q6_K", 6), ("Q8_0", 8)])
def test_packed_codes_are_the_ggufs_values(tmp_path, qtype, bits):
    folder, ref = _folder(tmp_path, qtype)
    tensors, report = build_packed(folder / "model.gguf", folder, "int4")
    assert report and all(v == f"{qtype} -> {bits}-bit" for v in report.values()), report
    for name, lin in [(n, m) for n, m in ref.named_modules() if isinstance(m, torch.nn.Linear)]:
        got = quant.QWeight.from_tensors(tensors, name).unpack().dequantize()
        want = lin.weight.data  # ggml's dequantization, float32
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-7, atol=1e-7 * float(want.abs().max()))


def test_int8_mode_requantizes_4_bit_tensors_within_half_a_step(tmp_path):
    folder, ref = _folder(tmp_path, "Q4_K")
    tensors, report = build_packed(folder / "model.gguf", folder, "int8")
    assert set(report.values()) == {"Q4_K -> rtn 8-bit"}
    w = ref.model.layers[0].mlp.up_proj.weight.data.to(torch.bfloat16).float()
    got = quant.QWeight.from_tensors(tensors, "model.layers.0.mlp.up_proj").unpack().dequantize()
    step = w.reshape(w.shape[0], -1, 32).abs().amax(-1) / 127
    assert ((got - w).abs().reshape(w.shape[0], -1, 32).amax(-1) <= 0.51 * step + 1e-6).all()


def test_ensure_packed_builds_once_records_it_and_the_model_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECDEC_CACHE", str(tmp_path / "cache"))
    folder, ref = _folder(tmp_path, "Q4_K", seed=1)
    said = []
    path = ensure_packed("tiny", folder, "int4", say=said.append)
    assert path == packed_path(folder, "int4") and path.is_file() and any("building int4" in s for s in said)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["files"][path.name]["size"] == path.stat().st_size and "int4" in manifest["packed"]
    said.clear()
    assert ensure_packed("tiny", folder, "int4", say=said.append) == path and said == []  # cached: no rebuild
    tensors = load_packed(path)  # views of the mapped file: the same tensors as safetensors' own loader
    from safetensors.torch import load_file

    want_t = load_file(str(path))
    assert set(tensors) == set(want_t) and all(torch.equal(tensors[k], want_t[k]) for k in want_t)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    q = quant.quantize_model(model, tensors, kernel="reference")
    quant.fuse_projections(q)
    assert quant.to_hugepages(q) > 0
    bufs = [b for m in q.modules() if isinstance(m, quant.QLinear) for b in (m.codes, m.sc, m.mn, m.d, m.dm)]
    assert all(b.data_ptr() % 64 == 0 for b in bufs)  # the kernel's loads stay in cache lines
    assert quant.to_hugepages(q) == 0  # everything is in the arena now: nothing copied twice
    quant.compute_in_float32(q)
    ids = torch.randint(3, 64, (1, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got, want = q(ids).logits, ref(ids).logits
    assert float((got - want).abs().max() / want.abs().max()) < 0.05  # W4A8: activations quantized per 32
    assert float((got.argmax(-1) == want.argmax(-1)).float().mean()) >= 0.8


def test_a_wrong_tensor_mapping_is_refused(tmp_path):
    """The bf16 copy and the GGUF must agree: a GGUF of another model is one clear error, not bad weights."""
    folder, _ = _folder(tmp_path, "Q4_0", seed=2)
    write_gguf(make_gguf_friendly_model(seed=3), folder / "model.gguf", qtype="Q4_0")  # other weights
    with pytest.raises(ModelLoadError, match="differ from the bf16 copy"):
        build_packed(folder / "model.gguf", folder, "int4")


def test_llama_rows_are_unpermuted(tmp_path):
    """llama GGUFs store q/k rows permuted for llama.cpp's rope; the packed weights are in HF's order."""
    folder, ref = _folder(tmp_path, "Q4_0", kind="llama")
    assert gguf_tensor_types(folder / "model.gguf")["blk.0.attn_q.weight"] == "Q4_0"
    tensors, _ = build_packed(folder / "model.gguf", folder, "int4")
    got = quant.QWeight.from_tensors(tensors, "model.layers.0.self_attn.q_proj").unpack().dequantize()
    torch.testing.assert_close(got, ref.model.layers[0].self_attn.q_proj.weight.data, rtol=1e-6, atol=1e-6)


def test_a_killed_packings_temp_files_are_removed_and_a_new_one_leaves_none(tmp_path, monkeypatch):
    """SIGKILL mid-packing used to leave safetensors' own NAME.tmpXXXX (555 MB for the 1.5B) forever: the pack
    is now written inside a temp folder the cleanup knows, and stale ones go under the pull lock."""
    monkeypatch.setenv("SPECDEC_CACHE", str(tmp_path / "cache"))
    folder, _ = _folder(tmp_path, "Q4_K", seed=2)
    stale = folder / ".weights-int4.safetensors.tmp-424242"
    stale.mkdir()
    (stale / "weights-int4.safetensors.tmpXyZ").write_bytes(b"z" * 4096)
    said = []
    path = ensure_packed("tiny", folder, "int4", say=said.append)
    assert path.is_file() and not stale.exists() and any("interrupted packing" in s for s in said)
    assert [p.name for p in folder.iterdir() if ".tmp" in p.name] == []


def test_packed_weights_are_not_named_like_model_weights_and_the_old_name_is_replaced(tmp_path, monkeypatch):
    """vLLM (and any loader) reads every *.safetensors of a model folder: with `weights-int4.safetensors` there it
    failed on "lm_head.codes". The packed file is `weights-int4.packed`; an old-named one is removed, with its
    manifest entry, and rebuilt under the new name."""
    import json

    from specdec.zoo.store import MANIFEST

    monkeypatch.setenv("SPECDEC_CACHE", str(tmp_path / "cache"))
    folder, _ = _folder(tmp_path, "Q4_K", seed=3)
    legacy = folder / "weights-int4.safetensors"
    legacy.write_bytes(b"old")
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"][legacy.name] = {"size": 3, "sha256": "0" * 64}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    said = []
    path = ensure_packed("tiny", folder, "int4", say=said.append)
    assert path.name == "weights-int4.packed" and path.is_file() and not legacy.exists()
    assert not [p for p in folder.glob("*.safetensors") if p.name != "model.safetensors"]
    files = json.loads((folder / MANIFEST).read_text())["files"]
    assert legacy.name not in files and path.name in files
    assert any("removing weights-int4.safetensors" in s for s in said)
