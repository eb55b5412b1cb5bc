"""How good is an acceptance head on held-out positions: AUC, losses, calibration (reliability table).

Labels are soft (min(1, p/q) in [0, 1]). Every metric treats a position with label y as y of an
"accepted" event and 1 - y of a "rejected" one:

  weighted AUC = P(score of a random accepted event > score of a random rejected event) (+ half the ties),
                 the Mann-Whitney statistic with weights y (positives) and 1 - y (negatives); with 0/1
                 labels it is the ordinary ROC AUC.
  Brier        = mean (P(accept) - y)^2;  BCE = mean -[y log P + (1-y) log(1-P)] (unweighted).
  reliability  = positions binned by predicted P(accept): count, mean prediction, mean label.
  ECE          = sum over bins of count/N * |mean prediction - mean label|.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # pragma: no cover
    from policies.specdecpp.head import AcceptanceHead


def weighted_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """scores (N,), soft labels (N,) in [0,1] -> weighted ROC AUC (nan when one class has no weight)."""
    s = scores.double().flatten()
    y = labels.double().flatten().clamp(0, 1)
    pos, neg = y, 1 - y
    P, Nw = float(pos.sum()), float(neg.sum())
    if P <= 0 or Nw <= 0:
        return float("nan")
    uniq, inv = torch.unique(s, sorted=True, return_inverse=True)
    pos_g = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inv, pos)
    neg_g = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inv, neg)
    neg_below = torch.cumsum(neg_g, 0) - neg_g  # negative weight strictly below each score group
    total = float((pos_g * (neg_below + 0.5 * neg_g)).sum())
    return total / (P * Nw)


def reliability(pred: torch.Tensor, labels: torch.Tensor, bins: int = 10) -> list[dict[str, float]]:
    pred, labels = pred.double().flatten(), labels.double().flatten()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    which = torch.bucketize(pred.clamp(0, 1), edges[1:-1], right=True)  # 0..bins-1
    rows = []
    for b in range(bins):
        m = which == b
        n = int(m.sum())
        rows.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": n,
                     "mean_pred": float(pred[m].mean()) if n else float("nan"),
                     "mean_label": float(labels[m].mean()) if n else float("nan")})
    return rows


def evaluate_predictions(pred: torch.Tensor, labels: torch.Tensor, bins: int = 10) -> dict[str, Any]:
    pred, labels = pred.double().flatten(), labels.double().flatten()
    N = int(pred.numel())
    eps = 1e-7
    p = pred.clamp(eps, 1 - eps)
    table = reliability(pred, labels, bins)
    ece = sum(r["count"] / N * abs(r["mean_pred"] - r["mean_label"]) for r in table if r["count"]) if N else float("nan")
    base = float(labels.mean()) if N else float("nan")
    return {
        "positions": N,
        "auc": weighted_auc(pred, labels),
        "auc_binary_0.5": weighted_auc(pred, (labels >= 0.5).double()),
        "bce": float(-(labels * p.log() + (1 - labels) * (1 - p).log()).mean()) if N else float("nan"),
        "brier": float(((pred - labels) ** 2).mean()) if N else float("nan"),
        "brier_constant": float(((base - labels) ** 2).mean()) if N else float("nan"),
        "ece": ece,
        "mean_label": base,
        "mean_pred": float(pred.mean()) if N else float("nan"),
        "reliability": table,
    }


@torch.no_grad()
def predict(head: AcceptanceHead, features: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """features (N, H) -> P(accept) (N,)."""
    head.eval()
    out = [head.accept_prob(features[i : i + batch].float()) for i in range(0, features.shape[0], batch)]
    return torch.cat(out) if out else torch.zeros(0)


def evaluate_head(head, dataset, bins: int = 10, reject_weight: float | None = None) -> dict[str, Any]:
    """Metrics of the head's P(accept), de-weighted (see head.deweight) when `reject_weight` is given:
    that is the probability the policy uses. AUC is the same either way (a monotone map)."""
    from policies.specdecpp.head import deweight

    raw = predict(head, dataset.features)
    pred = deweight(raw, reject_weight).clamp(0, 1)
    out = evaluate_predictions(pred, dataset.labels, bins)
    out["deweighted"] = bool(reject_weight and reject_weight != 1)
    out["reject_weight"] = reject_weight
    if out["deweighted"]:
        out["mean_pred_raw"] = float(raw.mean())
    return out
