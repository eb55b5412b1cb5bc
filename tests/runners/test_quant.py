"""specdec.weights.quant and the qmatmul kernel: GGUF codes kept exactly, the kernel layout round-trips, the
kernel computes what its reference says, row by row independently of the other rows."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spec_helpers import make_model
from specdec.weights import kernels, quant

QK_K = 256


def _random_blocks(qtype: str, n: int, seed: int = 0) -> np.ndarray:
    """Random but valid blocks: finite fp16 scales, any code bytes."""
    rng = np.random.default_rng(seed)
    size = {"Q4_K": 144, "Q4_0": 18, "Q4_1": 20, "Q8_0": 34, "Q5_0": 22, "Q6_K": 210}[qtype]
    b = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    f16 = lambda k: rng.uniform(0.001, 0.05, size=(n, k)).astype(np.float16).view(np.uint8)  # noqa: E731
    if qtype == "Q6_K":
        b[:, 208:210] = f16(1)  # d (the last two bytes); the int8 scales before it take any byte
    elif qtype == "Q4_K":
        b[:, 0:4] = f16(2)  # d, dmin
    elif qtype == "Q4_1":
        b[:, 0:4] = f16(2)  # d, m
    else:
        b[:, 0:2] = f16(1)
    return b


@pytest.mark.parametrize("qtype", ["Q4_K", "Q4_0", "Q4_1", "Q6_K", "Q8_0", "Q5_0"])
def test_gguf_codes_reproduce_ggmls_dequantization(qtype):
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    rows, cols = 32, 512
    per_block = QK_K if qtype.endswith("_K") else 32
    raw = _random_blocks(qtype, rows * cols // per_block).reshape(rows, -1)
    want = dequantize(raw, GGMLQuantizationType[qtype]).reshape(rows, cols)  # float32, ggml's own formula
    c = quant.gguf_codes(raw, qtype, rows, cols)
    assert c.bits == {"Q4": 4, "Q6": 6}.get(qtype[:2], 8) and c.S == (8 if qtype.endswith("_K") else 1)
    got = c.dequantize().numpy()
    if qtype == "Q6_K":  # d * s * (q - 32): every product exact in fp32, as in ggml
        np.testing.assert_array_equal(got, want)
    elif qtype in ("Q4_K", "Q4_0", "Q4_1"):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * np.abs(want).max())
    else:  # 8-bit: d*(q-128+128)-d*128 rounds once more in fp32 than ggml's d*q
        np.testing.assert_allclose(got, want, rtol=2e-7, atol=1e-7 * np.abs(want).max())


def _q6k_codes(N: int, K: int, seed: int = 0) -> quant.Codes:
    """Q6_K codes from random (valid) GGUF blocks: 6-bit values, signed int8 scales per 16 inputs."""
    return quant.gguf_codes(_random_blocks("Q6_K", N * K // QK_K, seed).reshape(N, -1), "Q6_K", N, K)


def _codes(bits: int, N: int, K: int, seed: int) -> quant.Codes:
    g = torch.Generator().manual_seed(seed)
    return _q6k_codes(N, K, seed) if bits == 6 else quant.rtn_codes(torch.randn(N, K, generator=g), bits)


def test_6bit_codes_round_trip_through_the_kernel_layout():
    c = _q6k_codes(48, 512, 3)
    assert int(c.q.max()) == 63 and c.sc.view(torch.int8).min() < 0  # every code bit and signed scales in play
    w = quant.pack(c)
    assert w.bits == 6 and w.codes.shape == (3, 16, 384)
    u = w.unpack()
    for k in ("q", "sc", "mn", "d", "dm"):
        assert torch.equal(getattr(u, k), getattr(c, k)), k
    with pytest.raises(ValueError, match="half_scales"):
        c.scale_min()


@pytest.mark.parametrize("bits", [4, 8])
def test_pack_unpack_round_trip_and_rtn_error(bits):
    w = torch.randn(48, 96, generator=torch.Generator().manual_seed(1))
    c = quant.rtn_codes(w, bits)
    u = quant.pack(c).unpack()
    for k in ("q", "sc", "mn", "d", "dm"):
        assert torch.equal(getattr(u, k), getattr(c, k)), k
    step = (w.reshape(48, 3, 32).amax(-1) - w.reshape(48, 3, 32).amin(-1)) / 15 if bits == 4 else \
        w.reshape(48, 3, 32).abs().amax(-1) / 127
    err = (c.dequantize() - w).abs().reshape(48, 3, 32).amax(-1)
    assert (err <= 0.51 * step + 1e-3 * step.max()).all()  # round to nearest, fp16 scales


def test_pack_refuses_shapes_the_kernel_cannot_take():
    from specdec.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="out_features % 16"):
        quant.pack(quant.rtn_codes(torch.randn(24, 64), 4))


def _vnni():
    if not kernels.cpu_supported():
        pytest.skip("this CPU has no AVX512-VNNI: the qmatmul kernel cannot run here (the aten fallback is tested)")
    return kernels.load()


def _avx2():
    if not kernels.cpu_supported_avx2():
        pytest.skip("this CPU has no AVX2 / FMA / F16C: the kernel's AVX2 build cannot run here")
    return kernels.load_avx2()


def _build(kernel: str):
    """The kernel's build for `kernel` ("vnni" or "avx2"), or a skip where this CPU cannot run it."""
    return _vnni() if kernel == "vnni" else _avx2() if kernel == "avx2" else None


