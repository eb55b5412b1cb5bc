"""Training data: labels min(1, p/q), the 15% keep mix, shards, resume, reading back."""
from __future__ import annotations

import json

import pytest
import torch

from specdecpp_helpers import random_prompts

from specdec.head.data import (DataConfig, acceptance_labels, build_dataset, expected_acceptance, keep_mask,
                               label_response, mix_tokens, read_prompts, shard_plan)
from specdec.head.dataset import load_dataset
from policies.specdecpp.head import draft_identity
from specdec.errors import DataError, InputError


def test_labels_on_hand_made_distributions():
    p = torch.tensor([[0.5, 0.3, 0.2, 0.0], [0.1, 0.1, 0.1, 0.7], [0.25, 0.25, 0.25, 0.25]])
    q = torch.tensor([[0.25, 0.6, 0.15, 0.0], [0.7, 0.1, 0.1, 0.1], [0.0, 0.5, 0.5, 0.0]])
    x = torch.tensor([0, 1, 0])
    # row 0: p/q = 2 -> 1; row 1: p(1)/q(1) = 1; row 2: q(x) = 0 but p(x) > 0 -> 1
    assert torch.allclose(acceptance_labels(p, q, x), torch.tensor([1.0, 1.0, 1.0]))
    x = torch.tensor([1, 0, 2])
    # row 0: 0.3/0.6 = 0.5; row 1: 0.1/0.7; row 2: 0.25/0.5
    assert torch.allclose(acceptance_labels(p, q, x), torch.tensor([0.5, 0.1 / 0.7, 0.5]))
    x = torch.tensor([3, 3, 3])
    # row 0: p = q = 0 -> 0; row 1: 0.7/0.1 -> 1; row 2: q = 0 -> 1
    assert torch.allclose(acceptance_labels(p, q, x), torch.tensor([0.0, 1.0, 1.0]))
    # expected acceptance = sum min(p, q) = 1 - TV
    assert torch.allclose(expected_acceptance(p, q), torch.tensor([0.70, 0.4, 0.5]))  # 0.25+0.3+0.15, 0.1*3+0.1, 0.25+0.25


def test_expected_acceptance_is_the_mean_of_sampled_labels():
    g = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(1, 10, generator=g) * 2, -1).expand(40000, 10)
    q = torch.softmax(torch.randn(1, 10, generator=g) * 2, -1).expand(40000, 10)
    x = torch.multinomial(q, 1, generator=g)[:, 0]
    assert abs(float(acceptance_labels(p, q, x).mean()) - float(expected_acceptance(p[:1], q[:1]))) < 0.01


def test_keep_mask_proportion_and_seed():
    m1 = keep_mask(200_000, 0.15, torch.Generator().manual_seed(3))
    m2 = keep_mask(200_000, 0.15, torch.Generator().manual_seed(3))
    assert torch.equal(m1, m2)
    assert abs(float(m1.float().mean()) - 0.15) < 0.003
    assert not torch.equal(m1, keep_mask(200_000, 0.15, torch.Generator().manual_seed(4)))
    assert not keep_mask(1000, 0.0, torch.Generator().manual_seed(0)).any()
    y, x = torch.arange(10), torch.arange(10) + 100
    keep = torch.tensor([True, False] * 5)
    assert mix_tokens(y, x, keep).tolist() == [0, 101, 2, 103, 4, 105, 6, 107, 8, 109]


def test_label_response_alignment(target_model, draft_model):
    g = torch.Generator().manual_seed(0)
    prompt = torch.tensor([5, 6, 7, 8])
    resp = torch.tensor([9, 10, 11, 12, 13, 14])
    rec = label_response(target_model, draft_model, prompt, resp, temperature=1.0, keep_prob=0.15, generator=g)
    n = len(resp)
    assert rec.features.shape == (n, 32) and rec.features_post.shape == (n, 32)
    assert rec.label.shape == rec.label_expected.shape == rec.label_greedy.shape == rec.mask.shape == (n,)
    assert bool(((rec.label >= 0) & (rec.label <= 1)).all())
    # feature of position 0 = the draft's hidden state after the prompt only (whatever the mix)
    with torch.no_grad():
        h = draft_model.model(input_ids=prompt[None]).last_hidden_state[0, -1]
        assert torch.allclose(rec.features[0], h, atol=1e-5)
        # label_expected / label_greedy come from teacher forcing on the target's response
        seq = torch.cat([prompt, resp])[None]
        tl = target_model(seq).logits[0, 3:9]
        dl = draft_model(seq).logits[0, 3:9]
    assert torch.allclose(rec.label_expected, torch.minimum(tl.softmax(-1), dl.softmax(-1)).sum(-1), atol=1e-5)
    assert torch.equal(rec.label_greedy, (tl.argmax(-1) == dl.argmax(-1)).float())


