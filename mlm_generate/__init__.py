"""Masked LMs as generative classifiers, MLM-head fine-tuning and non-autoregressive generation.

    from mlm_generate import load_mlm, MLMClassifier
    clf = MLMClassifier(load_mlm("bert-tiny-splade"))
    clf.score_choices("2 + 2 =", ["3", "4", "5", "22"])   # -> [p_A, p_B, p_C, p_D]

Submodules: models (load_mlm), templates, classifier, finetune, nar (mask-predict, block unmasking),
drafter (the `mlm` speculative-decoding drafter), cli (`specdec mlm ...`).
"""
from __future__ import annotations

from mlm_generate.classifier import MLMClassifier
from mlm_generate.finetune import FinetuneConfig, LabeledExample, finetune, load_tsv
from mlm_generate.models import MLM, bundled_mlm_path, load_mlm
from mlm_generate.nar import GenerationConfig, block_fill, fill_text, generate, iterative_fill, refine
from mlm_generate.templates import MODERNBERT_INSTRUCT, SENTIMENT, Example, PromptTemplate, Verbalizer, VerbalizerError

__all__ = [
    "MLM", "load_mlm", "bundled_mlm_path", "MLMClassifier", "PromptTemplate", "Verbalizer", "VerbalizerError",
    "Example", "MODERNBERT_INSTRUCT", "SENTIMENT", "FinetuneConfig", "LabeledExample", "finetune", "load_tsv",
    "GenerationConfig", "generate", "iterative_fill", "block_fill", "fill_text", "refine",
]
