"""Weight-only quantization for the torch runner, built from the GGUF's own codes where there is a GGUF.

Why: decoding one token reads every weight once, so on a CPU its time is the bytes read divided by the
memory bandwidth. The bundled models ship as Q4_K_M GGUF files (1.12 GB for the 1.5B); dequantized to bf16
they are 3.55 GB, and the torch runner read 3.2x the bytes llama.cpp reads for the same model.

One representation, `Codes`, per linear layer (N outputs x K inputs, groups of 32 inputs):

    w[n, k] = d[n, g/S] * sc[n, g] * q[n, k]  -  dm[n, g/S] * mn[n, g]        g = k / 32

with q 4-bit (0..15) or 8-bit (0..255) codes, sc / mn small integers, d / dm fp16 per S groups; and 6-bit codes
(Q6_K), whose scales are per 16 inputs and signed:

    w[n, k] = d[n, g/8] * s[n, k/16] * (q[n, k] - 32)      s = sc[n, g] for k % 32 < 16, else mn[n, g] (as int8)

It holds the GGUF's values exactly:
    Q4_K   4-bit, S = 8 (256-value super-blocks), sc / mn its 6-bit scales and mins     (d*sc exact in fp32)
    Q4_0   4-bit, S = 1, w = d (q - 8)            Q4_1  4-bit, S = 1, w = d q + m
    Q8_0   8-bit, w = d (q - 128)                  Q5_0  8-bit, w = d (q5 - 16) with q = q5 - 16 + 128
    Q6_K   6-bit, S = 8, its int8 scales per 16 values in sc (first half of a group) and mn (second half)
    other  (Q5_1, F16, ...) 8-bit by round-to-nearest per group of 32 from the bf16 weights
           (step = 1/127 of the group's largest weight)
Why Q6_K is kept in 6 bits: the bundled 1.5B's output layer and half of its attn_v / ffn_down are Q6_K; as 8-bit
codes with a scale and a minimum per 32 (9.5 bits a weight) they were 512 MB of the 1.155 GB a decoded token
reads, against 6.56 bits in the GGUF (docs/runners.md, "6-bit codes").

`--weights`:
    int4  4-bit where the GGUF is 4-bit (85% of the bundled 1.5B's linear weights: all but half of attn_v /
          ffn_down and the output layer, which are Q6_K and keep their 6-bit codes on specdec's kernel), 8-bit
          elsewhere; a model without a GGUF gets round-to-nearest 4-bit (min / max per group of 32)
    int8  8-bit everywhere
    int4-all  4-bit everywhere: int4, and round-to-nearest 4-bit (min / max per group of 32) for the tensors that
          are not 4-bit in the GGUF -- lossy, for draft models, whose errors only cost acceptance, never
          output (the 0.5B draft is mostly Q5_0: int4 keeps it 8-bit)
Kernels: specdec's AVX512-VNNI kernel (`kernels/qmatmul.cpp`: activations quantized to int8 per group of 32,
like llama.cpp's K-quant dot products; passes of 12+ rows on AMX tiles where the CPU has them, same numbers;
prompt prefills of 48+ rows through bf16 AMX tiles, `prefill_linear`), its AVX2 build on CPUs with AVX2 but
no VNNI (`kernels/qmatmul_avx2.cpp`, the same numbers), or, on CPUs without either, PyTorch's int4 / int8 kernels
(`_weight_int4pack_mm_for_cpu` with bf16 scale / zero per group, `_weight_int8pack_mm` per channel).
The zoo caches the `QWeight` tensors (`weights-<format>.packed`, a safetensors file, next to the bf16 copy).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from specdec.errors import InputError, ModelLoadError
from specdec.weights.arena import cat_into_arena, in_arena, arena_empty

WEIGHTS = ("bf16", "int8", "int4", "int4-all")
GROUP = 32  # inputs per group (= the GGUF's sub-block size)
FORMAT_VERSION = 3  # 3: Q6_K in 6-bit codes
INT4_TYPES = ("Q4_K", "Q4_0", "Q4_1")  # GGUF types whose codes are 4-bit
INT6_TYPES = ("Q6_K",)  # 6-bit codes, scales per 16 inputs (the aten fallback requantizes them to 8 bits)
INT8_TYPES = ("Q8_0", "Q5_0")  # GGUF types whose codes fit 8 bits exactly
CODE_BYTES = {4: 256, 6: 384, 8: 512}  # bytes of codes per group of 32 inputs and block of 16 outputs
_BITS_OF = {v: k for k, v in CODE_BYTES.items()}
LINEAR_SUFFIXES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head")


def check_weights(weights: str) -> str:
    if weights not in WEIGHTS + ("auto",):
        raise InputError(f"weights must be one of {', '.join(WEIGHTS)} or auto, got {weights!r}")
    return weights


# ------------------------------------------------------------------------------------------ codes
@dataclass
class Codes:
    """w = d[:, g // S] * sc[:, g] * q  -  dm[:, g // S] * mn[:, g]  (see the module docstring)."""

    q: torch.Tensor  # (N, K) uint8
    sc: torch.Tensor  # (N, G) uint8
    mn: torch.Tensor  # (N, G) uint8
    d: torch.Tensor  # (N, G / S) float16
    dm: torch.Tensor  # (N, G / S) float16
    bits: int

    @property
    def S(self) -> int:
        return self.sc.shape[1] // self.d.shape[1]

    def rows(self, idx: torch.Tensor) -> "Codes":
        return Codes(self.q[idx], self.sc[idx], self.mn[idx], self.d[idx], self.dm[idx], self.bits)

    def scale_min(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, G) float32 each: w = scale * q - minus per group (4- and 8-bit codes; 6-bit ones have two scales a
        group: `half_scales`)."""
        if self.bits == 6:
            raise ValueError("6-bit codes have a scale per 16 inputs: use half_scales()")
        S = self.S
        d = self.d.float().repeat_interleave(S, 1)
        dm = self.dm.float().repeat_interleave(S, 1)
        return d * self.sc.float(), dm * self.mn.float()

    def half_scales(self) -> torch.Tensor:
        """6-bit codes: (N, G, 2) float32, d * s of each half group (exact in fp32: an fp16 times an int8)."""
        d = self.d.float().repeat_interleave(self.S, 1)  # (N, G)
        s = torch.stack([self.sc, self.mn], -1).view(torch.int8).float()  # (N, G, 2)
        return d[..., None] * s

    def dequantize(self) -> torch.Tensor:
        """(N, K) float32, exactly the formula above (for a GGUF tensor: what ggml computes)."""
        if self.bits == 6:
            N, K = self.q.shape
            q = self.q.float().reshape(N, K // GROUP, 2, GROUP // 2) - 32
            return (self.half_scales()[..., None] * q).reshape(N, K)
        scale, minus = self.scale_min()
        q = self.q.float().reshape(self.q.shape[0], -1, GROUP)
        return (scale[..., None] * q - minus[..., None]).reshape(self.q.shape)


def _f16(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.float16)


def gguf_codes(raw: np.ndarray, qtype: str, rows: int, cols: int) -> Codes:
    """The `Codes` of a Q4_K / Q4_0 / Q4_1 / Q6_K / Q8_0 / Q5_0 GGUF tensor's bytes (N = rows, K = cols)."""
    G = cols // GROUP
    if qtype == "Q6_K":  # ggml's block: ql (128 bytes), qh (64), int8 scales per 16 values (16), d (fp16)
        b = np.ascontiguousarray(raw).reshape(-1, 210)
        ql = b[:, :128].reshape(-1, 2, 1, 64) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)
        qh = b[:, 128:192].reshape(-1, 2, 1, 32) >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)
        q = ((ql & np.uint8(0x0F)).reshape(-1, 256) | ((qh & np.uint8(3)).reshape(-1, 256) << np.uint8(4)))
        q = q.reshape(rows, cols)
        s = b[:, 192:208].reshape(rows, G, 2)  # int8 bits: the scales of each group's two halves
        sc, mn = s[..., 0], s[..., 1]
        d = dm = _f16(b[:, 208:210]).reshape(rows, G // 8)  # dm: unused by 6-bit codes
        bits = 6
    elif qtype == "Q4_K":
        from gguf.quants import Q4_K

        b = np.ascontiguousarray(raw).reshape(-1, 144)  # super-blocks of 256 values
        sc, mn = Q4_K.get_scale_min(b[:, 4:16].copy())  # (n, 8) each, 6-bit
        qs = b[:, 16:].reshape(-1, 4, 1, 32) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)
        q = (qs & np.uint8(0x0F)).reshape(rows, cols)  # 4 chunks of 64: low nibbles (32), then high (32)
        d, dm = _f16(b[:, 0:2]).reshape(rows, G // 8), _f16(b[:, 2:4]).reshape(rows, G // 8)
        sc, mn = sc.reshape(rows, G), mn.reshape(rows, G)
        bits = 4
    elif qtype in ("Q4_0", "Q4_1"):
        size = 18 if qtype == "Q4_0" else 20
        b = np.ascontiguousarray(raw).reshape(-1, size)
        qs = b[:, size - 16:].reshape(-1, 1, 16) >> np.array([0, 4], dtype=np.uint8).reshape(1, 2, 1)
        q = (qs & np.uint8(0x0F)).reshape(rows, cols)
        d = _f16(b[:, 0:2]).reshape(rows, G)
        one = np.ones((rows, G), np.uint8)
        if qtype == "Q4_0":  # w = d (q - 8)
            sc, mn, dm = one, np.full((rows, G), 8, np.uint8), d
        else:  # w = d q + m
            sc, mn, dm = one, one, -_f16(b[:, 2:4]).reshape(rows, G)
        bits = 4
    elif qtype in ("Q8_0", "Q5_0"):
        if qtype == "Q8_0":
            b = np.ascontiguousarray(raw).reshape(-1, 34)
            w8 = b[:, 2:].view(np.int8).astype(np.int16)  # (n, 32)
        else:
            b = np.ascontiguousarray(raw).reshape(-1, 22)
            qh = b[:, 2:6].copy().view(np.uint32).reshape(-1, 1) >> np.arange(32, dtype=np.uint32).reshape(1, 32)
            ql = b[:, 6:].reshape(-1, 1, 16) >> np.array([0, 4], dtype=np.uint8).reshape(1, 2, 1)
            q5 = (ql & np.uint8(0x0F)).reshape(-1, 32) | ((qh & np.uint32(1)).astype(np.uint8) << np.uint8(4))
            w8 = q5.astype(np.int16) - 16
        q = (w8 + 128).astype(np.uint8).reshape(rows, cols)
        d = _f16(b[:, 0:2]).reshape(rows, G)
        sc, mn, dm = np.ones((rows, G), np.uint8), np.full((rows, G), 128, np.uint8), d
        bits = 8
    else:
        raise ModelLoadError(f"no exact codes for GGUF type {qtype}")
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a).copy())  # noqa: E731
    return Codes(t(q), t(sc), t(mn), t(d), t(dm), bits)


