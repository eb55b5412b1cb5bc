"""The kernel library's `top_probs` (kernels/qmatmul.cpp): each row's k likeliest tokens and their softmax
probabilities in one fused call, the same tokens as torch.topk and the same probabilities within float rounding;
the loop's `target_top` takes it where the kernel is loaded and torch's ops elsewhere, with the same results."""
from __future__ import annotations

import pytest
import torch

from specdec.engine import loop
from specdec.weights import kernels


@pytest.fixture(scope="module")
def ext():
    if not kernels.cpu_supported():
        pytest.skip("this CPU has no AVX512-VNNI: the kernel library cannot run here")
    return kernels.load()


def reference(x: torch.Tensor, k: int):
    vals, ids = x.topk(k, dim=-1)
    return ids, (vals - x.logsumexp(-1, keepdim=True)).exp()


@pytest.mark.parametrize("R,V,k", [(1, 151936, 4), (3, 151936, 1), (17, 4099, 16), (2, 5, 5), (5, 40000, 8)])
def test_top_probs_match_torch(ext, R, V, k):
    g = torch.Generator().manual_seed(R * 1000 + k)
    x = torch.randn(R, V, generator=g) * 4  # (R, V)
    ids, probs = ext.top_probs(x, k)
    ref_ids, ref_probs = reference(x, k)
    assert ids.dtype == torch.int64 and ids.shape == probs.shape == (R, k)
    assert torch.equal(ids, ref_ids)
    torch.testing.assert_close(probs, ref_probs, rtol=1e-5, atol=1e-7)


def test_ties_go_to_the_lower_id_nan_counts_largest_and_minus_infinity_weighs_nothing(ext):
    V = 9000  # parts of several thousand values: ties across parts and within one
    x = torch.full((2, V), -5.0)
    x[0, [8500, 17, 4600, 3]] = 2.0  # four equal maxima in three parts
    x[0, 100:200] = float("-inf")
    x[1, 7000] = float("nan")
    x[1, 10] = 1.0
    ids, probs = ext.top_probs(x, 3)
    assert ids[0].tolist() == [3, 17, 4600]
    torch.testing.assert_close(probs[0], torch.softmax(x[0], -1)[[3, 17, 4600]], rtol=1e-5, atol=0)
    assert ids[1].tolist()[:2] == [7000, 10]


def test_bad_arguments_are_refused(ext):
    with pytest.raises(RuntimeError, match="k must be"):
        ext.top_probs(torch.zeros(1, 8), 17)
    with pytest.raises(RuntimeError, match="float32"):
        ext.top_probs(torch.zeros(1, 8, dtype=torch.float64), 2)


def test_target_top_takes_the_kernel_where_it_is_loaded_and_torch_elsewhere(ext, monkeypatch):
    x = torch.randn(4, 30000, generator=torch.Generator().manual_seed(5))
    calls = []
    real = ext.top_probs

    class Spy:
        def top_probs(self, logits, k):
            calls.append(k)
            return real(logits, k)

    monkeypatch.setattr(kernels, "loaded", lambda: Spy())
    fused = loop.target_top(x, 4)
    monkeypatch.setattr(kernels, "loaded", lambda: None)
    plain = loop.target_top(x, 4)
    assert calls == [4]
    assert torch.equal(fused[0], plain[0])
    torch.testing.assert_close(fused[1], plain[1], rtol=1e-5, atol=1e-7)
