// specdec's quantized linear layer for CPUs with AVX2 but no AVX512-VNNI (AMD Zen 2/3, Intel Haswell to Comet Lake,
// Intel client chips from Alder Lake on): the same call, weight layout and numbers as qmatmul.cpp's VNNI path
// (read that file's header first), with AVX2's vpmaddubsw (u8 x s8 -> s16 pairs) and vpmaddwd (s16 pairs -> s32)
// in place of vpdpbusd, 8 outputs a register instead of 16.
//
// Why: without this, such CPUs ran PyTorch's int4 kernel, which dequantizes to bf16 and grows with the rows of a
// pass (2-core AVX2 EPYC, the bundled 1.5B: 5.4 tok/s against llama.cpp's 16.7; docs/runners.md).
//
// The same numbers: vpmaddubsw saturates its s16 pair sums, so each sum is kept where it cannot: activations are
// int8 in [-127, 127] (amax / 127 steps), so a 4-bit code pair sums to at most 2 * 15 * 127 = 3810 and 8 of them
// (16 inputs) to 30480 < 32767, summed in s16 over a whole group; 6-bit codes (<= 63) two pairs (32004) before
// each vpmaddwd; 8-bit codes (w8 + 128, up to 255) go as their two nibbles (code = 16 hi + lo), each summed like
// 4-bit codes. Every int32 sum is then exact, so it is the VNNI path's sum, and the float steps are the VNNI
// path's steps in the same order (group_step, per lane), so a row's output is the VNNI path's bits, and does not
// depend on the other rows of its pass.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

constexpr int GROUP = 32;
constexpr int MR = 4;  // rows per register block (16 ymm registers: 2 accumulators a row, 4 code registers)
constexpr int64_t PFD = 8;  // codes prefetched this many groups ahead, as in qmatmul.cpp

inline float hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

inline float hsum8f(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

inline int32_t hsum8(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// x (M, K) fp32 -> xq (M, K) int8, xs (M, G) scale, xsq (M, G) = xs * sum(xq); for 6-bit weights also xh (M, 2G)
// = 32 * sum(xq) per half group. The steps of qmatmul.cpp's quantize_rows: the same amax, scale, inverse and
// rounding (to nearest even), so the same codes.
void quantize_rows(const float* x, int64_t M, int64_t K, int8_t* xq, float* xs, float* xsq, int32_t* xh) {
  const int64_t G = K / GROUP;
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t i = 0; i < M * G; ++i) {
    const float* p = x + i * GROUP;
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(p + 8 * k);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
    }
    const float a = hmax8(amax);
    const float scale = a / 127.0f;
    const __m256 vinv = _mm256_set1_ps(a > 0 ? 127.0f / a : 0.0f);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], vinv));
    // int32 -> int8 with saturation (two packs, then the lanes put back in order)
    const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256((__m256i*)(xq + i * GROUP), _mm256_permutevar8x32_epi32(b, order));
    const int32_t sa = hsum8(_mm256_add_epi32(q[0], q[1])), sb = hsum8(_mm256_add_epi32(q[2], q[3]));
    if (xh) {
      xh[2 * i] = 32 * sa;
      xh[2 * i + 1] = 32 * sb;
    }
    xs[i] = scale;
    xsq[i] = scale * (float)(sa + sb);
  }
}

// qmatmul.cpp's group_step on 8 lanes: the same three float operations in the same order
inline __m256 group_step(__m256 tot, __m256i acc, __m256 s, __m256 m, float xs, float xsq) {
  __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(xs));
  tot = _mm256_fmadd_ps(t, s, tot);
  return _mm256_fnmadd_ps(m, _mm256_set1_ps(xsq), tot);
}

inline __m256 f16x8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }
inline __m256 u8x8(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)p)));
}
inline __m256 i8x8(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)p)));
}
inline __m256i bcast4(const int8_t* p) { return _mm256_set1_epi32(*(const int32_t*)p); }

