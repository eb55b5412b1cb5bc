"""resolve() / load_*(): zoo names, local folders, hub ids, and the errors a user sees; the masked-LM
copy path end to end with a tiny random BertForMaskedLM."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from specdec.errors import ModelLoadError
from specdec.zoo import ZOO, ModelSpec, Part, load_causal_lm, load_masked_lm, model_path, pull, resolve, verify
from specdec.zoo import load as zload
from specdec.zoo import sources, store


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(zload, "hub_reachable", lambda timeout=3.0: False)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    """A tiny random BertForMaskedLM + tokenizer saved as a Hugging Face folder."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    d = tmp_path_factory.mktemp("bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "paris", "is", "the", "capital", "of", "."]
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n")
    out = d / "model"
    BertTokenizer(vocab_file=str(d / "vocab.txt")).save_pretrained(out)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32)
    BertForMaskedLM(cfg).save_pretrained(out)
    return out


@pytest.fixture
def fake_bert(tiny_bert, monkeypatch) -> ModelSpec:
    """The tiny BERT registered as a folder-format zoo model carried by a fake 'tinybert' package."""
    parts = []
    for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        data = (tiny_bert / f).read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        parts.append(Part("tinybert", "1.0", "tinybert", f"model/{f}", len(data), sha))
    by_member = {p.member: tiny_bert / Path(p.member).name for p in parts}
    monkeypatch.setattr(sources, "installed_path", lambda part: by_member.get(part.member))
    spec = ModelSpec(name="tiny-bert", hf_id="", kind="masked-lm", source="test", fmt="folder",
                     parts=tuple(parts), params=1)
    monkeypatch.setitem(ZOO, spec.name, spec)
    return spec


def test_masked_lm_copy_pull_load_verify(cache, fake_bert):
    dest = pull(fake_bert.name, progress=False)
    assert sorted(p.name for p in dest.iterdir() if p.name != ".verified.json") == ["config.json", "model.safetensors", "specdec-model.json",
                                                      "tokenizer.json", "tokenizer_config.json"]
    assert resolve(fake_bert.name) == str(dest)
    model, tok = load_masked_lm(fake_bert.name, dtype="float32")
    assert not model.training and type(model).__name__ == "BertForMaskedLM"
    logits = model(**tok("paris is the capital", return_tensors="pt")).logits  # [1, T, V]
    assert logits.shape[-1] == 11
    report = verify(fake_bert.name)
    assert report.ok and report.tensors > 0
    with pytest.raises(ModelLoadError, match="is a masked-lm model; load it with load_masked_lm"):
        load_causal_lm(fake_bert.name)


def test_corrupt_cached_safetensors(cache, fake_bert):
    dest = pull(fake_bert.name, progress=False)
    st = dest / "model.safetensors"
    st.write_bytes(b"\xff" * 16 + st.read_bytes()[16:])  # clobber the header length
    report = verify(fake_bert.name)
    assert not report.ok and ("model.safetensors", False, "sha256 mismatch (corrupt)") in report.rows
    with pytest.raises(ModelLoadError, match=r"unreadable .*specdec models pull tiny-bert --force"):
        load_masked_lm(fake_bert.name)


def test_one_changed_byte_in_a_cached_tensor_is_refused_at_load(cache, fake_bert, monkeypatch):
    from specdec.zoo import store

    dest = pull(fake_bert.name, progress=False)
    load_masked_lm(fake_bert.name)
    hashed = []
    real = store.sha256_file
    monkeypatch.setattr(store, "sha256_file", lambda p: hashed.append(p.name) or real(p))
    load_masked_lm(fake_bert.name)
    assert hashed == []  # unchanged files are not re-read (size, mtime and inode stamped at pull time)
    st = dest / "model.safetensors"
    data = bytearray(st.read_bytes())
    data[-3] ^= 0x01  # one bit of the last tensor: the header and the size stay valid
    st.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=r"corrupt .*model.safetensors changed.*specdec models pull tiny-bert --force"):
        load_masked_lm(fake_bert.name)
    data[-3] ^= 0x01  # restored: its hash matches again, it loads and is stamped afresh
    st.write_bytes(bytes(data))
    load_masked_lm(fake_bert.name)
    hashed.clear()
    load_masked_lm(fake_bert.name)
    assert hashed == []


def test_local_folder_resolves_to_itself(tiny_bert):
    assert resolve(tiny_bert) == str(tiny_bert)
    model, _ = load_masked_lm(str(tiny_bert))
    assert not model.training