def _build(tmp_path, target_model, draft_model, tokenizer, count, max_shards=None, out="data", batch_size=1):
    prompts = [" ".join(f"w{int(t) - 3}" for t in p[0]) for p in random_prompts(count, seed=5)]
    cfg = DataConfig(target="tiny-target", draft="tiny-draft", prompts="inline", start=0, count=count,
                     max_new_tokens=6, shard_size=2, chat=False, draft_identity=draft_identity(draft_model, "tiny-draft"))
    calls = []

    def respond(ids):
        calls.append(ids.shape[1])
        g = torch.Generator().manual_seed(ids.shape[1])
        return torch.randint(3, 64, (6,), generator=g)

    def respond_batch(batch):  # a batched responder: a list of (1, P) prompts in, a list of responses out
        calls.append(("batch", len(batch)))
        return [respond(ids) for ids in batch]

    man = build_dataset(cfg, tmp_path / out, target=target_model, draft=draft_model, tokenizer=tokenizer,
                        respond=respond if batch_size == 1 else respond_batch, prompts=prompts, batch_size=batch_size,
                        progress=False, log=lambda m: None, max_shards=max_shards)
    return man, calls


def test_a_batched_responder_gets_lists_and_builds_the_same_data(tmp_path, target_model, draft_model, tokenizer):
    _build(tmp_path, target_model, draft_model, tokenizer, 4, out="one")
    _, calls = _build(tmp_path, target_model, draft_model, tokenizer, 4, out="two", batch_size=2)
    assert [c for c in calls if isinstance(c, tuple)] == [("batch", 2), ("batch", 2)]  # 4 prompts, lists of two
    one, two = load_dataset(tmp_path / "one", labelled_only=False), load_dataset(tmp_path / "two", labelled_only=False)
    assert torch.equal(one.features, two.features) and torch.equal(one.labels, two.labels)


def test_shards_manifest_and_resume(tmp_path, target_model, draft_model, tokenizer):
    assert shard_plan(DataConfig("t", "d", "p", start=3, count=5, shard_size=2)) == [(3, 5), (5, 7), (7, 8)]
    man, calls = _build(tmp_path, target_model, draft_model, tokenizer, 5, max_shards=2)
    assert sorted(man["shards"]) == ["shard-00000.safetensors", "shard-00002.safetensors"]
    assert man["estimate"]["prompts"] == 5 and man["estimate"]["seconds_per_prompt"] >= 0
    n_first = len(calls)
    man, calls = _build(tmp_path, target_model, draft_model, tokenizer, 5)  # resume: only the last shard
    assert n_first == 4 and len(calls) == 1 and len(man["shards"]) == 3
    on_disk = json.loads((tmp_path / "data" / "manifest.json").read_text())
    assert on_disk["shards"] == man["shards"]
    ds = load_dataset(tmp_path / "data")
    full = load_dataset(tmp_path / "data", labelled_only=False)
    assert len(full) == 5 * 6 and 0 < len(ds) <= len(full)
    assert ds.features.dtype == torch.bfloat16 and ds.features.shape[1] == 32
    assert sorted(set(full.prompt.tolist())) == [0, 1, 2, 3, 4]
    # the same data again from scratch is identical (everything is seeded per prompt)
    _build(tmp_path, target_model, draft_model, tokenizer, 5, out="again")
    ds2 = load_dataset(tmp_path / "again")
    assert torch.equal(ds.features, ds2.features) and torch.equal(ds.labels, ds2.labels)
    post = load_dataset(tmp_path / "data", align="post")
    assert len(post) == len(ds) and not torch.equal(post.features, ds.features)
    tr, va = full.split(0.4)
    assert set(tr.prompt.tolist()) == {0, 1, 2} and set(va.prompt.tolist()) == {3, 4}
    both = load_dataset([tmp_path / "data", tmp_path / "again"], labelled_only=False)  # ids stay distinct
    tr, va = both.split(0.4)
    assert set(va.prompt.tolist()) == {3, 4, 1_000_003, 1_000_004} and len(tr) + len(va) == 2 * len(full)