def rtn_codes(w: torch.Tensor, bits: int) -> Codes:
    """Round-to-nearest codes per group of 32 from real weights (N, K): 4-bit asymmetric (min / max) or 8-bit
    symmetric (max |w| / 127); the scales are rounded to fp16 first, so the codes fit the stored scales."""
    N, K = w.shape
    g = w.float().reshape(N, K // GROUP, GROUP)
    one = torch.ones(N, K // GROUP, dtype=torch.uint8)
    if bits == 4:
        lo, hi = g.amin(-1), g.amax(-1)
        d = ((hi - lo) / 15).clamp_min(1e-8).half()
        dm = (-lo).half()  # w = d q - dm
        q = ((g + dm.float()[..., None]) / d.float()[..., None]).round().clamp(0, 15)
        return Codes(q.reshape(N, K).to(torch.uint8), one, one, d, dm, 4)
    d = (g.abs().amax(-1) / 127).clamp_min(1e-8).half()
    q = (g / d.float()[..., None]).round().clamp(-127, 127) + 128
    return Codes(q.reshape(N, K).to(torch.uint8), one, torch.full_like(one, 128), d, d.clone(), 8)


# ------------------------------------------------------------------------------------------ kernel format
@dataclass
class QWeight:
    """`Codes` laid out for the VNNI kernel (see kernels/qmatmul.cpp): codes (N/16, G, 256 | 384 | 512) uint8,
    sc / mn (N/16, G, 16) uint8, d / dm (N/16, G/S, 16) float16."""

    codes: torch.Tensor
    sc: torch.Tensor
    mn: torch.Tensor
    d: torch.Tensor
    dm: torch.Tensor

    @property
    def bits(self) -> int:
        return _BITS_OF[self.codes.shape[2]]

    @property
    def shape(self) -> tuple[int, int]:
        return self.codes.shape[0] * 16, self.codes.shape[1] * GROUP

    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}.codes": self.codes, f"{prefix}.sc": self.sc, f"{prefix}.mn": self.mn,
                f"{prefix}.d": self.d, f"{prefix}.dm": self.dm}

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor], prefix: str) -> "QWeight":
        return cls(*(t[f"{prefix}.{k}"] for k in ("codes", "sc", "mn", "d", "dm")))

    def unpack(self) -> Codes:
        """Back to `Codes` (N, K) (inverse of `pack`)."""
        B, G, nbytes = self.codes.shape
        N, K = B * 16, G * GROUP
        if self.bits in (4, 6):
            c = self.codes[:, :, :256].reshape(B, G, 4, 16, 4)  # (b, g, chunk, j, s)
            lo, hi = c & 0x0F, c >> 4
            q = torch.stack([lo, hi], dim=3)  # (b, g, chunk, lohi, j, s)
            q = q.permute(0, 4, 1, 2, 3, 5).reshape(N, K)
            if self.bits == 6:  # the high 2 bits: plane h, byte 4j+s, bits 2t..2t+1 -> input 16h + 4t + s
                h = self.codes[:, :, 256:].reshape(B, G, 2, 16, 1, 4) >> torch.tensor([0, 2, 4, 6],
                                                                                   dtype=torch.uint8).reshape(4, 1)
                h = (h & 3).permute(0, 3, 1, 2, 4, 5).reshape(N, K)  # (b, j, g, plane, t, s)
                q = q | (h << 4)
        else:
            q = self.codes.reshape(B, G, 8, 16, 4).permute(0, 3, 1, 2, 4).reshape(N, K)  # (b, j, g, quad, s)
        f = lambda a: a.permute(0, 2, 1).reshape(N, -1)  # noqa: E731  (b, g, j) -> (n, g)
        return Codes(q.contiguous(), f(self.sc), f(self.mn), f(self.d), f(self.dm), self.bits)