// the low and high nibbles of 32 code bytes at p
inline void nibbles(const uint8_t* p, __m256i& lo, __m256i& hi) {
  const __m256i m0f = _mm256_set1_epi8(0x0F);
  const __m256i v = _mm256_loadu_si256((const __m256i*)p);
  lo = _mm256_and_si256(v, m0f);
  hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m0f);
}

// R rows x 16 outputs (two halves of 8) of 4- or 8-bit codes, qmatmul.cpp's block_rows
//
// SUMS_IN_ORDER: the empty asm statements on the int16 sums pin each sum to a register where it is made. Without
// them gcc 12 reassociates the integer adds: it computes all 64 products of a group (4 rows) first, keeps them on
// the stack (188 stack moves in the loop, a 2 KB frame) and sums them after. With them, and the scale index kept
// as a counter instead of a 64-bit division a group, the layer's three shapes of the 1.5B (2-core Zen 3, fastest of
// 12, interleaved; docs/results/runners/2026-12-07-avx2-sums/kernel_ab.txt) run 4-bit 90 -> 126 GMAC/s on 4-16
// rows (1.38x) and 8-bit 62 -> 84 (1.35x); the 6-bit path, 16 sums a row block, is left as it was (pinning them
// there spilled and ran slower). The same sums, so the bits do not change.
template <int R, bool FOUR>
inline void block_rows(const uint8_t* codes, const uint8_t* sc, const uint8_t* mn, const uint16_t* d,
                       const uint16_t* dm, int64_t G, int64_t S, const int8_t* xq, const float* xs,
                       const float* xsq, int64_t K, float* y, int64_t ldy) {
  const __m256i ones = _mm256_set1_epi16(1), sixteen = _mm256_set1_epi16(16);
  __m256 tot[R][2];
  for (int r = 0; r < R; ++r) tot[r][0] = tot[r][1] = _mm256_setzero_ps();
  const int64_t cbytes = FOUR ? 256 : 512;
  for (int64_t g = 0, sg = 0, sk = 0; g < G; ++g, sk = sk + 1 == S ? 0 : sk + 1, sg += sk == 0) {  // sg = g / S
    const uint8_t* p = codes + g * cbytes;
    const int8_t* xg = xq + g * GROUP;
    for (int64_t o = 0; o < cbytes; o += 64) _mm_prefetch((const char*)(p + PFD * cbytes + o), _MM_HINT_T0);
    __m256i acc[R][2];
    if (FOUR) {  // chunk c: low nibbles inputs 8c..8c+3, high nibbles 8c+4..8c+7; s16 sums over the group
      __m256i s16[R][2];
      for (int r = 0; r < R; ++r) s16[r][0] = s16[r][1] = _mm256_setzero_si256();
      for (int c = 0; c < 4; ++c) {
        __m256i lo[2], hi[2];
        for (int h = 0; h < 2; ++h) nibbles(p + 64 * c + 32 * h, lo[h], hi[h]);
        for (int r = 0; r < R; ++r) {
          const __m256i bl = bcast4(xg + r * K + 8 * c), bh = bcast4(xg + r * K + 8 * c + 4);
          for (int h = 0; h < 2; ++h) {
            s16[r][h] = _mm256_add_epi16(s16[r][h], _mm256_add_epi16(_mm256_maddubs_epi16(lo[h], bl),
                                                                     _mm256_maddubs_epi16(hi[h], bh)));
            __asm__("" : "+x"(s16[r][h]));  // see SUMS_IN_ORDER
          }
        }
      }
      for (int r = 0; r < R; ++r)
        for (int h = 0; h < 2; ++h) acc[r][h] = _mm256_madd_epi16(s16[r][h], ones);
    } else {  // quad q: inputs 4q..4q+3; code = 16 * high nibble + low nibble, each summed in s16 over the group
      __m256i sl[R][2], sh[R][2];
      for (int r = 0; r < R; ++r) sl[r][0] = sl[r][1] = sh[r][0] = sh[r][1] = _mm256_setzero_si256();
      for (int q = 0; q < 8; ++q) {
        __m256i lo[2], hi[2];
        for (int h = 0; h < 2; ++h) nibbles(p + 64 * q + 32 * h, lo[h], hi[h]);
        for (int r = 0; r < R; ++r) {
          const __m256i bx = bcast4(xg + r * K + 4 * q);
          for (int h = 0; h < 2; ++h) {
            sl[r][h] = _mm256_add_epi16(sl[r][h], _mm256_maddubs_epi16(lo[h], bx));
            sh[r][h] = _mm256_add_epi16(sh[r][h], _mm256_maddubs_epi16(hi[h], bx));
            __asm__("" : "+x"(sl[r][h]), "+x"(sh[r][h]));  // see SUMS_IN_ORDER
          }
        }
      }
      for (int r = 0; r < R; ++r)
        for (int h = 0; h < 2; ++h)
          acc[r][h] = _mm256_add_epi32(_mm256_madd_epi16(sl[r][h], ones), _mm256_madd_epi16(sh[r][h], sixteen));
    }
    const int64_t Gx = K / GROUP;
    for (int h = 0; h < 2; ++h) {
      const __m256 s = _mm256_mul_ps(f16x8(d + sg * 16 + 8 * h), u8x8(sc + g * 16 + 8 * h));
      const __m256 m = _mm256_mul_ps(f16x8(dm + sg * 16 + 8 * h), u8x8(mn + g * 16 + 8 * h));
      for (int r = 0; r < R; ++r) tot[r][h] = group_step(tot[r][h], acc[r][h], s, m, xs[r * Gx + g], xsq[r * Gx + g]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int h = 0; h < 2; ++h) _mm256_storeu_ps(y + r * ldy + 8 * h, tot[r][h]);
}

// qmatmul.cpp's high_bits: the high 2 bits of quad 4h+t from plane h at bits 2t, moved to bits 4-5
template <int T>
inline __m256i high_bits(__m256i h) {
  const __m256i m30 = _mm256_set1_epi8(0x30);
  if (T == 0) return _mm256_and_si256(_mm256_slli_epi16(h, 4), m30);
  if (T == 1) return _mm256_and_si256(_mm256_slli_epi16(h, 2), m30);
  if (T == 2) return _mm256_and_si256(h, m30);
  return _mm256_and_si256(_mm256_srli_epi16(h, 2), m30);
}

// R rows x 16 outputs of 6-bit codes, qmatmul.cpp's block_rows6: per half group an int32 sum a row (inputs 0-15:
// chunks 0 and 1, 16-31: chunks 2 and 3), less 32 * the activations' sum, then t = a * sa + b * sb, tot += t * xs
template <int R>
inline void block_rows6(const uint8_t* codes, const uint8_t* sc, const uint8_t* mn, const uint16_t* d, int64_t G,
                        int64_t S, const int8_t* xq, const float* xs, const int32_t* xh, int64_t K, float* y,
                        int64_t ldy) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 tot[R][2];
  for (int r = 0; r < R; ++r) tot[r][0] = tot[r][1] = _mm256_setzero_ps();
  for (int64_t g = 0, sg = 0, sk = 0; g < G; ++g, sk = sk + 1 == S ? 0 : sk + 1, sg += sk == 0) {  // sg = g / S
    const uint8_t* p = codes + g * 384;
    const int8_t* xg = xq + g * GROUP;
    for (int64_t o = 0; o < 384; o += 64) _mm_prefetch((const char*)(p + PFD * 384 + o), _MM_HINT_T0);
    __m256i half[2][R][2];  // [half group][row][output half]
    for (int a = 0; a < 2; ++a)
      for (int r = 0; r < R; ++r) half[a][r][0] = half[a][r][1] = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      __m256i lo[2], hi[2];
      for (int h = 0; h < 2; ++h) {
        const __m256i hb = _mm256_loadu_si256((const __m256i*)(p + 256 + 64 * (c / 2) + 32 * h));
        __m256i l4, h4;
        nibbles(p + 64 * c + 32 * h, l4, h4);
        if (c % 2 == 0) {
          lo[h] = _mm256_or_si256(l4, high_bits<0>(hb));
          hi[h] = _mm256_or_si256(h4, high_bits<1>(hb));
        } else {
          lo[h] = _mm256_or_si256(l4, high_bits<2>(hb));
          hi[h] = _mm256_or_si256(h4, high_bits<3>(hb));
        }
      }
      for (int r = 0; r < R; ++r) {
        const __m256i bl = bcast4(xg + r * K + 8 * c), bh = bcast4(xg + r * K + 8 * c + 4);
        for (int h = 0; h < 2; ++h) {  // two pairs of 6-bit products: at most 32004, then to int32
          const __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo[h], bl), _mm256_maddubs_epi16(hi[h], bh));
          half[c / 2][r][h] = _mm256_add_epi32(half[c / 2][r][h], _mm256_madd_epi16(s16, ones));
        }
      }
    }
    for (int h = 0; h < 2; ++h) {
      const __m256 dv = f16x8(d + sg * 16 + 8 * h);
      const __m256 sa = _mm256_mul_ps(dv, i8x8(sc + g * 16 + 8 * h));
      const __m256 sb = _mm256_mul_ps(dv, i8x8(mn + g * 16 + 8 * h));
      for (int r = 0; r < R; ++r) {
        const int32_t* hs = xh + 2 * (r * G + g);
        const __m256 ta = _mm256_cvtepi32_ps(_mm256_sub_epi32(half[0][r][h], _mm256_set1_epi32(hs[0])));
        const __m256 tb = _mm256_cvtepi32_ps(_mm256_sub_epi32(half[1][r][h], _mm256_set1_epi32(hs[1])));
        const __m256 t = _mm256_fmadd_ps(tb, sb, _mm256_mul_ps(ta, sa));
        tot[r][h] = _mm256_fmadd_ps(t, _mm256_set1_ps(xs[r * G + g]), tot[r][h]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int h = 0; h < 2; ++h) _mm256_storeu_ps(y + r * ldy + 8 * h, tot[r][h]);
}

inline int64_t code_bytes(int64_t bits) { return bits == 4 ? 256 : bits == 6 ? 384 : 512; }

}  // namespace

