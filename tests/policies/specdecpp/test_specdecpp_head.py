"""The acceptance head: shapes, the residual form, files, and refusing a head made for another draft."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from specdecpp_helpers import make_head_file

from policies.specdecpp.head import (AcceptanceHead, HeadMismatchError, check_identity, draft_identity, load_head,
                                     save_head)


def test_shapes_and_probabilities():
    head = AcceptanceHead(32, 3)
    x = torch.randn(5, 32)
    assert head(x).shape == (5, 2)
    assert head(torch.randn(2, 7, 32)).shape == (2, 7, 2)
    p = head.accept_prob(x)
    assert p.shape == (5,) and bool(((p >= 0) & (p <= 1)).all())
    assert torch.allclose(p, head(x).softmax(-1)[:, 1])
    assert head.accept_prob(x.to(torch.bfloat16)).dtype == torch.float32  # bf16 hidden states are accepted


def test_residual_form_with_own_weights():
    torch.manual_seed(0)
    head = AcceptanceHead(16, 3)
    # every block has its own weights (the official code repeats one module L times)
    ptrs = {blk.weight.data_ptr() for blk in head.blocks}
    assert len(ptrs) == 3 and not torch.equal(head.blocks[0].weight, head.blocks[1].weight)
    x = torch.randn(4, 16)
    h = x
    for blk in head.blocks:
        h = h + F.silu(h @ blk.weight.T + blk.bias)
    expect = h @ head.out.weight.T + head.out.bias
    assert torch.allclose(head(x), expect, atol=1e-6)
    n_params = sum(p.numel() for p in head.parameters())
    assert n_params == 3 * (16 * 16 + 16) + 16 * 2 + 2


def test_input_standardization():
    torch.manual_seed(0)
    head = AcceptanceHead(8, 2)
    feats = torch.randn(500, 8) * torch.arange(1, 9) + 10
    ref = head(((feats - feats.mean(0)) / (feats.std(0) + 1e-3))[:5])
    head.set_normalization(feats)
    assert torch.allclose(head(feats[:5]), ref, atol=1e-5)
    assert set(dict(head.named_buffers())) == {"in_mean", "in_scale"}
    assert all(not n.startswith("in_") for n, _ in head.named_parameters())  # fixed, not trained


def test_zero_blocks_is_a_linear_probe():
    head = AcceptanceHead(8, 0)
    x = torch.randn(3, 8)
    assert torch.allclose(head(x), head.out(x))


def test_save_load_round_trip(tmp_path, draft_model):
    torch.manual_seed(1)
    head = AcceptanceHead(32, 3)
    head.set_normalization(torch.randn(100, 32) * 5 + 3)
    ident = draft_identity(draft_model, "tiny-draft")
    path = save_head(tmp_path / "h.safetensors", head, ident, {"eos_token_ids": [1], "align": "pre", "x": 1.5})
    hf = load_head(path, draft=draft_model, draft_name="tiny-draft")
    assert hf.identity == ident and hf.meta["eos_token_ids"] == [1] and hf.meta["x"] == 1.5
    assert hf.head.num_blocks == 3 and hf.head.hidden_size == 32
    for (k, a), (_, b) in zip(head.state_dict().items(), hf.head.state_dict().items()):
        want = a if k.startswith("in_") else a.to(torch.bfloat16).float()  # weights in bf16, input stats fp32
        assert torch.equal(want, b), k
    x = torch.randn(6, 32)
    assert torch.allclose(head.accept_prob(x), hf.head.accept_prob(x), atol=2e-2)
    # fp32 files are exact
    path32 = save_head(tmp_path / "h32.safetensors", head, ident, dtype=torch.float32)
    assert torch.equal(load_head(path32).head.accept_prob(x), head.accept_prob(x))


def test_identity_is_stable_across_dtypes(draft_model):
    import copy

    a = draft_identity(draft_model, "d")
    b = draft_identity(copy.deepcopy(draft_model).to(torch.bfloat16), "d")
    assert a == b and len(a["fingerprint"]) == 16


def test_refuses_a_head_for_another_draft(tmp_path, draft_model, target_model):
    path = make_head_file(tmp_path / "h.safetensors", draft_model, name="tiny-draft")
    load_head(path, draft=draft_model)  # the right draft: fine
    with pytest.raises(HeadMismatchError, match="fingerprint"):
        load_head(path, draft=target_model)  # same shapes, other weights
    with pytest.raises(HeadMismatchError, match="name"):
        load_head(path, draft_name="another-draft")
    with pytest.raises(HeadMismatchError, match="hidden_size"):
        load_head(path, draft={"name": "tiny-draft", "hidden_size": 64})


def test_check_identity_matches_paths_by_folder_name():
    check_identity({"name": "qwen2.5-coder-0.5b-instruct"}, {"name": "/cache/models/qwen2.5-coder-0.5b-instruct/"})


def test_not_a_head_file(tmp_path):
    from safetensors.torch import save_file

    from specdec.errors import InputError

    save_file({"w": torch.zeros(2)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(InputError, match="not a specdec acceptance head"):
        load_head(tmp_path / "x.safetensors")
    with pytest.raises(InputError, match="not found"):
        load_head(tmp_path / "missing.safetensors")


def test_bundled_head_metadata_if_present():
    from policies.specdecpp.head import BUNDLED

    path = BUNDLED["qwen2.5-coder-0.5b-instruct"]
    if not path.is_file():
        pytest.skip("no bundled head in this checkout")
    hf = load_head(path, draft_name="qwen2.5-coder-0.5b-instruct")
    assert hf.head.hidden_size == 896 and hf.head.num_blocks == 3
    assert hf.identity["name"] == "qwen2.5-coder-0.5b-instruct"
    assert path.stat().st_size < 20 * 2**20
    side = path.with_suffix(".json")
    assert side.is_file() and "command" in json.loads(side.read_text())