def pack(c: Codes) -> QWeight:
    N, K = c.q.shape
    if N % 16 or K % GROUP:
        raise ModelLoadError(f"quantized weights need out_features % 16 == 0 and in_features % {GROUP} == 0, "
                             f"got ({N}, {K})")
    B, G = N // 16, K // GROUP
    if c.bits in (4, 6):  # the low 4 bits
        q = (c.q & 0x0F).reshape(B, 16, G, 4, 2, 4)  # (b, j, g, chunk, lohi, s): k = 32g + 8chunk + 4lohi + s
        q = q.permute(0, 2, 3, 4, 1, 5)  # (b, g, chunk, lohi, j, s)
        codes = (q[:, :, :, 0] | (q[:, :, :, 1] << 4)).reshape(B, G, 256)
        if c.bits == 6:  # the high 2 bits of input 16h + 4t + s in plane h, byte 4j+s, bits 2t..2t+1
            h = (c.q >> 4).reshape(B, 16, G, 2, 4, 4).permute(0, 2, 3, 1, 4, 5)  # (b, g, plane, j, t, s)
            h = h[..., 0, :] | (h[..., 1, :] << 2) | (h[..., 2, :] << 4) | (h[..., 3, :] << 6)  # (b, g, plane, j, s)
            codes = torch.cat([codes, h.reshape(B, G, 128)], -1)
    else:
        codes = c.q.reshape(B, 16, G, 8, 4).permute(0, 2, 3, 1, 4).reshape(B, G, 512)  # (b, g, quad, j, s)
    f = lambda a: a.reshape(B, 16, -1).permute(0, 2, 1).contiguous()  # noqa: E731  (n, g) -> (b, g, j)
    return QWeight(codes.contiguous(), f(c.sc), f(c.mn), f(c.d), f(c.dm))