// x (M, K) float32; codes, sc, mn, d, dm as qmatmul.cpp takes them; returns (M, N) float32
torch::Tensor qmatmul(torch::Tensor x, torch::Tensor codes, torch::Tensor sc, torch::Tensor mn, torch::Tensor d,
                      torch::Tensor dm, int64_t bits) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == torch::kFloat32, "x must be (M, K) float32");
  TORCH_CHECK(bits == 4 || bits == 6 || bits == 8, "bits must be 4, 6 or 8");
  x = x.contiguous();
  const int64_t M = x.size(0), K = x.size(1);
  TORCH_CHECK(K % GROUP == 0, "K must be a multiple of 32");
  const int64_t B = codes.size(0), G = codes.size(1);
  TORCH_CHECK(G * GROUP == K, "codes do not match K");
  TORCH_CHECK(codes.size(2) == code_bytes(bits), "codes have the wrong group size");
  TORCH_CHECK(d.size(1) > 0 && G % d.size(1) == 0, "scales do not match the groups");
  const int64_t S = G / d.size(1), GS = d.size(1), N = B * 16, cbytes = code_bytes(bits);
  auto y = torch::empty({M, N}, torch::kFloat32);
  auto xq = torch::empty({M, K}, torch::kInt8);
  auto xs = torch::empty({M, G}, torch::kFloat32);
  auto xsq = torch::empty({M, G}, torch::kFloat32);
  auto xh = torch::empty({bits == 6 ? M : 0, 2 * G}, torch::kInt32);
  int32_t* xhp = bits == 6 ? xh.data_ptr<int32_t>() : nullptr;
  quantize_rows(x.data_ptr<float>(), M, K, xq.data_ptr<int8_t>(), xs.data_ptr<float>(), xsq.data_ptr<float>(), xhp);
  const uint8_t* cp = codes.data_ptr<uint8_t>();
  const uint8_t* scp = sc.data_ptr<uint8_t>();
  const uint8_t* mnp = mn.data_ptr<uint8_t>();
  const uint16_t* dp = (const uint16_t*)d.data_ptr<at::Half>();
  const uint16_t* dmp = (const uint16_t*)dm.data_ptr<at::Half>();
  const int8_t* xqp = xq.data_ptr<int8_t>();
  const float* xsp = xs.data_ptr<float>();
  const float* xsqp = xsq.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      for (int64_t m0 = 0; m0 < M; m0 += MR) {
        const int R = (int)std::min<int64_t>(MR, M - m0);
        const uint8_t *c = cp + b * G * cbytes, *s = scp + b * G * 16, *mb = mnp + b * G * 16;
        const uint16_t *db = dp + b * GS * 16, *dmb = dmp + b * GS * 16;
        const int8_t* xr = xqp + m0 * K;
        float* yo = yp + m0 * N + b * 16;
#define ROWS(RR)                                                                                    \
  case RR:                                                                                          \
    if (bits == 6)                                                                                  \
      block_rows6<RR>(c, s, mb, db, G, S, xr, xsp + m0 * G, xhp + m0 * 2 * G, K, yo, N);            \
    else if (bits == 4)                                                                             \
      block_rows<RR, true>(c, s, mb, db, dmb, G, S, xr, xsp + m0 * G, xsqp + m0 * G, K, yo, N);     \
    else                                                                                            \
      block_rows<RR, false>(c, s, mb, db, dmb, G, S, xr, xsp + m0 * G, xsqp + m0 * G, K, yo, N);    \
    break;
        switch (R) { ROWS(1) ROWS(2) ROWS(3) ROWS(4) default: TORCH_CHECK(false, "bad row block"); }
#undef ROWS
      }
  });
  return y;
}

