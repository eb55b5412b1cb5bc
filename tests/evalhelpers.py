"""Helpers for the evaluation tests: a byte-level tokenizer (any text encodes), a tiny random Qwen2 over
it, a SpecDecoder around them, and tiny hand-made MMLU / GSM8K files in tmp_path."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

SPECIALS = ["<unk>", "<eos>", "<pad>"]
CHAT_TEMPLATE = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}<assistant>"


def byte_tokenizer(chat: bool = True) -> PreTrainedTokenizerFast:
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {t: i for i, t in enumerate(SPECIALS + alphabet)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>", pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE if chat else None
    return fast


def tiny_model(vocab: int, seed: int = 0, layers: int = 2, sharp: float = 4.0, hidden: int = 32,
               heads: int = 4, kv_heads: int = 2) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=4096,
                      tie_word_embeddings=False, eos_token_id=1, bos_token_id=None, pad_token_id=2)
    model = Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(sharp)
    return model


# ------------------------------------------------------------------------------------------ data
MMLU_ROWS = {
    "abstract_algebra": [
        ["What is 2+2 in Z_3?", "0", "1", "2", "3", "B"],
        ["Is Z_5 a field?", "Yes", "No", "Only for odd n", "Never", "A"],
        ["Order of S_3?", "3", "6", "9", "2", "B"],
        ["Statement 1 | A group, with commas, in a field.", "True, True", "False, False", "True, False", "False, True", "C"],
    ],
    "anatomy": [
        ["Which bone is in the arm?", "Femur", "Humerus", "Tibia", "Skull", "B"],
        ["How many chambers has the heart?", "1", "2", "3", "4", "D"],
        ["Multi-line\nquestion here?", "a", "b", "c", "d", "A"],
    ],
    "marketing": [
        ["What are the 4 Ps?", "Price etc", "None", "People", "Planets", "A"],
        ["Brand means?", "Logo", "Name", "Promise", "Cow", "C"],
    ],
}
DEV_ROWS = [[f"Dev question {i}?", "w", "x", "y", "z", "ABCD"[i % 4]] for i in range(5)]

GSM8K_TRAIN = [
    {"question": f"Tom has {i} apples and buys {i + 2} more. How many apples does he have?",
     "answer": f"Tom has {i} + {i + 2} = <<{i}+{i + 2}={2 * i + 2}>>{2 * i + 2} apples.\n#### {2 * i + 2}"}
    for i in range(1, 13)
]
GSM8K_TEST = [
    {"question": "Ann has 3 pens and gets 4 more. How many pens?", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"},
    {"question": "A box holds 1,200 nails; 200 are used. How many are left?", "answer": "1200-200=1000\n#### 1,000"},
    {"question": "Bob owes $5 and pays $8. What is his balance?", "answer": "5-8=-3\n#### -3"},
    {"question": "What is 10 times 10?", "answer": "10*10=100\n#### 100"},
    {"question": "Half of 9?", "answer": "9/2=4.5\n#### 4.5"},
    {"question": "Sum of 2 and 2?", "answer": "2+2=4\n#### 4"},
]


def write_mmlu(root: Path, rows=MMLU_ROWS, dev=True) -> Path:
    for split, table in (("test", rows), ("dev", {s: DEV_ROWS for s in rows} if dev else {})):
        d = root / "mmlu" / split
        d.mkdir(parents=True, exist_ok=True)
        for subject, rs in table.items():
            with open(d / f"{subject}_{split}.csv", "w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows(rs)
    return root


def write_gsm8k(root: Path, train=GSM8K_TRAIN, test=GSM8K_TEST) -> Path:
    d = root / "gsm8k"
    d.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("test", test)):
        (d / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return root
