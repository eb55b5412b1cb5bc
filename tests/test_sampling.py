"""specdec.sampling: process_logits (temperature, top-k, top-p, greedy), sample, make_generator; config checks."""
from __future__ import annotations

import math

import pytest
import torch

from specdec.config import SamplingConfig
from specdec.errors import InputError
from specdec.sampling import make_generator, process_logits, sample


def logits_of(probs: list[float]) -> torch.Tensor:
    return torch.tensor(probs).log()


def test_temperature_one_is_softmax():
    logits = torch.tensor([1.0, -0.5, 2.0, 0.3])
    p = process_logits(logits, SamplingConfig(temperature=1.0))
    torch.testing.assert_close(p, logits.softmax(-1))
    assert p.dtype == torch.float32


@pytest.mark.parametrize("t", [0.25, 0.7, 2.0])
def test_temperature_divides_logits(t):
    logits = torch.tensor([1.0, -0.5, 2.0, 0.3])
    p = process_logits(logits, SamplingConfig(temperature=t))
    torch.testing.assert_close(p, (logits / t).softmax(-1))
    # lower temperature -> peakier
    assert (p.max() > logits.softmax(-1).max()) == (t < 1)


def test_greedy_is_one_hot_argmax():
    logits = torch.tensor([[0.1, 3.0, -1.0, 2.9], [5.0, 0.0, 0.0, 0.0]])
    p = process_logits(logits, SamplingConfig(temperature=0.0))
    assert p.tolist() == [[0, 1, 0, 0], [1, 0, 0, 0]]
    assert SamplingConfig().greedy and not SamplingConfig(temperature=0.1).greedy


def test_greedy_ignores_top_k_and_top_p():
    logits = torch.tensor([0.1, 3.0, -1.0, 2.9])
    p = process_logits(logits, SamplingConfig(temperature=0.0, top_k=1, top_p=0.1))
    assert p.tolist() == [0, 1, 0, 0]


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_top_k_keeps_exactly_k(k):
    logits = torch.tensor([0.3, 2.0, -1.0, 1.5, 0.9, -0.2, 1.1])
    p = process_logits(logits, SamplingConfig(temperature=1.0, top_k=k))
    kept = set(torch.nonzero(p).flatten().tolist())
    assert kept == set(logits.argsort(descending=True)[:k].tolist())
    assert math.isclose(float(p.sum()), 1.0, rel_tol=1e-6)
    # the kept tokens keep their relative odds
    top = sorted(kept)
    torch.testing.assert_close(p[top], logits[top].softmax(-1))


def test_top_k_zero_or_large_is_off():
    logits = torch.tensor([0.3, 2.0, -1.0, 1.5])
    for k in (0, 4, 10):
        torch.testing.assert_close(process_logits(logits, SamplingConfig(temperature=1.0, top_k=k)), logits.softmax(-1))


@pytest.mark.parametrize(
    "top_p, kept",
    [(0.3, 1), (0.5, 1), (0.6, 2), (0.75, 2), (0.85, 3), (0.93, 4), (0.97, 5), (1.0, 5)],
)
def test_top_p_keeps_the_minimal_prefix_reaching_p(top_p, kept):
    probs = [0.05, 0.5, 0.1, 0.3, 0.05]  # sorted: 0.5, 0.3, 0.1, 0.05, 0.05 -> cumulative 0.5, 0.8, 0.9, 0.95, 1
    # boundaries: 0.5 is reached by one token; 0.97 needs all five (0.95 < 0.97)
    p = process_logits(logits_of(probs), SamplingConfig(temperature=1.0, top_p=top_p))
    nz = torch.nonzero(p).flatten().tolist()
    assert len(nz) == kept
    order = [1, 3, 2, 0, 4]
    assert set(nz) == set(order[:kept]) or kept == 5
    assert math.isclose(float(p.sum()), 1.0, rel_tol=1e-6)
    expect = torch.tensor(probs)[nz]
    torch.testing.assert_close(p[nz], expect / expect.sum())