// glue.h's rms_norm and add_rms_norm through this: qmatmul.cpp's norm_rows on 8 lanes (its own rounding: the sum of
// squares in 8 lanes, not 16). H % 16 == 0 (checked by the callers).
static void norm_rows(const float* x, const float* r, float* s, const float* w, float eps, int64_t M, int64_t H,
                      float* y) {
  for (int64_t m = 0; m < M; ++m) {
    const float* xr = x + m * H;
    float* sr = s + m * H;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < H; i += 8) {
      __m256 v = _mm256_loadu_ps(xr + i);
      if (r) v = _mm256_add_ps(v, _mm256_loadu_ps(r + m * H + i));
      _mm256_storeu_ps(sr + i, v);
      acc = _mm256_fmadd_ps(v, v, acc);
    }
    const __m256 inv = _mm256_set1_ps(1.0f / std::sqrt(hsum8f(acc) / (float)H + eps));
    for (int64_t i = 0; i < H; i += 8)
      _mm256_storeu_ps(y + m * H + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(sr + i), inv),
                                                   _mm256_loadu_ps(w + i)));
  }
}

namespace {

// exp(x) of 8 lanes for x <= 0 (softmax weights): qmatmul.cpp's exp16 (Cephes' expf polynomial on
// r = x - n ln2), times 2^n built in the exponent bits; x clamped at -87 (2^n stays a normal float; exp(-87) is
// 1.6e-38 of the row's largest weight, 1). Each lane a function of its own input alone.
inline __m256 exp8(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// The 8 lane sums of a[0..7] as one vector (lane s = sum of a[s]): the same add tree for every s, so a dot
// product's value does not depend on which block of 8 it was computed in.
inline __m256 sum8(const __m256* a) {
  const __m256 b0 = _mm256_hadd_ps(a[0], a[1]), b1 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 b2 = _mm256_hadd_ps(a[4], a[5]), b3 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 c0 = _mm256_hadd_ps(b0, b1), c1 = _mm256_hadd_ps(b2, b3);
  // c0: lanes [s0 lo, s1 lo, s2 lo, s3 lo | s0 hi, s1 hi, s2 hi, s3 hi]; c1 the same for s4..s7
  return _mm256_add_ps(_mm256_permute2f128_ps(c0, c1, 0x20), _mm256_permute2f128_ps(c0, c1, 0x31));
}

}  // namespace

// glue.h's attention, its wide case on 8 lanes (qmatmul.cpp's attend_wide: the same contract, its own rounding):
// D a multiple of 8 up to 256, scores 8 slots at a time, values in registers 64 values of a row at a time.
constexpr int64_t WIDE = 8;

inline void attend_wide(const float* x0, int64_t xstride, float* y0, int64_t G, int64_t D, const float* K,
                        const float* V, const int64_t* idx, int64_t n, float scale, float* sc, int64_t ld,
                        float* acc, float* inv, const float* zero) {
  const int64_t C = D / 8;
  for (int64_t j0 = 0; j0 < n; j0 += 8) {  // scores of 8 visible slots, each head
    const float* kr[8];
    for (int s = 0; s < 8; ++s) kr[s] = j0 + s < n ? K + idx[j0 + s] * D : zero;
    for (int64_t g = 0; g < G; ++g) {
      const float* x = x0 + g * xstride;
      __m256 a[8];
      for (int s = 0; s < 8; ++s) a[s] = _mm256_setzero_ps();
      for (int64_t c = 0; c < C; ++c) {
        const __m256 xv = _mm256_loadu_ps(x + 8 * c);
        for (int s = 0; s < 8; ++s) a[s] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(kr[s] + 8 * c), a[s]);
      }
      _mm256_storeu_ps(sc + g * ld + j0, _mm256_mul_ps(sum8(a), _mm256_set1_ps(scale)));
    }
  }
  for (int64_t g = 0; g < G; ++g) {  // softmax weights of each head, unnormalized; 1 / their sum
    float* sg = sc + g * ld;
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) mx = std::max(mx, sg[j]);
    const __m256 mxv = _mm256_set1_ps(mx);
    for (int64_t j = 0; j < n; j += 8) _mm256_storeu_ps(sg + j, exp8(_mm256_sub_ps(_mm256_loadu_ps(sg + j), mxv)));
    float den = 0.0f;
    for (int64_t j = 0; j < n; ++j) den += sg[j];  // in slot order
    inv[g] = 1.0f / den;
  }
  std::fill(acc, acc + G * D, 0.0f);
  for (int64_t g = 0; g < G; ++g) {  // values in slot order, 8 registers (64 values of a row) at a time
    const float* sg = sc + g * ld;
    float* ag = acc + g * D;
    for (int64_t c0 = 0; c0 < C; c0 += 8) {
      const int64_t cn = std::min<int64_t>(8, C - c0);
      __m256 o[8];
      for (int64_t c = 0; c < cn; ++c) o[c] = _mm256_setzero_ps();
      for (int64_t j = 0; j < n; ++j) {
        const __m256 pj = _mm256_set1_ps(sg[j]);
        const float* vr = V + idx[j] * D + 8 * c0;
        for (int64_t c = 0; c < cn; ++c) o[c] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vr + 8 * c), o[c]);
      }
      for (int64_t c = 0; c < cn; ++c) _mm256_storeu_ps(ag + 8 * (c0 + c), o[c]);
    }
  }
  for (int64_t g = 0; g < G; ++g)
    for (int64_t c = 0; c < C; ++c)
      _mm256_storeu_ps((y0 + g * D) + 8 * c, _mm256_mul_ps(_mm256_loadu_ps(acc + g * D + 8 * c),
                                                    _mm256_set1_ps(inv[g])));
}

#include "glue.h"  // rms_norm, add_rms_norm, attention, rope_write, forward_layers: shared with qmatmul.cpp

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("qmatmul", &qmatmul, "quantized linear (W4A8 / W8A8, AVX2: qmatmul.cpp's VNNI numbers)");
  m.def("rms_norm", &rms_norm, "RMSNorm of each row (float32)");
  m.def("add_rms_norm", &add_rms_norm, "(x + r, RMSNorm(x + r)) (float32)");
  m.def("rope_write", &rope_write, "rotary embedding of q, k and the KV cache write (float32)");
  m.def("attention", &attention, "grouped-query attention over the cache, row by row (float32)");
  m.def("forward_layers", &forward_layers, "every decoder layer of a pass in one call (batch 1, float32)");
}
