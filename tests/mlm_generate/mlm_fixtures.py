"""Tiny random masked LMs (BERT with a [MASK] tokenizer, ModernBERT with a <mask> tokenizer) built in-test."""
from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import BertConfig, BertForMaskedLM, ModernBertConfig, ModernBertForMaskedLM, PreTrainedTokenizerFast

from mlm_generate.models import MLM

torch.set_num_threads(1)

WORDS = ("the movie was good bad great terrible very not a film it is and fun dull plot acting "
         "A B C D : - ? . , QUESTION CHOICES ANSWER SENTENCE You will be given question options Select "
         "right answer sentence its sentiment negative positive paris london capital of france what").split()


def make_mlm_tokenizer(style: str = "bert", with_marker: bool = True, words=WORDS) -> PreTrainedTokenizerFast:
    """style "bert": [PAD] [UNK] [CLS] [SEP] [MASK]; style "roberta": <pad> <unk> <s> </s> <mask>."""
    if style == "bert":
        pad, unk, cls, sep, mask = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
    else:
        pad, unk, cls, sep, mask = "<pad>", "<unk>", "<s>", "</s>", "<mask>"
    specials = [pad, unk, cls, sep, mask] + (["[unused0]"] if with_marker else [])
    vocab = {w: i for i, w in enumerate(specials + list(words))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])])
    tok.add_special_tokens(specials)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=pad, unk_token=unk, cls_token=cls, sep_token=sep,
                                   mask_token=mask, model_max_length=256)


def make_bert(tok, seed: int = 0, dropout: float = 0.1) -> BertForMaskedLM:
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=2, max_position_embeddings=256, pad_token_id=tok.pad_token_id,
                     hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return BertForMaskedLM(cfg).eval()


def make_modernbert(tok, seed: int = 0) -> ModernBertForMaskedLM:
    torch.manual_seed(seed)
    cfg = ModernBertConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, max_position_embeddings=256, pad_token_id=tok.pad_token_id,
                           cls_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id,
                           bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
                           global_attn_every_n_layers=1, local_attention=16)
    return ModernBertForMaskedLM(cfg).eval()


@pytest.fixture(scope="session")
def bert_tok():
    return make_mlm_tokenizer("bert")


@pytest.fixture(scope="session")
def roberta_tok():
    return make_mlm_tokenizer("roberta")


@pytest.fixture()
def bert_mlm(bert_tok):
    return MLM(model=make_bert(bert_tok), tokenizer=bert_tok, name="tiny-bert")


@pytest.fixture()
def modernbert_mlm(roberta_tok):
    return MLM(model=make_modernbert(roberta_tok), tokenizer=roberta_tok, name="tiny-modernbert")


@pytest.fixture(params=["bert", "modernbert"])
def any_mlm(request, bert_tok, roberta_tok):
    if request.param == "bert":
        return MLM(model=make_bert(bert_tok), tokenizer=bert_tok, name="tiny-bert")
    return MLM(model=make_modernbert(roberta_tok), tokenizer=roberta_tok, name="tiny-modernbert")