def test_local_folder_without_config_json(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="has no config.json"):
        resolve(tmp_path)
    with pytest.raises(ModelLoadError, match="has no config.json"):
        load_causal_lm(str(tmp_path))


def test_missing_local_path_and_hub_passthrough(tmp_path):
    with pytest.raises(ModelLoadError, match="no such folder"):
        resolve(str(tmp_path / "nope"))
    assert resolve("someorg/some-model") == "someorg/some-model"  # left to the hub


def test_unknown_name_offline_lists_zoo_names(cache, offline):
    with pytest.raises(ModelLoadError) as e:
        load_causal_lm("qwen2.5-coder-0.5b-instrct")
    msg = str(e.value)
    assert "neither a zoo model" in msg and "hub is unreachable" in msg
    assert all(n in msg for n in ("qwen2.5-coder-1.5b-instruct", "smollm2-135m-instruct", "bert-tiny-splade"))
    assert "did you mean the zoo's 'qwen2.5-coder-0.5b-instruct'" in msg
    assert e.value.__cause__ is None and e.value.__suppress_context__  # one line, no torch traceback


def test_check_model_name_fails_before_anything_loads(cache, offline, tmp_path, monkeypatch):
    """What `specdec.load` runs on the target and draft names before the first model loads."""
    from huggingface_hub import file_download

    zload.check_model_name("qwen2.5-coder-0.5b-instruct")  # a zoo name passes, pulled or not
    with pytest.raises(ModelLoadError, match="^draft: no such folder"):
        zload.check_model_name(str(tmp_path / "nope"), role="draft")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="^draft: .*has no config.json"):
        zload.check_model_name(str(tmp_path / "empty"), role="draft")
    with pytest.raises(ModelLoadError, match="^draft: 'qwen2.5-coder-0.5b-instrct' is neither a zoo model.*"
                                             "did you mean the zoo's 'qwen2.5-coder-0.5b-instruct'"):
        zload.check_model_name("qwen2.5-coder-0.5b-instrct", role="draft")
    with pytest.raises(ModelLoadError, match="^target: 'someorg/some-model' .*hub is unreachable"):
        zload.check_model_name("someorg/some-model", role="target")
    # a hub id already in the local HF cache passes offline
    monkeypatch.setattr(file_download, "try_to_load_from_cache", lambda repo, f, **kw: "/x/config.json")
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda repo, f, **kw: "/x/config.json")
    zload.check_model_name("someorg/some-model")


def test_not_pulled_without_pull_if_missing(cache):
    assert model_path("qwen2.5-coder-0.5b-instruct") is None
    with pytest.raises(ModelLoadError, match="specdec models pull qwen2.5-coder-0.5b-instruct"):
        resolve("qwen2.5-coder-0.5b-instruct", pull_if_missing=False)


def test_bad_dtype(cache, fake_bert):
    from specdec.errors import InputError

    with pytest.raises(InputError, match="dtype must be"):
        load_masked_lm(fake_bert.name, dtype="int4")


@pytest.mark.parametrize("missing", ["tokenizer.json", "config.json"])
def test_a_missing_model_file_is_refused_at_load(cache, fake_bert, missing):
    """transformers would load on without it (no tokenizer.json: a 2-entry tokenizer that printed '')."""
    dest = pull(fake_bert.name, progress=False)
    (dest / missing).unlink()
    with pytest.raises(ModelLoadError, match=rf"incomplete \({missing} is missing\).*pull tiny-bert --force"):
        load_masked_lm(fake_bert.name)
    report = verify(fake_bert.name)
    assert not report.ok and (missing, False, "missing") in report.rows


def test_leftovers_of_an_interrupted_packing_are_reported_and_removed(cache, fake_bert):
    dest = pull(fake_bert.name, progress=False)
    stray = dest / ".weights-int4.safetensors.tmp-999999"
    stray.mkdir()
    (stray / "weights-int4.safetensors.tmpAbC").write_bytes(b"x" * 1000)
    (dest / ".weights-int8.safetensors.tmp-1").write_bytes(b"y" * 10)  # an older version's temp file
    report = verify(fake_bert.name)
    bad = {name for name, ok, _ in report.rows if not ok}
    assert bad == {stray.name, ".weights-int8.safetensors.tmp-1"} and not report.ok
    assert store.leftovers(dest) == sorted([stray, dest / ".weights-int8.safetensors.tmp-1"])
