"""Training: the weighted soft BCE, loss going down, bit-exact resume after an interruption, AUC."""
from __future__ import annotations

import math

import pytest
import torch

from specdec.head.dataset import Dataset
from specdec.head.evaluate import evaluate_predictions, reliability, weighted_auc
from specdec.head.train import TrainConfig, train_head, weighted_soft_bce


def test_weighted_soft_bce_by_hand():
    logits = torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)]])  # P(accept) = 0.5, 0.75
    y = torch.tensor([1.0, 0.2])
    w = 6.0
    # numerator: 1*(-log .5) + [0.2*(-log .75) + 6*0.8*(-log .25)]; denominator: 1 + 0.2 + 6*0.8
    num = -math.log(0.5) + 0.2 * -math.log(0.75) + w * 0.8 * -math.log(0.25)
    den = 1 + 0.2 + w * 0.8
    assert abs(float(weighted_soft_bce(logits, y, w)) - num / den) < 1e-6
    # w = 1 is the plain soft BCE
    plain = torch.nn.functional.binary_cross_entropy(torch.tensor([0.5, 0.75]), y)
    assert abs(float(weighted_soft_bce(logits, y, 1.0)) - float(plain)) < 1e-6


def test_weighted_soft_bce_minimiser_shifts_towards_reject():
    # for a single soft label y the optimum is P = y / (y + w (1 - y)): the reject weight lowers P(accept)
    y = torch.tensor([0.8])
    zs = torch.linspace(-5, 5, 2001)
    losses = torch.stack([weighted_soft_bce(torch.tensor([[0.0, float(z)]]), y, 6.0) for z in zs])
    p_best = float(torch.sigmoid(zs[losses.argmin()]))
    assert abs(p_best - 0.8 / (0.8 + 6 * 0.2)) < 2e-3


def _synthetic(n=1500, H=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, H, generator=g)
    w = torch.randn(H, generator=g)
    y = torch.sigmoid(2 * x @ w / math.sqrt(H))  # soft labels depending on the features
    return Dataset(x.to(torch.bfloat16), y, torch.arange(n, dtype=torch.int32) // 10,
                   torch.zeros(n, dtype=torch.int32), {})


def test_loss_goes_down_and_auc_is_high(tmp_path):
    ds = _synthetic()
    tr, va = ds.split(0.2)
    cfg = TrainConfig(epochs=8, batch_size=100, lr=3e-3, num_blocks=2, checkpoint_every=20)
    head, state = train_head(tr, cfg, tmp_path / "w", val=va, log=lambda m: None)
    losses = [h["train_loss"] for h in state.history]
    assert losses[-1] < losses[0] * 0.9
    oracle = weighted_auc(va.labels, va.labels)  # the best any score can do with these soft labels
    assert state.history[-1]["val_auc"] > oracle - 0.08, (state.history[-1]["val_auc"], oracle)
    assert state.history[-1]["val_auc"] > state.history[0]["val_auc"]
    assert (tmp_path / "w" / "checkpoint.pt").is_file()


def test_resume_after_interruption_is_bit_exact(tmp_path):
    ds = _synthetic(n=400)
    cfg = TrainConfig(epochs=2, batch_size=64, lr=3e-3, num_blocks=2, checkpoint_every=5)
    full, s_full = train_head(ds, cfg, tmp_path / "a", log=lambda m: None)
    part, s_part = train_head(ds, cfg, tmp_path / "b", stop_after=3, log=lambda m: None)  # mid-epoch, off-checkpoint
    assert s_part.step == 3
    logs = []
    resumed, s_res = train_head(ds, cfg, tmp_path / "b", log=logs.append)
    assert any("resumed" in m and "step 3" in m for m in logs)
    assert s_res.step == s_full.step == 2 * math.ceil(400 / 64)
    for (k, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), k
    # a finished run resumes to itself, and other settings are refused
    again, _ = train_head(ds, cfg, tmp_path / "b", log=lambda m: None)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), full.state_dict().values()))
    from specdec.errors import InputError

    with pytest.raises(InputError, match="other settings"):
        train_head(ds, TrainConfig(epochs=3, batch_size=64, num_blocks=2), tmp_path / "b", log=lambda m: None)


class _Boom:
    """Unpickling this runs code (it would touch `marker`): a crafted checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_crafted_or_truncated_checkpoint_is_refused_without_running_code(tmp_path):
    from specdec.errors import InputError

    ds = _synthetic(n=100)
    cfg = TrainConfig(epochs=1, batch_size=64, num_blocks=2, checkpoint_every=1)
    work = tmp_path / "w"
    work.mkdir()
    marker = tmp_path / "pwned"
    torch.save({"head": _Boom(marker), "opt": {}, "state": {}, "config": {}, "n_train": 100, "hidden_size": 8},
               work / "checkpoint.pt")
    with pytest.raises(InputError, match="not a readable head checkpoint"):
        train_head(ds, cfg, work, log=lambda m: None)
    assert not marker.exists()  # the pickle's payload never ran
    train_head(ds, cfg, tmp_path / "ok", stop_after=1, log=lambda m: None)
    ck = tmp_path / "ok" / "checkpoint.pt"
    ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])  # truncated
    with pytest.raises(InputError, match="not a readable head checkpoint"):
        train_head(ds, cfg, tmp_path / "ok", log=lambda m: None)


def test_weighted_auc_matches_the_binary_definition():
    s = torch.tensor([0.1, 0.4, 0.35, 0.8])
    y = torch.tensor([0.0, 0.0, 1.0, 1.0])
    assert abs(weighted_auc(s, y) - 0.75) < 1e-9  # pairs (pos > neg): (.35>.1), (.8>.1), (.8>.4); not (.35>.4)
    assert weighted_auc(torch.tensor([0.5, 0.5]), torch.tensor([0.0, 1.0])) == 0.5  # ties count half
    # soft labels = each row split into weighted positive and negative copies
    s2 = torch.tensor([0.2, 0.9, 0.5])
    y2 = torch.tensor([0.25, 1.0, 0.5])
    rep_s = torch.tensor([0.2, 0.2, 0.9, 0.5, 0.5])
    rep_y = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0])
    rep_w = torch.tensor([0.25, 0.75, 1.0, 0.5, 0.5])
    pos = [(si, wi) for si, yi, wi in zip(rep_s, rep_y, rep_w) if yi == 1]
    neg = [(si, wi) for si, yi, wi in zip(rep_s, rep_y, rep_w) if yi == 0]
    num = sum(wp * wn * (1.0 if sp > sn else 0.5 if sp == sn else 0.0) for sp, wp in pos for sn, wn in neg)
    den = sum(w for _, w in pos) * sum(w for _, w in neg)
    assert abs(weighted_auc(s2, y2) - float(num / den)) < 1e-6
    assert math.isnan(weighted_auc(s2, torch.ones(3)))


def test_reliability_and_metrics():
    pred = torch.tensor([0.05, 0.15, 0.95, 0.92], dtype=torch.float64)
    y = torch.tensor([0.0, 0.5, 1.0, 1.0], dtype=torch.float64)
    rows = reliability(pred, y, bins=10)
    assert [r["count"] for r in rows] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert abs(rows[9]["mean_pred"] - 0.935) < 1e-9 and rows[9]["mean_label"] == 1.0
    m = evaluate_predictions(pred, y, bins=10)
    assert m["positions"] == 4 and m["auc"] == pytest.approx(3.625 / 3.75)  # soft 0.5 label: half a positive
    assert abs(m["ece"] - (0.05 + 0.35 + 2 * 0.065) / 4) < 1e-9
