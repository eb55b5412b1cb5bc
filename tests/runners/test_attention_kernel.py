"""The kernel library's attention (kernels/qmatmul.cpp `attention`, and its AVX2 build's in qmatmul_avx2.cpp):
close to softmax attention, and a row's output is the same bits whatever else shares its pass and wherever its
visible slots lie (what makes greedy verification of chains and trees equal plain decoding)."""
from __future__ import annotations

import pytest
import torch

from specdec.weights import kernels


@pytest.fixture(scope="module", params=["vnni", "avx2"])
def ext(request):
    if request.param == "vnni" and not kernels.cpu_supported():
        pytest.skip("this CPU has no AVX512-VNNI: the kernel library cannot run here")
    if request.param == "avx2" and not kernels.cpu_supported_avx2():
        pytest.skip("this CPU has no AVX2 / FMA / F16C: the kernel library's AVX2 build cannot run here")
    return kernels.load_for(request.param)


def _caches(g, S=80, D=64, Hkv=2):  # D=64, 128 and, below, 24 (a partial 16-lane chunk) and 20 (the slow path)
    return torch.randn(1, Hkv, S, D, generator=g), torch.randn(1, Hkv, S, D, generator=g)


@pytest.mark.parametrize("D", [64, 128, 24, 20])
def test_attention_matches_softmax_attention(ext, D):
    g = torch.Generator().manual_seed(0)
    kc, vc = _caches(g, D=D)
    T, L, Hq = 7, 45, 6  # L not a multiple of 16: a partial block of keys
    q = torch.randn(1, Hq, T, D, generator=g) * 2
    mask = torch.rand(T, L, generator=g) > 0.3
    mask[:, 0] = True
    out = ext.attention(q, kc, vc, mask, 0.125)  # (1, T, Hq*D)
    k = kc[:, :, :L].repeat_interleave(Hq // 2, 1)
    v = vc[:, :, :L].repeat_interleave(Hq // 2, 1)
    ref = torch.softmax((q @ k.transpose(-1, -2) * 0.125).masked_fill(~mask, float("-inf")), -1) @ v
    torch.testing.assert_close(out, ref.transpose(1, 2).reshape(1, T, Hq * D), rtol=1e-5, atol=1e-5)


def test_a_row_does_not_depend_on_the_pass_or_on_its_slots(ext):
    """Row t of a 20-row pass == the same row alone; a 'tree' row whose ancestors sit at scattered slots ==
    the same tokens laid out as a chain (bit for bit)."""
    g = torch.Generator().manual_seed(1)
    kc, vc = _caches(g, S=96)
    T, L, Hq, D = 20, 70, 4, 64
    q = torch.randn(1, Hq, T, D, generator=g)
    mask = torch.tril(torch.ones(T, L, dtype=torch.bool), diagonal=L - T)
    mask[5, 50:60] = False  # a tree-like row that skips some slots
    full = ext.attention(q, kc, vc, mask, 0.1)
    for t in (0, 5, 13, 19):
        alone = ext.attention(q[:, :, t:t + 1].contiguous(), kc, vc, mask[t:t + 1].contiguous(), 0.1)
        assert torch.equal(alone, full[:, t:t + 1])
    # row 5 sees slots [0, 50) and [60, 56 + ...]: lay the same keys out contiguously (a chain) and compare
    seen = mask[5].nonzero().flatten()
    kc2, vc2 = torch.zeros_like(kc), torch.zeros_like(vc)
    kc2[:, :, : len(seen)], vc2[:, :, : len(seen)] = kc[:, :, seen], vc[:, :, seen]
    chain = ext.attention(q[:, :, 5:6].contiguous(), kc2, vc2, torch.ones(1, len(seen), dtype=torch.bool), 0.1)
    assert torch.equal(chain, full[:, 5:6])


def test_a_row_that_sees_nothing_is_zero(ext):
    g = torch.Generator().manual_seed(2)
    kc, vc = _caches(g)
    out = ext.attention(torch.randn(1, 2, 1, 64, generator=g), kc, vc, torch.zeros(1, 20, dtype=torch.bool), 1.0)
    assert torch.equal(out, torch.zeros_like(out))
