"""Does the bundled acceptance head still work on the int4-all draft (the default draft weights since the
CPU-speed issue)? Same token sequences through the bf16 and the int4-all 0.5B draft: the head's P(accept)
on each draft's hidden states, its AUC against greedy acceptance (draft argmax == target argmax at that
position: the label_greedy of docs/specdecpp.md), and how far the two drafts' predictions move.

    python docs/results/specdecpp/int4_draft_head.py   -> int4_draft_head.json beside this file

Sequences: the first 8 GSM8K test questions and the first Spec-Bench prompt of 8 categories, each through
the chat template plus the int4 target's greedy answer (96 tokens); positions = the answer's tokens.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

import specdec
from policies import POLICIES
from specdec.api import load_runner_for
from specdec.bench.prompts import load_prompts
from specdec.config import EngineConfig

DRAFT, TARGET = "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"


def auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    order = scores.argsort()
    ranks = torch.empty_like(order, dtype=torch.float64)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=torch.float64)
    pos = labels.bool()
    n1, n0 = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@torch.no_grad()
def run(runner, ids: torch.Tensor, start: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and hidden states of rows start-1 .. T-2 (the answer's positions), the prompt prefilled."""
    runner.reset()
    runner.prefill(ids[:, : start - 1])
    logits, hidden = runner.forward(ids[:, start - 1: -1], need_hidden=True)  # (1, n, V), (1, n, H)
    runner.reset()
    return logits[0], hidden[0]


def main() -> None:
    torch.set_num_threads(2)
    dec = specdec.load(TARGET, drafter="none", max_context=1024)
    prompts = load_prompts("gsm8k:8") + load_prompts("spec_bench:1", per_category=True)[:8]
    seqs = []
    for p in prompts:
        ids = dec.encode(p.text, chat=True)  # (1, T)
        res = dec.generate(p.text, max_new_tokens=96)
        seqs.append((torch.cat([ids, torch.tensor([res.token_ids])], dim=1), ids.shape[1]))
    head = POLICIES.create("specdecpp", draft=DRAFT)
    out = {}
    for weights in ("bf16", "int4-all"):
        draft, _ = load_runner_for(DRAFT, EngineConfig(weights=weights, max_context=1024))
        probs, labels = [], []
        for seq, start in seqs:
            t_logits, _ = run(dec.target, seq, start)
            d_logits, hidden = run(draft, seq, start)
            rows = range(hidden.shape[0])  # hidden at row t drafts the answer's token t
            probs += [head.accept_prob(hidden[t:t + 1]) for t in rows]
            labels += [int(d_logits[t].argmax() == t_logits[t].argmax()) for t in rows]
        p, y = torch.tensor(probs), torch.tensor(labels)
        out[weights] = {"positions": len(y), "greedy_acceptance": float(y.float().mean()), "auc": auc(p, y),
                        "mean_p_accept": float(p.mean()), "probs": probs}
        del draft
    a, b = torch.tensor(out["bf16"]["probs"]), torch.tensor(out["int4-all"]["probs"])
    out["comparison"] = {"pearson_r": float(torch.corrcoef(torch.stack([a, b]))[0, 1]),
                         "mean_abs_diff": float((a - b).abs().mean())}
    for w in ("bf16", "int4-all"):
        out[w].pop("probs")
        print(w, {k: round(v, 4) if isinstance(v, float) else v for k, v in out[w].items()})
    print("bf16 vs int4-all head outputs:", {k: round(v, 4) for k, v in out["comparison"].items()})
    Path(__file__).with_name("int4_draft_head.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