def test_top_p_keeps_the_top_token_even_for_tiny_p():
    p = process_logits(logits_of([0.2, 0.6, 0.2]), SamplingConfig(temperature=1.0, top_p=0.01))
    assert p.tolist() == [0.0, 1.0, 0.0]


def test_top_p_is_applied_after_top_k_and_temperature():
    probs = torch.tensor([0.4, 0.3, 0.2, 0.1])
    # top-k 2 -> (4/7, 3/7); top-p 0.5 is then reached by the first token alone.
    # (top-p on the original 0.4, 0.3 would keep both.)
    p = process_logits(probs.log(), SamplingConfig(temperature=1.0, top_k=2, top_p=0.5))
    assert p.tolist() == [1.0, 0.0, 0.0, 0.0]
    # temperature first: at T=0.2 the top token's mass is 0.788 >= 0.75, so top-p 0.75 keeps it alone;
    # at T=1, 0.4 + 0.3 < 0.75 and three tokens stay
    p = process_logits(probs.log(), SamplingConfig(temperature=0.2, top_p=0.75))
    assert torch.count_nonzero(p) == 1
    p = process_logits(probs.log(), SamplingConfig(temperature=1.0, top_p=0.75))
    assert torch.count_nonzero(p) == 3


def test_batched_rows_are_processed_independently():
    logits = torch.randn(3, 5, 9, generator=torch.Generator().manual_seed(0))
    cfg = SamplingConfig(temperature=0.8, top_k=6, top_p=0.9)
    full = process_logits(logits, cfg)
    assert full.shape == (3, 5, 9)
    for i in range(3):
        for j in range(5):
            torch.testing.assert_close(full[i, j], process_logits(logits[i, j], cfg))


@pytest.mark.parametrize(
    "kwargs",
    [dict(temperature=-0.1), dict(top_k=-1), dict(top_p=0.0), dict(top_p=1.5), dict(top_p=-0.2)],
)
def test_invalid_sampling_configs_raise_input_error(kwargs):
    with pytest.raises(InputError) as e:
        SamplingConfig(**kwargs)
    assert list(kwargs)[0] in str(e.value)  # the message names the bad field


def test_sample_shapes_and_seeded_reproducibility():
    probs = torch.tensor([[0.1, 0.6, 0.3], [0.0, 0.0, 1.0]])
    out = sample(probs, torch.Generator().manual_seed(3))
    assert out.shape == (2,) and out.dtype == torch.long
    assert int(out[1]) == 2
    runs = [sample(probs[:1].expand(50, 3).contiguous(), torch.Generator().manual_seed(7)).tolist() for _ in range(2)]
    assert runs[0] == runs[1]


def test_make_generator_uses_the_seed():
    g1, g2 = make_generator(SamplingConfig(temperature=1.0, seed=5)), make_generator(SamplingConfig(temperature=1.0, seed=5))
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))
    g3 = make_generator(SamplingConfig(temperature=1.0, seed=6))
    assert not torch.equal(torch.rand(4, generator=make_generator(SamplingConfig(seed=5))), torch.rand(4, generator=g3))


def test_make_generator_without_seed_leaves_the_global_rng_alone():
    """An unseeded generation must not reseed torch's global RNG (user code relying on manual_seed)."""
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    g1, g2 = make_generator(SamplingConfig(temperature=1.0)), make_generator(SamplingConfig(temperature=1.0))
    assert torch.equal(torch.rand(3), want)
    assert not torch.equal(torch.rand(8, generator=g1), torch.rand(8, generator=g2))  # still random per call


@pytest.mark.parametrize("kw", [{"temperature": float("nan")}, {"temperature": float("inf")}, {"temperature": -1.0},
                                {"top_p": float("nan")}, {"top_k": -1}])
def test_bad_sampling_values_are_one_clear_error(kw):
    from specdec.errors import InputError

    with pytest.raises(InputError):
        SamplingConfig(**kw)
