"""Held-out AUC of the draft's own confidence, for comparison with the acceptance head: the stored "pre"
features are exactly the hidden states that produce the draft's distribution q_t, so q_t = softmax(lm_head(h)).

    python docs/results/specdecpp/baseline_auc.py /tmp/specdecpp/heldout-gsm8k-test [more data folders]
"""
import json
import sys

import torch

import specdec  # noqa: F401
from specdec.head.dataset import load_dataset
from specdec.head.evaluate import weighted_auc
from specdec.zoo import load_causal_lm

torch.set_num_threads(1)
draft, _ = load_causal_lm("qwen2.5-coder-0.5b-instruct")
out = {}
for d in sys.argv[1:]:
    out[d] = {}
    for label in ("label", "label_expected", "label_greedy"):
        ds = load_dataset(d, label=label)
        with torch.no_grad():
            q = torch.cat([draft.lm_head(ds.features[i:i + 256]).float().softmax(-1) for i in range(0, len(ds), 256)])
        top = q.max(-1).values
        ent = -(q.clamp_min(1e-12).log() * q).sum(-1)
        out[d][label] = {"positions": len(ds), "mean_label": float(ds.labels.mean()),
                         "auc_top_prob": weighted_auc(top, ds.labels), "auc_neg_entropy": weighted_auc(-ent, ds.labels)}
print(json.dumps(out, indent=1))
