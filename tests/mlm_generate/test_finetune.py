from __future__ import annotations

import json

import pytest
import torch

from mlm_generate.finetune import CheckpointError, FinetuneConfig, LabeledExample, finetune, load_tsv
from mlm_generate.models import MLM
from mlm_generate.templates import PromptTemplate
from specdec.errors import DataError

from mlm_fixtures import make_bert
from mlm_fixtures import any_mlm, bert_mlm, bert_tok, modernbert_mlm, roberta_tok  # noqa: F401  (pytest fixtures)

POS = ["a great film", "very good acting", "fun plot", "it is great", "a good movie", "great fun"]
NEG = ["a dull film", "very bad acting", "terrible plot", "it is bad", "a bad movie", "not good"]
DATA = [LabeledExample(t, 1) for t in POS] + [LabeledExample(t, 0) for t in NEG]
LABELS = ["negative", "positive"]


def _mlm(tok, dropout=0.1):
    return MLM(model=make_bert(tok, dropout=dropout), tokenizer=tok, name="tiny")


@pytest.mark.parametrize("head", ["mlm", "cls"])
def test_loss_decreases_and_train_accuracy_rises(bert_tok, head):
    # a short template: a random 2-layer encoder needs many more steps to find the text in the long one
    short = PromptTemplate(instruction="", body="{text}", answer_prefix=".", answer_marker=None)
    cfg = FinetuneConfig(head=head, max_steps=100, batch_size=6, lr=3e-3, warmup_ratio=0.1, log_every=1, seed=0)
    res = finetune(_mlm(bert_tok, dropout=0.0), DATA, LABELS, cfg, None, eval_sets={"train": DATA}, progress=False,
                   template=short)
    first = sum(l for _, l in res.losses[:4]) / 4
    last = sum(l for _, l in res.losses[-4:]) / 4
    assert last < 0.5 * first
    assert res.metrics["train_accuracy"] >= 0.9


def test_mlm_head_loss_is_on_the_answer_token_only(bert_tok):
    from mlm_generate.finetune import _Trainer
    from mlm_generate.templates import SENTIMENT, Verbalizer

    tr = _Trainer(_mlm(bert_tok), Verbalizer.of(LABELS), FinetuneConfig(), SENTIMENT)
    ids, attn, labels = tr.encode(DATA[:3], None)
    assert ((labels != -100).sum(1) == 1).all()
    assert set(labels[labels != -100].tolist()) == {bert_tok.convert_tokens_to_ids("positive")}
    # dummy MLM: with fraction 1 every example also gets masked tokens labelled as the mask token
    tr2 = _Trainer(_mlm(bert_tok), Verbalizer.of(LABELS),
                   FinetuneConfig(dummy_mlm=True, dummy_fraction=1.0, dummy_mask_ratio=0.5), SENTIMENT)
    ids2, _, labels2 = tr2.encode(DATA[:3], torch.Generator().manual_seed(0))
    mask_id = bert_tok.mask_token_id
    dummy = labels2 == mask_id
    assert dummy.sum() > 0 and (ids2[dummy] == mask_id).all()
    assert ((labels2 != -100) & ~dummy).sum() == 3  # the answer labels stay


@pytest.mark.parametrize("head", ["mlm", "cls"])
def test_resume_is_bit_exact(bert_tok, tmp_path, head):
    cfg = FinetuneConfig(head=head, max_steps=8, batch_size=4, lr=1e-3, seed=3, dummy_mlm=(head == "mlm"),
                         dummy_fraction=0.5, checkpoint_every=2, keep_checkpoints=2)
    base = _mlm(bert_tok)
    straight = finetune(base, DATA, LABELS, cfg, tmp_path / "a", progress=False, export=False)
    part = finetune(base, DATA, LABELS, cfg, tmp_path / "b", progress=False, stop_after=5)
    assert part.steps == 5 and not part.metrics
    latest = json.loads((tmp_path / "b" / "latest.json").read_text())
    assert latest["step"] == 5
    assert len(list((tmp_path / "b").glob("ckpt-*"))) == 2  # older checkpoints pruned
    resumed = finetune(base, DATA, LABELS, cfg, tmp_path / "b", progress=False, eval_sets={"train": DATA})
    assert resumed.resumed_from == 5 and resumed.steps == 8
    sa, sb = straight.model.state_dict(), resumed.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert straight.losses == resumed.losses
    assert (tmp_path / "b" / "final" / "config.json").is_file()
    # the base model was not modified by training
    assert not torch.equal(base.model.state_dict()["bert.embeddings.word_embeddings.weight"],
                           sa["bert.embeddings.word_embeddings.weight"])


def test_resume_refuses_other_settings(bert_tok, tmp_path):
    cfg = FinetuneConfig(max_steps=4, batch_size=4, seed=0)
    finetune(_mlm(bert_tok), DATA, LABELS, cfg, tmp_path, progress=False, stop_after=2)
    with pytest.raises(CheckpointError, match="other settings"):
        finetune(_mlm(bert_tok), DATA, LABELS, FinetuneConfig(max_steps=4, batch_size=4, seed=0, lr=5e-4),
                 tmp_path, progress=False)


def test_load_tsv(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_text("a good film\t1\nbad\t0\n")
    assert load_tsv(p) == [LabeledExample("a good film", 1), LabeledExample("bad", 0)]
    p.write_text("no label here\n")
    with pytest.raises(DataError):
        load_tsv(p)


@pytest.mark.parametrize("name", ["../elsewhere", "/etc", "..", "a/../../b"])
def test_resume_refuses_a_checkpoint_name_outside_the_run_folder(tmp_path, name):
    from mlm_generate.finetune import _load_checkpoint

    out = tmp_path / "run"
    out.mkdir()
    (out / "latest.json").write_text(json.dumps({"checkpoint": name, "step": 1}))
    with pytest.raises(CheckpointError, match="not a checkpoint folder inside"):
        _load_checkpoint(out, None, None, None, FinetuneConfig())