def test_resume_refuses_other_settings(tmp_path, target_model, draft_model, tokenizer):
    _build(tmp_path, target_model, draft_model, tokenizer, 2)
    cfg = DataConfig(target="tiny-target", draft="tiny-draft", prompts="inline", count=2, max_new_tokens=7,
                     shard_size=2, chat=False, draft_identity=draft_identity(draft_model, "tiny-draft"))
    with pytest.raises(DataError, match="max_new_tokens"):
        build_dataset(cfg, tmp_path / "data", target=target_model, draft=draft_model, tokenizer=tokenizer,
                      respond=lambda ids: torch.tensor([5, 6]), prompts=["w1 w2", "w3"], progress=False,
                      log=lambda m: None)


def test_read_prompts(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"question": "a?"}\n{"prompt": "b"}\n\n{"turns": ["c", "d"]}\n')
    assert read_prompts(f) == ["a?", "b", "c"]
    (tmp_path / "p.txt").write_text("x\n\ny\n")
    assert read_prompts(tmp_path / "p.txt") == ["x", "y"]
    (tmp_path / "bad.jsonl").write_text('{"other": 1}\n')
    with pytest.raises(DataError):
        read_prompts(tmp_path / "bad.jsonl")


def test_responder_records_the_targets_logits(target_model, draft_model, tokenizer):
    from specdec.head.data import make_responder
    from specdec.api import SpecDecoder
    from specdec.config import SpecConfig

    dec = SpecDecoder(target_model, tokenizer, spec=SpecConfig(drafter="draft-model", policy="constant", k=3),
                      draft="tiny-draft", model_loader=lambda name: (draft_model, tokenizer))
    respond = make_responder(dec, max_new_tokens=12)
    plain = SpecDecoder(target_model, tokenizer, spec=SpecConfig(drafter=None))
    for prompt in random_prompts(4, seed=11):
        toks, logits = respond(prompt)
        ref = plain.generate(" ".join(f"w{int(t) - 3}" for t in prompt[0]), chat=False, max_new_tokens=12)
        assert toks.tolist() == ref.token_ids  # greedy speculation = plain greedy
        with torch.no_grad():
            hf = target_model(torch.cat([prompt[0], toks])[None]).logits[0, prompt.shape[1] - 1 : -1]
        assert logits.shape == hf.shape
        assert torch.allclose(logits, hf, atol=1e-4)
        assert "forward" not in vars(dec.target)  # the recording forward lives only inside a respond call


def test_extra_feature_is_the_drafts_top_log_probability(draft_model):
    from specdec.head.dataset import Dataset, add_extra_features

    torch.manual_seed(0)
    H = draft_model.config.hidden_size
    feats = torch.randn(7, H)  # (N, H): "pre" hidden states
    ds = Dataset(feats, torch.rand(7), torch.zeros(7, dtype=torch.int32), torch.arange(7, dtype=torch.int32), {})
    out = add_extra_features(ds, draft_model, ["top_logprob"], batch=3)  # batches of 3: the join must be in order
    assert out.features.shape == (7, H + 1) and torch.equal(out.features[:, :H], feats)
    want = draft_model.lm_head(feats).log_softmax(-1).max(-1).values  # (N,)
    assert torch.allclose(out.features[:, H], want, atol=1e-5)
    assert (out.features[:, H] <= 0).all()
    with pytest.raises(InputError, match="top_logprob"):
        add_extra_features(ds, draft_model, ["entropy"])