@pytest.mark.parametrize("build", ["vnni", "avx2"])
@pytest.mark.parametrize("bits", [4, 6, 8])
def test_kernel_matches_its_reference_and_is_row_invariant(bits, build):
    ext = _build(build)
    g = torch.Generator().manual_seed(2)
    w = quant.pack(_codes(bits, 64, 256, 2))
    x = torch.randn(11, 256, generator=g)
    y = ext.qmatmul(x, w.codes, w.sc, w.mn, w.d, w.dm, bits)
    ref = quant.reference_qmatmul(x, w)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-4)
    for lo, hi in [(3, 4), (0, 8), (8, 11), (2, 9)]:  # a row's output does not depend on the rows beside it
        assert torch.equal(ext.qmatmul(x[lo:hi].contiguous(), w.codes, w.sc, w.mn, w.d, w.dm, bits), y[lo:hi])
    # W4A8: close to the float product, activations quantized per group of 32
    full = x @ quant.QWeight(w.codes, w.sc, w.mn, w.d, w.dm).unpack().dequantize().T
    assert (y - full).abs().max() < 0.02 * full.abs().max()


@pytest.mark.parametrize("bits", [4, 6, 8])
def test_avx2_build_saturates_no_sum_at_the_extreme_codes_and_activations(bits):
    """AVX2 sums code x activation pairs in int16 (vpmaddubsw saturates): its bounds hold at the worst case, every
    code at its largest value against activations all +-127 (a saturated sum would miss by thousands of steps)."""
    ext = _avx2()
    top = {4: 15, 6: 63, 8: 255}[bits]
    c = _codes(bits, 32, 256, 4)
    c = quant.Codes(torch.full_like(c.q, top), c.sc, c.mn, c.d, c.dm, bits)
    w = quant.pack(c)
    x = torch.ones(3, 256)
    x[1] = -1.0
    x[2, ::2] = -1.0  # alternating signs: the group sums cancel, the products do not
    y = ext.qmatmul(x, w.codes, w.sc, w.mn, w.d, w.dm, bits)
    torch.testing.assert_close(y, quant.reference_qmatmul(x, w), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("bits", [4, 6, 8])
def test_avx2_build_gives_the_vnni_paths_bits(bits):
    """Where both builds run (an AVX-512 CPU): the same outputs bit for bit, for every row count up to two row
    blocks of each, so a model's tokens do not depend on which build its CPU got."""
    vnni, avx2 = _vnni(), _avx2()
    g = torch.Generator().manual_seed(7)
    w = quant.pack(_codes(bits, 48, 512, 7))
    x = torch.randn(17, 512, generator=g) * 3
    args = (w.codes, w.sc, w.mn, w.d, w.dm, bits)
    before = vnni.amx_min_rows()
    vnni.set_amx_min_rows(0)
    try:
        for m in range(1, 18):
            assert torch.equal(avx2.qmatmul(x[:m].contiguous(), *args), vnni.qmatmul(x[:m].contiguous(), *args)), m
    finally:
        vnni.set_amx_min_rows(before)


def _superblock_weights(N: int, K: int, seed: int) -> quant.QWeight:
    """Q4_K-shaped random weights: 4-bit codes, 6-bit sub-block scales and mins, d and dmin per 8 groups."""
    g = torch.Generator().manual_seed(seed)
    B, G = N // 16, K // 32
    u8 = lambda hi, *shape: torch.randint(0, hi, shape, generator=g, dtype=torch.uint8)  # noqa: E731
    f16 = lambda: (torch.rand(B, G // 8, 16, generator=g) * 1e-2 + 1e-4).half()  # noqa: E731
    return quant.QWeight(u8(256, B, G, 256), u8(64, B, G, 16), u8(64, B, G, 16), f16(), f16())


def _superblock_reference(x: torch.Tensor, w: quant.QWeight) -> torch.Tensor:
    """The super-block path's arithmetic in float64: activations to int8 per 256 (step max|x| / 127, round half to
    even, as the kernel), exact integer dots per group, y = xs * (d * sum_g sc_g dot_g - dmin * sum_g mn_g sum(xq_g))."""
    c = w.unpack()
    M, K = x.shape
    G = K // 32
    xb = x.float().reshape(M, K // 256, 256)
    amax = xb.abs().amax(-1)  # (M, K/256)
    inv = torch.where(amax > 0, 127 / amax, torch.zeros_like(amax))
    xq = torch.round(xb * inv[..., None]).clamp(-128, 127).double().reshape(M, G, 32)
    dots = torch.einsum("mgk,ngk->mng", xq, c.q.double().reshape(-1, G, 32))  # (M, N, G) exact integers
    isum = (dots * c.sc.double()[None]).reshape(M, -1, G // 8, 8).sum(-1)  # (M, N, K/256)
    imin = (xq.sum(-1)[:, None, :] * c.mn.double()[None]).reshape(M, -1, G // 8, 8).sum(-1)
    xs = (amax / 127).double()[:, None, :]  # (M, 1, K/256)
    return (xs * (c.d.double()[None] * isum - c.dm.double()[None] * imin)).sum(-1).float()


def test_superblock_path_matches_its_reference_and_is_row_invariant():
    """SPECDEC_SUPERBLOCKS: Q4_K weights with activations quantized per 256, the sub-block scales applied in int32.
    Its own numbers (not the per-32 path's), a row's output independent of the rows beside it, close to the float
    product; 6-bit weights and weights without 256-value super-blocks keep the per-32 path."""
    ext = _vnni()
    g = torch.Generator().manual_seed(4)
    w = _superblock_weights(64, 768, 5)
    x = torch.randn(11, 768, generator=g)
    args = (w.codes, w.sc, w.mn, w.d, w.dm, 4)
    ext.set_superblocks(False)
    try:
        per32 = ext.qmatmul(x, *args)
        assert ext.set_superblocks(True)
        y = ext.qmatmul(x, *args)
        torch.testing.assert_close(y, _superblock_reference(x, w), rtol=1e-5, atol=1e-6)
        assert not torch.equal(y, per32)  # the switch took effect: other numbers
        for lo, hi in [(3, 4), (0, 8), (8, 11), (2, 9)]:
            assert torch.equal(ext.qmatmul(x[lo:hi].contiguous(), *args), y[lo:hi])
        full = x @ w.unpack().dequantize().T
        assert (y - full).abs().max() < 0.03 * full.abs().max()
        w6 = quant.pack(_codes(6, 64, 256, 2))  # Q6_K: no super-block path
        x6 = x[:, :256].contiguous()
        torch.testing.assert_close(ext.qmatmul(x6, w6.codes, w6.sc, w6.mn, w6.d, w6.dm, 6),
                                   quant.reference_qmatmul(x6, w6), rtol=1e-5, atol=1e-4)
        w1 = quant.pack(_codes(4, 64, 256, 3))  # round-to-nearest 4-bit: d per group (S = 1), the per-32 path
        x1 = x[:, :256].contiguous()
        torch.testing.assert_close(ext.qmatmul(x1, w1.codes, w1.sc, w1.mn, w1.d, w1.dm, 4),
                                   quant.reference_qmatmul(x1, w1), rtol=1e-5, atol=1e-4)
    finally:
        ext.set_superblocks(kernels.superblocks())  # as the process's environment says


def test_superblocks_switch_is_read_once_and_checked(monkeypatch):
    for value, want in [("", False), ("0", False), ("off", False), ("1", True), ("on", True)]:
        monkeypatch.setenv(kernels.SUPERBLOCKS_ENV, value)
        assert kernels.superblocks() is want
    monkeypatch.setenv(kernels.SUPERBLOCKS_ENV, "maybe")
    with pytest.raises(kernels.ModelLoadError, match="SPECDEC_SUPERBLOCKS must be 1 or 0"):
        kernels.superblocks()


@pytest.fixture
def amx_ext():
    ext = _vnni()
    if not ext.amx_available():
        pytest.skip("this CPU or OS runs no AMX tiles (no amx_int8 flag, or Linux refused the tile state)")
    before = ext.amx_min_rows()
    yield ext
    ext.set_amx_min_rows(before)


@pytest.mark.parametrize("bits", [4, 6, 8])
def test_amx_path_equals_the_vnni_path_bit_for_bit(amx_ext, bits):
    """Every row count a pass can have (partial tiles, one and two tiles a chunk, several chunks): the AMX path
    gives the VNNI path's bits, so a token's logits do not depend on which path its pass took (6-bit codes stay
    on VNNI whatever the threshold)."""
    ext = amx_ext
    g = torch.Generator().manual_seed(5)
    w = quant.pack(_codes(bits, 48, 512, 5))
    x = torch.randn(70, 512, generator=g) * 3
    args = (w.codes, w.sc, w.mn, w.d, w.dm, bits)
    for m in [1, 2, 5, 15, 16, 17, 31, 32, 33, 48, 64, 70]:
        assert ext.set_amx_min_rows(0) == 0
        vnni = ext.qmatmul(x[:m].contiguous(), *args)
        assert ext.set_amx_min_rows(1) == 1
        amx = ext.qmatmul(x[:m].contiguous(), *args)
        assert torch.equal(amx, vnni), m
    ref = quant.reference_qmatmul(x, w)  # fp32 sums in another order: close to the output's scale
    torch.testing.assert_close(amx, ref, rtol=1e-5, atol=1e-6 * ref.abs().max().item())


def _q4k_codes(N: int, K: int, seed: int) -> quant.Codes:
    """Q4_K-shaped codes (6-bit scales and mins, fp16 d / dmin per 8 groups) with random values."""
    g = torch.Generator().manual_seed(seed)
    G = K // 32
    u8 = lambda hi, shape: torch.randint(0, hi, shape, generator=g, dtype=torch.uint8)  # noqa: E731
    f16 = lambda: (torch.rand(N, G // 8, generator=g) * 0.01 + 1e-4).half()  # noqa: E731
    return quant.Codes(u8(16, (N, K)), u8(64, (N, G)), u8(64, (N, G)), f16(), f16(), 4)


@pytest.mark.parametrize("bits", [4, 6, 8])
def test_bf16_prefill_path_is_the_bf16_rounded_product(amx_ext, bits):
    """qmatmul_bf16 (prefill passes): the exact weights rounded to bf16 times the activations rounded to bf16,
    summed in fp32; every row count (partial tiles, odd block counts, several K slices), each row independent
    of the rows beside it; and as close to the float product as the int8 path is."""
    ext = amx_ext
    if not ext.bf16_prefill_available():
        pytest.skip("this CPU runs no AMX-BF16 tiles")
    for M, N, K in [(1, 16, 256), (17, 48, 256), (40, 32, 512), (70, 80, 1024), (512, 16, 2304)]:
        c = _q4k_codes(N, K, M) if bits == 4 else _codes(bits, N, K, M)
        w = quant.pack(c)
        x = torch.randn(M, K, generator=torch.Generator().manual_seed(M)) * 3
        y = ext.qmatmul_bf16(x, w.codes, w.sc, w.mn, w.d, w.dm, bits)
        assert y.shape == (M, N) and y.is_contiguous()
        wf = c.dequantize()
        exact = x.double() @ wf.double().T
        rounded = x.bfloat16().double() @ wf.bfloat16().double().T
        scale = exact.abs().max()
        assert (y.double() - rounded).abs().max() < 1e-5 * scale, (M, N, K)  # fp32 sums of bf16 products
        assert (y.double() - exact).abs().max() < 1e-2 * scale, (M, N, K)
        int8 = ext.qmatmul(x, w.codes, w.sc, w.mn, w.d, w.dm, bits)
        bf16_err = (y.double() - exact).abs().mean()
        assert bf16_err < 2 * (int8.double() - exact).abs().mean(), (M, N, K)
        for lo, hi in [(0, 1), (M // 2, M)]:  # a row's output does not depend on the rows beside it
            assert torch.equal(ext.qmatmul_bf16(x[lo:hi].contiguous(), w.codes, w.sc, w.mn, w.d, w.dm, bits),
                               y[lo:hi]), (M, lo, hi)


def test_amx_threshold_follows_the_mode(monkeypatch):
    from specdec.errors import ModelLoadError

    for forced, want in (("vnni", 0), ("amx", 1), ("auto", kernels.AMX_MIN_ROWS), ("", kernels.AMX_MIN_ROWS),
                         ("int8", kernels.AMX_MIN_ROWS)):
        monkeypatch.setenv("SPECDEC_QKERNEL", forced)
        assert kernels.amx_threshold() == want
        # bf16 prefill: under auto and amx, and only where the CPU has AMX-BF16
        assert kernels.bf16_prefill_in_effect() == (forced in ("", "auto", "amx") and kernels.cpu_supported()
                                                    and kernels.cpu_has_amx_bf16())
    monkeypatch.setenv("SPECDEC_QKERNEL", "tiles")
    with pytest.raises(ModelLoadError, match="SPECDEC_QKERNEL must be one of"):
        kernels.mode()


@pytest.mark.parametrize("kernel", ["vnni", "avx2", "aten", "reference"])
def test_a_6_bit_linear_on_every_kernel_is_the_exact_weights_product(kernel):
    """QLinear with Q6_K codes: specdec's kernel (both builds), its torch reference and the aten fallback (which
    turns the codes into per-channel int8) all give about x @ W^T for W the GGUF's exact values, with a bias."""
    _build(kernel)
    c = _q6k_codes(64, 512, 9)
    w = c.dequantize()  # (64, 512) the exact values
    bias = torch.randn(64, generator=torch.Generator().manual_seed(1))
    lin = quant.QLinear(quant.pack(c), bias.clone(), kernel)
    assert lin.bits == 6
    x = torch.randn(2, 5, 512, generator=torch.Generator().manual_seed(2))
    want = x @ w.T + bias
    got = lin(x)
    assert got.shape == (2, 5, 64)
    assert float((got - want).abs().max() / want.abs().max()) < 0.02  # W6A8 (aten: W8A16)


@pytest.mark.parametrize("kernel", ["vnni", "avx2", "aten", "reference"])
@pytest.mark.parametrize("weights", ["int4", "int8"])
def test_quantized_model_tracks_the_float_model(kernel, weights):
    _build(kernel)
    model = make_model("qwen2", seed=0, sharp=4.0)
    ids = torch.randint(3, 64, (1, 12), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = model(ids).logits
        tensors = quant.quantize_from_weights(model, weights)
        q = quant.quantize_model(make_model("qwen2", seed=0, sharp=4.0), tensors, kernel=kernel)
        assert quant.fuse_projections(q) == (4 if kernel != "aten" else 0)  # 2 layers x (qkv, gate/up)
        got = q(ids).logits
    assert {type(m).__name__ for m in q.modules()} >= {"QLinear"}
    rel = float((got - ref).abs().max() / ref.abs().max())
    assert rel < (0.15 if weights == "int4" else 0.03), rel
    agree = float((got.argmax(-1) == ref.argmax(-1)).float().mean())
    assert agree >= (0.75 if weights == "int4" else 0.9), agree


def test_fused_projections_give_the_separate_ones_outputs():
    model = make_model("qwen2", seed=4, sharp=4.0)
    q = quant.quantize_model(model, quant.quantize_from_weights(model, "int4"), kernel="reference")
    x = torch.randn(3, 32)
    attn = q.model.layers[0].self_attn
    sep = [attn.q_proj(x), attn.k_proj(x), attn.v_proj(x)]
    quant.fuse_projections(q)
    fused = attn.qkv_proj(x).split(attn.qkv_proj.split_sizes, -1)
    for a, b in zip(sep, fused):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    assert attn.q_proj.codes.data_ptr() == attn.qkv_proj.codes.data_ptr()  # views, not a second copy


def test_the_kernels_path_and_version_key_a_runners_cost_cache(monkeypatch):
    """A pass-cost curve measured on the VNNI path alone (or by an older kernel) is not reused for the AMX path:
    the kernel's signature is part of a quantized runner's fingerprint; an fp32 runner's has none."""
    from specdec.runners.torch_runner import TorchRunner

    _vnni()
    monkeypatch.setenv("SPECDEC_QKERNEL", "vnni")
    vnni = kernels.signature()
    monkeypatch.setenv("SPECDEC_QKERNEL", "auto")
    auto = kernels.signature()
    assert vnni.startswith("vnni|amx>=0|") and (vnni != auto) == kernels.cpu_has_amx()
    model = make_model("qwen2", seed=0)
    assert "kernel=" not in TorchRunner(model, max_context=32).fingerprint()
    q = quant.quantize_model(make_model("qwen2", seed=0), quant.quantize_from_weights(model, "int4"), kernel="vnni")
    quant.compute_in_float32(q)
    assert f"|kernel={auto}" in TorchRunner(q, max_context=32).fingerprint()