def reference_qmatmul(x: torch.Tensor, w: QWeight) -> torch.Tensor:
    """The VNNI kernel's arithmetic in plain torch (slow; tests): activations to int8
    per group of 32 (step max|x| / 127, round half to even), exact integer dot products per group, then
    y = sum_g scale_g * xs_g * dot_g - minus_g * xs_g * sum(xq_g)."""
    c = w.unpack()
    M, K = x.shape
    xg = x.float().reshape(M, K // GROUP, GROUP)
    amax = xg.abs().amax(-1)  # (M, G)
    xs = amax / 127
    inv = torch.where(amax > 0, 127 / amax, torch.zeros_like(amax))
    xq = torch.round(xg * inv[..., None]).clamp(-128, 127)  # (M, G, 32)
    q = c.q.float().reshape(c.q.shape[0], K // GROUP, GROUP)  # (N, G, 32)
    if c.bits == 6:  # exact integer dots per half group with (q - 32), then (dot_a * s_a + dot_b * s_b) * xs
        h = lambda a: a.reshape(*a.shape[:2], 2, GROUP // 2).double()  # noqa: E731
        dots = torch.einsum("mghk,nghk->mngh", h(xq), h(q) - 32).float()  # (M, N, G, 2)
        hs = c.half_scales()  # (N, G, 2)
        t = dots[..., 0] * hs[None, ..., 0] + dots[..., 1] * hs[None, ..., 1]  # (M, N, G)
        return (t * xs[:, None, :]).sum(-1)
    dots = torch.einsum("mgk,ngk->mng", xq.double(), q.double()).float()  # exact integers
    scale, minus = c.scale_min()  # (N, G)
    y = (dots * xs[:, None, :] * scale[None]).sum(-1) - ((xs * xq.sum(-1))[:, None, :] * minus[None]).sum(-1)
    return y  # (M, N) float32


# ------------------------------------------------------------------------------------------ modules
class QLinear(nn.Module):
    """nn.Linear with `QWeight` weights: x (..., K) -> (..., N), through specdec's VNNI kernel, its AVX2 build
    (the same numbers), PyTorch's int4 / int8 kernels (kernels.mode() == "aten") or the torch reference."""

    def __init__(self, w: QWeight, bias: torch.Tensor | None, kernel: str | None = None) -> None:
        super().__init__()
        from specdec.weights import kernels

        self.out_features, self.in_features = w.shape
        self.bits = w.bits
        self.kernel = kernel or kernels.mode()
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)
        if self.kernel == "aten":  # PyTorch's kernels want their own layout: converted once here
            c = w.unpack()
            if self.bits == 4:
                scale, minus = c.scale_min()
                sz = torch.stack([scale, 8 * scale - minus], -1).transpose(0, 1).contiguous().to(torch.bfloat16)
                self.register_buffer("qweight", torch.ops.aten._convert_weight_to_int4pack_for_cpu(
                    c.q.to(torch.int32), 1))  # (N, K/2): w = (q - 8) * scale + zero
                self.register_buffer("scale_zeros", sz)  # (G, N, 2)
            else:  # 8-bit codes with per-group scales -> int8 per channel (requantized once)
                wf = c.dequantize()
                scales = (wf.abs().amax(-1) / 127).clamp_min(1e-12)
                self.register_buffer("qweight", (wf / scales[:, None]).round().clamp(-127, 127).to(torch.int8))
                self.register_buffer("scales", scales.to(torch.bfloat16))
        else:
            for k, v in (("codes", w.codes), ("sc", w.sc), ("mn", w.mn), ("d", w.d), ("dm", w.dm)):
                self.register_buffer(k, v)
            if kernels.on_kernel(self.kernel):
                kernels.load_for(self.kernel)  # compiled (or loaded) now, not in the middle of a generation

    def qweight_(self) -> QWeight:
        return QWeight(self.codes, self.sc, self.mn, self.d, self.dm)

    def forward(self, x: torch.Tensor, bf16: bool = False) -> torch.Tensor:
        """bf16: on specdec's kernel, multiply through bf16 tiles (`qmatmul_bf16`; prefills only, see
        `prefill_linear`); the other kernels ignore it."""
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        if self.kernel == "vnni":
            from specdec.weights import kernels

            # eager: the extension directly (the custom op's Python dispatch costs ~20 us a call, 141 calls a
            # token on the 1.5B); under torch.compile the custom op, which the compiler keeps whole
            fn = kernels.OP if torch.compiler.is_compiling() else \
                kernels.load().qmatmul_bf16 if bf16 else kernels.load().qmatmul
            y = fn(x2.float(), self.codes, self.sc, self.mn, self.d, self.dm, self.bits)
        elif self.kernel == "avx2":  # the same layout and numbers on AVX2 (no bf16 prefill path there)
            from specdec.weights import kernels

            fn = kernels.OP_AVX2 if torch.compiler.is_compiling() else kernels.load_avx2().qmatmul
            y = fn(x2.float(), self.codes, self.sc, self.mn, self.d, self.dm, self.bits)
        elif self.kernel == "aten":
            if self.bits == 4:
                y = torch.ops.aten._weight_int4pack_mm_for_cpu(x2.to(torch.bfloat16), self.qweight, GROUP,
                                                               self.scale_zeros)
            else:
                y = torch.ops.aten._weight_int8pack_mm(x2.to(torch.bfloat16), self.qweight, self.scales)
        else:
            y = reference_qmatmul(x2, self.qweight_())
        y = y.reshape(*shape[:-1], self.out_features).to(x.dtype)  # (..., N)
        return y if self.bias is None else y + self.bias


def prefill_linear(mod: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`mod(x)` for a prompt prefill's chunk: a `QLinear` on specdec's kernel multiplies through bf16 AMX tiles
    (`qmatmul_bf16`: each weight dequantized once per pass, exact Q4_K values rounded to bf16, activations in
    bf16, fp32 sums), any other module as usual. Why: the int8 paths' per-group float work is paid per row
    (docs/runners.md, "A prefill through bf16 tiles"). Only for prefills: its numbers differ from a decode
    pass's, and plain and speculative runs prefill the same prompt through it alike."""
    return mod(x, bf16=True) if isinstance(mod, QLinear) and mod.kernel == "vnni" else mod(x)


def linear_names(model: nn.Module) -> list[str]:
    """The nn.Linear modules that get quantized: every decoder-layer projection and the output layer."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.split(".")[-1] in LINEAR_SUFFIXES]


def swap_linear(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, new)


def quantize_model(model: nn.Module, tensors: dict[str, torch.Tensor], kernel: str | None = None) -> nn.Module:
    """Swap every linear layer that has `NAME.codes` in `tensors` for a `QLinear`; biases stay the model's."""
    for name in linear_names(model):
        if f"{name}.codes" not in tensors:
            continue
        lin = model.get_submodule(name)
        w = QWeight.from_tensors(tensors, name)
        if w.shape != (lin.out_features, lin.in_features):
            raise ModelLoadError(f"quantized {name} is {w.shape[0]}x{w.shape[1]}, the model's {lin.out_features}x"
                                 f"{lin.in_features}: the packed weights belong to another model")
        bias = lin.bias.data if lin.bias is not None else None
        swap_linear(model, name, QLinear(w, bias, kernel))
    if getattr(model.config, "tie_word_embeddings", False):
        model.config.tie_word_embeddings = False  # the output layer is its own (quantized) module now
    return model


def _fuse(mods: list[QLinear]) -> tuple[QLinear, list[QLinear]] | None:
    """One QLinear over the concatenated outputs of `mods` (same input, bits, super-group size and kernel),
    and the parts again as views of its tensors (no second copy of the weights)."""
    if len({m.kernel for m in mods}) != 1 or mods[0].kernel == "aten":
        return None  # PyTorch's kernels keep their own layouts
    ws = [m.qweight_() for m in mods]
    if len({(w.bits, w.sc.shape[1] // w.d.shape[1], w.codes.shape[1]) for w in ws}) != 1:
        return None
    cat = QWeight(*(cat_into_arena([getattr(w, k) for w in ws]) for k in ("codes", "sc", "mn", "d", "dm")))
    biases = [m.bias for m in mods]
    bias = torch.cat([b.data for b in biases]) if all(b is not None for b in biases) else None
    if bias is None and any(b is not None for b in biases):
        return None
    fused = QLinear(cat, bias, mods[0].kernel)
    parts, b0 = [], 0
    for m in mods:
        nb = m.codes.shape[0]
        view = QWeight(*(getattr(fused, k)[b0 : b0 + nb] for k in ("codes", "sc", "mn", "d", "dm")))
        parts.append(QLinear(view, None if bias is None else fused.bias.data[b0 * 16 : (b0 + nb) * 16], m.kernel))
        b0 += nb
    return fused, parts


def fuse_projections(model: nn.Module) -> int:
    """Per decoder layer, q/k/v -> `self_attn.qkv_proj` and gate/up -> `mlp.gate_up_proj` where they are
    quantized alike: 4 kernel calls a layer instead of 7 and one activation quantization for each shared
    input (the 0.5B draft: 38 -> 29 ms a token measured with int4-all before fusing; see docs/runners.md).
    The separate modules stay, as views of the fused tensors. Returns the number of fusions."""
    n = 0
    for layer in getattr(getattr(model, "model", None), "layers", []):
        attn, mlp = layer.self_attn, layer.mlp
        for owner, names, fused_name in ((attn, ("q_proj", "k_proj", "v_proj"), "qkv_proj"),
                                         (mlp, ("gate_proj", "up_proj"), "gate_up_proj")):
            mods = [getattr(owner, nm, None) for nm in names]
            if not all(isinstance(m, QLinear) for m in mods):
                continue
            done = _fuse(mods)
            if done is None:
                continue
            fused, parts = done
            fused.split_sizes = [m.out_features for m in mods]
            setattr(owner, fused_name, fused)
            for nm, part in zip(names, parts):
                setattr(owner, nm, part)
            n += 1
    return n


def to_hugepages(model: nn.Module) -> int:
    """Copy every quantized weight not yet in the huge-page arena into it (fused projections were
    concatenated straight into it; their parts are views and stay views). Each byte of the packed file is
    copied once on the way: the loader hands out views of the mapped file (specdec.zoo.packed.load_packed).
    Measured on the 1.5B int4 load with an eval running beside it: 15.2 s of copies before (a clone of each
    misaligned tensor, the fuse's cat, then this copy), 6.1 s after (bench/profile/load_figures.txt)."""
    mods = [m for m in model.modules() if isinstance(m, QLinear) and hasattr(m, "codes")]
    names = ("codes", "sc", "mn", "d", "dm")
    moved: dict[tuple, torch.Tensor] = {}
    total = 0
    for m in mods:
        for k in names:
            t = getattr(m, k)
            if in_arena(t):
                continue
            key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()))
            if key not in moved:
                moved[key] = arena_empty(tuple(t.shape), t.dtype).copy_(t)
                total += t.numel() * t.element_size()
            setattr(m, k, moved[key])
    return total


def compute_in_float32(model: nn.Module) -> nn.Module:
    """Everything but the embedding table (and the quantized codes) to float32: the kernels take and give
    float32, so activations stay float32 end to end (no bf16 round trips around every linear layer: 7 per
    layer, measured ~3 ms a token of conversions on the 1.5B) and the KV cache is float32."""
    emb = model.get_input_embeddings()
    for mod in model.modules():
        if mod is emb or isinstance(mod, QLinear):  # codes and kernel scales keep their own dtypes
            if isinstance(mod, QLinear) and mod.bias is not None:
                mod.bias = nn.Parameter(mod.bias.data.float(), requires_grad=False)
            continue
        for name, p in list(mod.named_parameters(recurse=False)):
            if p.is_floating_point():
                setattr(mod, name, nn.Parameter(p.data.float(), requires_grad=False))
        for name, b in list(mod.named_buffers(recurse=False)):
            if b is not None and b.is_floating_point():
                mod.register_buffer(name, b.float(), persistent=name in mod._buffers and name not in
                                    mod._non_persistent_buffers_set)
    return model


def quantize_from_weights(model: nn.Module, weights: str) -> dict[str, torch.Tensor]:
    """Round-to-nearest `QWeight` tensors for every linear layer of `model` (no GGUF codes available)."""
    out: dict[str, torch.Tensor] = {}
    for name in linear_names(model):
        w = model.get_submodule(name).weight.data
        if w.shape[0] % 16 or w.shape[1] % GROUP:
            continue  # stays a float nn.Linear
        out.update(pack(rtn_codes(w, 4 if weights.startswith("int4") else 8)).tensors(name))
    return out
