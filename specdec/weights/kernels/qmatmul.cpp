// specdec's CPU kernel for quantized linear layers: y = x @ W^T with W in 4- or 8-bit codes per group of 32
// inputs, activations quantized to int8 per group of 32 on the fly (W4A8 / W8A8, like llama.cpp's K-quant
// dot products), multiplied with AVX512-VNNI (vpdpbusd: u8 weights x s8 activations -> s32), or, for passes of
// many rows on CPUs with AMX, with AMX tiles (tdpbsud, 16 rows at once; the same numbers: see "AMX" below).
//
// Why: decoding reads every weight once per token, so a pass is memory-bound while the arithmetic per byte
// stays small; int8 dot products keep the arithmetic small for many rows too, so verifying a draft of up to
// ~12 tokens costs about what one token costs (PyTorch's int4 kernel dequantizes to fp32 and grows with the
// rows: 60 ms for 1 row, 147 ms for 8 on the 1.5B's layers here).
//
// Weight format (one linear layer, N outputs x K inputs, G = K / 32 groups, B = N / 16 blocks of 16 outputs):
//   codes  u8  (B, G, 256)  4-bit: byte 4*j+s of chunk c (64 bytes) holds output 16b+j, inputs 32g+8c+s (low
//                           nibble) and 32g+8c+4+s (high nibble)
//          u8  (B, G, 384)  6-bit (Q6_K): the low 4 bits as the 4-bit layout (256 bytes), then two planes of 64
//                           bytes: byte 4*j+s of plane h holds the high 2 bits of inputs 32g+16h+4t+s at bits 2t
//          u8  (B, G, 512)  8-bit: byte 4*j+s of quad q holds output 16b+j, input 32g+4q+s (code = w8 + 128)
//   sc, mn u8  (B, G, 16)   per group and output: w = d*sc*code - dmin*mn  (Q4_K's 6-bit scale and min);
//                           6-bit: w = d*s*(code - 32) with s = sc (inputs 0-15 of the group) or mn (16-31), int8
//   d, dm  f16 (B, G/S, 16) per S groups (S = 8 for K-quants' 256-value super-blocks, 1 otherwise)
// So Q4_K and Q6_K tensors keep their exact GGUF values (d*sc and dmin*mn are exact in fp32, as in ggml).
//
// Each row's arithmetic is the same whatever the number of rows in the call (int32 sums per group, then one
// fp32 accumulation per row in group order): a token's output does not depend on what shares its pass.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <cmath>
#include <cstdint>
#include <vector>
#include <algorithm>
#include <cstring>
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

constexpr int GROUP = 32;
constexpr int MR = 8;  // rows per register block
// codes are prefetched this many groups ahead (both paths): with many rows the arithmetic between loads is long
// and the hardware prefetcher falls behind (measured: a 16-row pass of the 1.5B's layers 80 -> 65 ms on VNNI).
// 1-row passes gain too on Sapphire Rapids (the 1.5B's 4-bit layers alone, median of 9: 40.1 -> 34.5 ms; the
// 6-bit output layer 11.1 -> 7.3 ms), where Zen 4 had measured no change: every pass prefetches.
constexpr int64_t PFD = 8;

// 32 activations p times the inverse step -> int8 at out (round to nearest even, saturated); qa, qb: the two
// halves' int32 codes (for their sums). Both quantizers (per 32 and per 256) go through it.
inline void quantize32(const float* p, __m512 vinv, int8_t* out, __m512i& qa, __m512i& qb) {
  qa = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(p), vinv));
  qb = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(p + 16), vinv));
  _mm_storeu_si128((__m128i*)out, _mm512_cvtsepi32_epi8(qa));
  _mm_storeu_si128((__m128i*)(out + 16), _mm512_cvtsepi32_epi8(qb));
}

// x (M, K) fp32 -> xq (M, K) int8, xs (M, G) scale, xsq (M, G) = xs * sum(xq) per group of 32; for 6-bit
// weights also xh (M, 2G) = 32 * sum(xq) per half group (the codes' offset of 32, taken off the int32 sums)
void quantize_rows(const float* x, int64_t M, int64_t K, int8_t* xq, float* xs, float* xsq, int32_t* xh) {
  const int64_t G = K / GROUP;
  for (int64_t i = 0; i < M * G; ++i) {
    const float* p = x + i * GROUP;  // row-major, groups are contiguous
    __m512 a = _mm512_loadu_ps(p), b = _mm512_loadu_ps(p + 16);
    float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
    float scale = amax / 127.0f;
    float inv = amax > 0 ? 127.0f / amax : 0.0f;
    __m512i qa, qb;
    quantize32(p, _mm512_set1_ps(inv), xq + i * GROUP, qa, qb);
    int32_t sum;
    if (xh) {  // the halves' sums, and the group's from them (integers: the same sum either way)
      const int32_t sa = _mm512_reduce_add_epi32(qa), sb = _mm512_reduce_add_epi32(qb);
      xh[2 * i] = 32 * sa;
      xh[2 * i + 1] = 32 * sb;
      sum = sa + sb;
    } else {
      sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
    }
    xs[i] = scale;
    xsq[i] = scale * (float)sum;
  }
}

// One group's int32 sums of one row (16 outputs) into its fp32 total. Both paths (VNNI and AMX) call this, so a
// row's result is the same bit for bit whichever path and whatever rows share its pass.
inline __m512 group_step(__m512 tot, __m512i acc, __m512 s, __m512 m, float xs, float xsq) {
  __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(xs));
  tot = _mm512_fmadd_ps(t, s, tot);
  return _mm512_fnmadd_ps(m, _mm512_set1_ps(xsq), tot);
}

// the group's per-output scale (d*sc) and min (dmin*mn), 16 outputs
inline void group_scales(const uint8_t* sc, const uint8_t* mn, const uint16_t* d, const uint16_t* dm, int64_t g,
                         int64_t S, __m512& s, __m512& m) {
  const int64_t sg = g / S;
  __m512 dv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(d + sg * 16)));
  __m512 dmv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(dm + sg * 16)));
  s = _mm512_mul_ps(dv, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(sc + g * 16)))));
  m = _mm512_mul_ps(dmv, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(mn + g * 16)))));
}

// One 4-bit group's int32 dot products for R rows (16 outputs each): 8 vpdpbusd a row, two accumulator chains
// per row when few rows (vpdpbusd's latency, ~5 cycles, would otherwise bound a one-row pass).
template <int R>
inline void group_dots4(const uint8_t* p, const int8_t* xg, int64_t K, __m512i* acc) {
  const __m512i m0f = _mm512_set1_epi8(0x0F);
  constexpr bool TWO = R <= 4;
  __m512i acc2[TWO ? R : 1];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_si512();
  for (int r = 0; r < (TWO ? R : 1); ++r) acc2[r] = _mm512_setzero_si512();
  for (int c = 0; c < 4; ++c) {
    __m512i v = _mm512_loadu_si512((const void*)(p + 64 * c));
    __m512i lo = _mm512_and_si512(v, m0f);
    __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m0f);
    for (int r = 0; r < R; ++r) {
      const int8_t* xr = xg + r * K + 8 * c;
      acc[r] = _mm512_dpbusd_epi32(acc[r], lo, _mm512_set1_epi32(*(const int32_t*)xr));
      if (TWO)
        acc2[r] = _mm512_dpbusd_epi32(acc2[r], hi, _mm512_set1_epi32(*(const int32_t*)(xr + 4)));
      else
        acc[r] = _mm512_dpbusd_epi32(acc[r], hi, _mm512_set1_epi32(*(const int32_t*)(xr + 4)));
    }
  }
  if (TWO)
    for (int r = 0; r < R; ++r) acc[r] = _mm512_add_epi32(acc[r], acc2[r]);
}

template <int R, bool FOUR>
inline void block_rows(const uint8_t* codes, const uint8_t* sc, const uint8_t* mn, const uint16_t* d,
                       const uint16_t* dm, int64_t G, int64_t S, const int8_t* xq, const float* xs,
                       const float* xsq, int64_t K, float* y, int64_t ldy) {
  __m512 tot[R];
  for (int r = 0; r < R; ++r) tot[r] = _mm512_setzero_ps();
  const int64_t cbytes = FOUR ? 256 : 512;
  for (int64_t g = 0; g < G; ++g) {
    __m512i acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_si512();
    const uint8_t* p = codes + g * cbytes;
    const int8_t* xg = xq + g * GROUP;
    for (int64_t o = 0; o < cbytes; o += 64) _mm_prefetch((const char*)(p + PFD * cbytes + o), _MM_HINT_T0);
    if (FOUR) {
      group_dots4<R>(p, xg, K, acc);
    } else {
      constexpr bool TWO = R <= 4;
      __m512i acc2[TWO ? R : 1];
      for (int r = 0; r < (TWO ? R : 1); ++r) acc2[r] = _mm512_setzero_si512();
      for (int q = 0; q < 8; q += 2) {
        __m512i v0 = _mm512_loadu_si512((const void*)(p + 64 * q));
        __m512i v1 = _mm512_loadu_si512((const void*)(p + 64 * (q + 1)));
        for (int r = 0; r < R; ++r) {
          acc[r] = _mm512_dpbusd_epi32(acc[r], v0, _mm512_set1_epi32(*(const int32_t*)(xg + r * K + 4 * q)));
          if (TWO)
            acc2[r] = _mm512_dpbusd_epi32(acc2[r], v1, _mm512_set1_epi32(*(const int32_t*)(xg + r * K + 4 * q + 4)));
          else
            acc[r] = _mm512_dpbusd_epi32(acc[r], v1, _mm512_set1_epi32(*(const int32_t*)(xg + r * K + 4 * q + 4)));
        }
      }
      if (TWO)
        for (int r = 0; r < R; ++r) acc[r] = _mm512_add_epi32(acc[r], acc2[r]);
    }
    __m512 s, m;
    group_scales(sc, mn, d, dm, g, S, s, m);
    const int64_t Gx = K / GROUP;
    for (int r = 0; r < R; ++r) tot[r] = group_step(tot[r], acc[r], s, m, xs[r * Gx + g], xsq[r * Gx + g]);
  }
  for (int r = 0; r < R; ++r) _mm512_storeu_ps(y + r * ldy, tot[r]);
}

template <bool FOUR>
void run_rows(int R, const uint8_t* codes, const uint8_t* sc, const uint8_t* mn, const uint16_t* d,
              const uint16_t* dm, int64_t G, int64_t S, const int8_t* xq, const float* xs, const float* xsq,
              int64_t K, float* y, int64_t ldy) {
  switch (R) {
#define CASE(n) case n: block_rows<n, FOUR>(codes, sc, mn, d, dm, G, S, xq, xs, xsq, K, y, ldy); break;
    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
#undef CASE
    default: TORCH_CHECK(false, "bad row block");
  }
}

// ------------------------------------------------------------------------------------------ 6-bit (Q6_K)
// The codes' 6-bit values, one quad of 4 inputs per 32-bit lane: the low nibbles as in the 4-bit layout, the
// high 2 bits of quad 4h+t from plane h at bits 2t, moved to bits 4-5 (16-bit shifts, then masked per byte).
template <int T>
inline __m512i high_bits(__m512i h) {
  const __m512i m30 = _mm512_set1_epi8(0x30);
  if (T == 0) return _mm512_and_si512(_mm512_slli_epi16(h, 4), m30);
  if (T == 1) return _mm512_and_si512(_mm512_slli_epi16(h, 2), m30);
  if (T == 2) return _mm512_and_si512(h, m30);
  return _mm512_and_si512(_mm512_srli_epi16(h, 2), m30);
}

// quads 2c and 2c+1 of a group (chunk c of the low nibbles, plane c / 2 of the high bits)
template <int C>
inline void six_quads(const uint8_t* p, __m512i& lo, __m512i& hi) {
  const __m512i m0f = _mm512_set1_epi8(0x0F);
  const __m512i v = _mm512_loadu_si512((const void*)(p + 64 * C));
  const __m512i h = _mm512_loadu_si512((const void*)(p + 256 + 64 * (C / 2)));
  lo = _mm512_or_si512(_mm512_and_si512(v, m0f), high_bits<2 * (C % 2)>(h));
  hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(v, 4), m0f), high_bits<2 * (C % 2) + 1>(h));
}

// the two half groups' scales d*s (16 outputs each): exact in fp32 (an fp16 times an int8)
inline void half_scales(const uint8_t* sc, const uint8_t* mn, const uint16_t* d, int64_t g, int64_t S, __m512& sa,
                        __m512& sb) {
  __m512 dv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(d + (g / S) * 16)));
  sa = _mm512_mul_ps(dv, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(sc + g * 16)))));
  sb = _mm512_mul_ps(dv, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(mn + g * 16)))));
}

// R rows x 16 outputs of 6-bit codes: per group two int32 sums a row (inputs 0-15 and 16-31, each with its own
// scale), less 32 * the activations' sum (the codes' offset), then t = sum_a * s_a + sum_b * s_b, tot += t * xs.
// Each row's arithmetic is the same whatever R is.
template <int R>
inline void block_rows6(const uint8_t* codes, const uint8_t* sc, const uint8_t* mn, const uint16_t* d, int64_t G,
                        int64_t S, const int8_t* xq, const float* xs, const int32_t* xh, int64_t K, float* y,
                        int64_t ldy) {
  __m512 tot[R];
  for (int r = 0; r < R; ++r) tot[r] = _mm512_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    const uint8_t* p = codes + g * 384;
    const int8_t* xg = xq + g * GROUP;
    for (int64_t o = 0; o < 384; o += 64) _mm_prefetch((const char*)(p + PFD * 384 + o), _MM_HINT_T0);
    __m512i a[R], b[R];
    for (int r = 0; r < R; ++r) a[r] = b[r] = _mm512_setzero_si512();
    __m512i lo, hi;
#define SIX_CHUNK(C, ACC)                                                                             \
    six_quads<C>(p, lo, hi);                                                                          \
    for (int r = 0; r < R; ++r) {                                                                     \
      const int8_t* xr = xg + r * K + 8 * C;                                                          \
      ACC[r] = _mm512_dpbusd_epi32(ACC[r], lo, _mm512_set1_epi32(*(const int32_t*)xr));               \
      ACC[r] = _mm512_dpbusd_epi32(ACC[r], hi, _mm512_set1_epi32(*(const int32_t*)(xr + 4)));         \
    }
    SIX_CHUNK(0, a) SIX_CHUNK(2, b) SIX_CHUNK(1, a) SIX_CHUNK(3, b)
#undef SIX_CHUNK
    __m512 sa, sb;
    half_scales(sc, mn, d, g, S, sa, sb);
    for (int r = 0; r < R; ++r) {
      const int32_t* h = xh + 2 * (r * G + g);
      __m512 ta = _mm512_cvtepi32_ps(_mm512_sub_epi32(a[r], _mm512_set1_epi32(h[0])));
      __m512 tb = _mm512_cvtepi32_ps(_mm512_sub_epi32(b[r], _mm512_set1_epi32(h[1])));
      __m512 t = _mm512_fmadd_ps(tb, sb, _mm512_mul_ps(ta, sa));
      tot[r] = _mm512_fmadd_ps(t, _mm512_set1_ps(xs[r * G + g]), tot[r]);
    }
  }
  for (int r = 0; r < R; ++r) _mm512_storeu_ps(y + r * ldy, tot[r]);
}

void run_rows6(int R, const uint8_t* codes, const uint8_t* sc, const uint8_t* mn, const uint16_t* d, int64_t G,
               int64_t S, const int8_t* xq, const float* xs, const int32_t* xh, int64_t K, float* y, int64_t ldy) {
  switch (R) {
#define CASE(n) case n: block_rows6<n>(codes, sc, mn, d, G, S, xq, xs, xh, K, y, ldy); break;
    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
#undef CASE
    default: TORCH_CHECK(false, "bad row block");
  }
}

// ------------------------------------------------------------------------------------------ AMX
// Sapphire Rapids and later: one tile multiply (tdpbsud) takes 16 rows x 32 inputs of int8 activations (tile A)
// and the group's codes for 16 outputs (tile B) into 16 x 16 int32 sums (tile C): what VNNI does in 8
// instructions per row is one instruction for all 16 rows, so a pass of 16-32 rows costs about what one costs.
// B needs the VNNI layout (8 quads of 4 inputs x 16 outputs x 4 bytes), which is the layout the codes already
// have: an 8-bit group is read as it lies, a 4-bit chunk's low nibbles are quad 2c and its high nibbles quad 2c+1.
// The int32 sums of a group are exact on both paths and go through the same group_step, so AMX rows equal VNNI
// rows bit for bit (tests/runners/test_quant.py).
// Tiles: 0, 1 = C for rows 0-15 and 16-31 of a chunk (5, 6 for odd groups); 2, 3 = A for the same rows; 4 = B
// (7 for odd groups).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

constexpr int AR = 32;  // rows per AMX chunk (two C tiles)
int64_t g_amx_min_rows = 0;  // 0: AMX off; else passes of at least this many rows take the AMX path

bool amx_request() {
  static const bool ok = [] {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    if (!((d >> 24) & 1) || !((d >> 25) & 1)) return false;  // CPUID.7.0:EDX AMX-TILE, AMX-INT8
    // Linux hands out the tile state only on request (ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18);
    // without it the first tile instruction kills the process
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
  }();
  return ok;
}

void amx_configure() {
  TileConfig cfg;
  for (int t : {0, 1, 5, 6}) cfg.colsb[t] = 64, cfg.rows[t] = 16;      // C: 16 rows x 16 int32
  for (int t : {2, 3}) cfg.colsb[t] = GROUP, cfg.rows[t] = 16;          // A: 16 rows x 32 int8
  for (int t : {4, 7}) cfg.colsb[t] = 64, cfg.rows[t] = GROUP / 4;      // B: 8 quads x 16 outputs x 4
  _tile_loadconfig(&cfg);
}

// R (1..32) rows of xq (padded with zero rows to a multiple of 16) times one block of 16 outputs. Groups go in
// batches of GB: first the batch's tile multiplies back to back (a 4-bit batch unpacked beforehand, so no tile
// load waits for stores just made; C tiles alternate between groups, so consecutive multiplies do not wait on
// each other), then the batch's int32 sums through group_step in group order, as the VNNI path does.
// Measured on the 1.5B's layers, 16 rows (docs/results/bench/profile/amx_variants-2026-12-05.md): batches of 8
// without prefetching 71.5 ms against VNNI's 80; with prefetching, batches of 1: 68, of 2: 57, of 4: 59, of 8:
// 64: the stores of a batch's sums must leave the tile unit before the vector units read them, and larger
// batches push the codes out of L1.
constexpr int GB = 2;

template <bool FOUR>
void amx_block(int R, const uint8_t* codes, const uint8_t* sc, const uint8_t* mn, const uint16_t* d,
               const uint16_t* dm, int64_t G, int64_t S, const int8_t* xq, const float* xs, const float* xsq,
               int64_t K, float* y, int64_t ldy) {
  alignas(64) uint8_t bbuf[GB * 512];
  alignas(64) int32_t cbuf[GB * AR * 16];
  __m512 tot[AR];
  for (int r = 0; r < R; ++r) tot[r] = _mm512_setzero_ps();
  const __m512i m0f = _mm512_set1_epi8(0x0F);
  const int64_t cbytes = FOUR ? 256 : 512;
  const bool two = R > 16;
  const int cstride = two ? AR * 16 : 256;
  for (int64_t g0 = 0; g0 < G; g0 += GB) {
    const int nb = (int)std::min<int64_t>(GB, G - g0);
    {  // codes further on (past the block's end: the next block's): a hint, so memory streams while we compute
      const uint8_t* pf = codes + (g0 + PFD) * cbytes;
      for (int64_t o = 0; o < GB * cbytes; o += 64) _mm_prefetch((const char*)(pf + o), _MM_HINT_T0);
    }
    if (FOUR)
      for (int j = 0; j < nb; ++j) {
        const uint8_t* p = codes + (g0 + j) * cbytes;
        for (int c = 0; c < 4; ++c) {
          __m512i v = _mm512_loadu_si512((const void*)(p + 64 * c));
          _mm512_store_si512((void*)(bbuf + 512 * j + 128 * c), _mm512_and_si512(v, m0f));
          _mm512_store_si512((void*)(bbuf + 512 * j + 128 * c + 64), _mm512_and_si512(_mm512_srli_epi16(v, 4), m0f));
        }
      }
    for (int j = 0; j < nb; ++j) {
      const uint8_t* bp = FOUR ? bbuf + 512 * j : codes + (g0 + j) * cbytes;
      const int8_t* xg = xq + (g0 + j) * GROUP;
      int32_t* cj = cbuf + j * cstride;
      // one group: B into tile BT, rows 0-15 into C0 (and rows 16-31 into C1); tile numbers must be literals
#define AMX_GROUP(C0, C1, BT)                 \
  _tile_loadd(BT, bp, 64);                    \
  _tile_zero(C0);                             \
  _tile_loadd(2, xg, K);                      \
  _tile_dpbsud(C0, 2, BT);                    \
  _tile_stored(C0, cj, 64);                   \
  if (two) {                                  \
    _tile_zero(C1);                           \
    _tile_loadd(3, xg + 16 * K, K);           \
    _tile_dpbsud(C1, 3, BT);                  \
    _tile_stored(C1, cj + 256, 64);           \
  }
      if (j & 1) {
        AMX_GROUP(5, 6, 7)
      } else {
        AMX_GROUP(0, 1, 4)
      }
#undef AMX_GROUP
    }
    for (int j = 0; j < nb; ++j) {
      const int64_t g = g0 + j;
      __m512 s, m;
      group_scales(sc, mn, d, dm, g, S, s, m);
      const int32_t* cj = cbuf + j * cstride;
      for (int r = 0; r < R; ++r)
        tot[r] = group_step(tot[r], _mm512_load_si512((const void*)(cj + 16 * r)), s, m, xs[r * G + g],
                            xsq[r * G + g]);
    }
  }
  for (int r = 0; r < R; ++r) _mm512_storeu_ps(y + r * ldy, tot[r]);
}

// ------------------------------------------------------------------------------------------ super-blocks (opt-in)
// Q4_K's 8 groups of a 256-value super-block share d and dmin, so with the activations quantized per 256 (one
// scale a super-block, as llama.cpp's Q8_K) the sub-block scales apply in int32 and the float steps run once per
// super-block instead of once per group: a row is
//   y = xs * (d * sum_g sc_g * <q_g, xq_g>  -  dmin * sum_g mn_g * sum(xq_g))
// with <q_g, xq_g> the group's int32 dot product (8 vpdpbusd, as above), sc_g * it one vpmulld, and the mins' sum
// one vpdpwssd per two groups (mn and the groups' activation sums as int16 pairs). Exact in int32: |<q_g, xq_g>| <=
// 32*15*127, times sc <= 63, times 8 groups < 2^25; the mins' sum < 2^21.
// Why (docs/results/bench/profile/group_float.py, Zen 4): the per-group float steps are a quarter to a third of a
// multi-row pass's arithmetic. Other numbers than the per-32 path (activations rounded per 256), so it is a switch
// (set_superblocks), off by default, 4-bit super-block weights only, VNNI only (a pass that would take AMX does not
// take it): a token's logits still do not depend on the rows that share its pass.
bool g_superblocks = false;

// x (M, K) fp32 -> xq (M, K) int8 with one scale per 256 values, xs (M, K/256), bs (M, K/32) int16 group sums
void quantize_rows256(const float* x, int64_t M, int64_t K, int8_t* xq, float* xs, int16_t* bs) {
  const int64_t SB = K / 256;
  for (int64_t i = 0; i < M * SB; ++i) {
    const float* p = x + i * 256;
    __m512 mx = _mm512_setzero_ps();
    for (int j = 0; j < 16; ++j) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(p + 16 * j)));
    const float amax = _mm512_reduce_max_ps(mx);
    xs[i] = amax / 127.0f;
    const __m512 vinv = _mm512_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
    for (int g = 0; g < 8; ++g) {
      __m512i qa, qb;
      quantize32(p + 32 * g, vinv, xq + i * 256 + 32 * g, qa, qb);
      bs[i * 8 + g] = (int16_t)_mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
    }
  }
}

template <int R>
inline void block_rows_sb(const uint8_t* codes, const uint8_t* sc, const uint8_t* mn, const uint16_t* d,
                          const uint16_t* dm, int64_t G, const int8_t* xq, const float* xs, const int16_t* bs,
                          int64_t K, float* y, int64_t ldy) {
  const int64_t SB = G / 8;
  __m512 tot[R];
  for (int r = 0; r < R; ++r) tot[r] = _mm512_setzero_ps();
  for (int64_t b = 0; b < SB; ++b) {
    __m512i isum[R], imin[R];
    for (int r = 0; r < R; ++r) isum[r] = imin[r] = _mm512_setzero_si512();
    for (int j = 0; j < 8; ++j) {
      const int64_t g = 8 * b + j;
      const uint8_t* p = codes + g * 256;
      const int8_t* xg = xq + g * GROUP;
      for (int64_t o = 0; o < 256; o += 64) _mm_prefetch((const char*)(p + PFD * 256 + o), _MM_HINT_T0);
      __m512i acc[R];
      group_dots4<R>(p, xg, K, acc);
      const __m512i scv = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(sc + g * 16)));
      for (int r = 0; r < R; ++r) isum[r] = _mm512_add_epi32(isum[r], _mm512_mullo_epi32(acc[r], scv));
      if (j & 1) {  // the mins of groups g-1 and g: int16 pairs (mn_{g-1}, mn_g) per output times (bs_{g-1}, bs_g)
        const __m512i m0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(mn + (g - 1) * 16)));
        const __m512i m1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(mn + g * 16)));
        const __m512i mp = _mm512_or_si512(m0, _mm512_slli_epi32(m1, 16));
        const int64_t Gx = K / GROUP;
        for (int r = 0; r < R; ++r)
          imin[r] = _mm512_dpwssd_epi32(imin[r], mp, _mm512_set1_epi32(*(const int32_t*)(bs + r * Gx + g - 1)));
      }
    }
    const __m512 dv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(d + b * 16)));
    const __m512 dmv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(dm + b * 16)));
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(xs[r * SB + b]);
      tot[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r]), _mm512_mul_ps(dv, x), tot[r]);
      tot[r] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(imin[r]), _mm512_mul_ps(dmv, x), tot[r]);
    }
  }
  for (int r = 0; r < R; ++r) _mm512_storeu_ps(y + r * ldy, tot[r]);
}

void run_rows_sb(int R, const uint8_t* codes, const uint8_t* sc, const uint8_t* mn, const uint16_t* d,
                 const uint16_t* dm, int64_t G, const int8_t* xq, const float* xs, const int16_t* bs, int64_t K,
                 float* y, int64_t ldy) {
  switch (R) {
#define CASE(n) case n: block_rows_sb<n>(codes, sc, mn, d, dm, G, xq, xs, bs, K, y, ldy); break;
    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
#undef CASE
    default: TORCH_CHECK(false, "bad row block");
  }
}

inline int64_t code_bytes(int64_t bits) { return bits == 4 ? 256 : bits == 6 ? 384 : 512; }

// The shapes of a quantized linear call, checked: x (M, K) float32, codes (B, G, 256 | 384 | 512), d (B, G / S, 16)
struct QShape {
  int64_t M, K, B, G, S;
};

QShape check_qweight(const torch::Tensor& x, const torch::Tensor& codes, const torch::Tensor& d, int64_t bits) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == torch::kFloat32, "x must be (M, K) float32");
  TORCH_CHECK(bits == 4 || bits == 6 || bits == 8, "bits must be 4, 6 or 8");
  const int64_t M = x.size(0), K = x.size(1);
  TORCH_CHECK(K % GROUP == 0, "K must be a multiple of 32");
  const int64_t B = codes.size(0), G = codes.size(1);
  TORCH_CHECK(G * GROUP == K, "codes do not match K");
  TORCH_CHECK(codes.size(2) == code_bytes(bits), "codes have the wrong group size");
  TORCH_CHECK(d.size(1) > 0 && G % d.size(1) == 0, "scales do not match the groups");
  return {M, K, B, G, G / d.size(1)};
}

}  // namespace

bool amx_available() { return amx_request(); }

// passes of at least n rows take the AMX path (0: never); returns what is set (0 where the CPU or OS lacks AMX)
int64_t set_amx_min_rows(int64_t n) {
  g_amx_min_rows = (n > 0 && amx_request()) ? n : 0;
  return g_amx_min_rows;
}

int64_t amx_min_rows() { return g_amx_min_rows; }

// 4-bit super-block weights take the per-256 path (see "super-blocks") when on; returns what is set
bool set_superblocks(bool on) {
  g_superblocks = on;
  return g_superblocks;
}

// x (M, K) float32; returns (M, N) float32
torch::Tensor qmatmul(torch::Tensor x, torch::Tensor codes, torch::Tensor sc, torch::Tensor mn, torch::Tensor d,
                      torch::Tensor dm, int64_t bits) {
  const QShape q = check_qweight(x, codes, d, bits);
  x = x.contiguous();
  const int64_t M = q.M, K = q.K, B = q.B, G = q.G, S = q.S;
  const int64_t N = B * 16;
  // 6-bit codes stay on the VNNI path at every row count (no AMX path for them: their half-group scales would
  // double the per-group float work that already bounds AMX here; docs/runners.md)
  const bool amx = g_amx_min_rows > 0 && M >= g_amx_min_rows && bits != 6;
  auto y = torch::empty({M, N}, torch::kFloat32);
  const uint8_t* cp = codes.data_ptr<uint8_t>();
  const uint8_t* scp = sc.data_ptr<uint8_t>();
  const uint8_t* mnp = mn.data_ptr<uint8_t>();
  const uint16_t* dp = (const uint16_t*)d.data_ptr<at::Half>();
  const uint16_t* dmp = (const uint16_t*)dm.data_ptr<at::Half>();
  float* yp = y.data_ptr<float>();
  if (g_superblocks && bits == 4 && S == 8 && !amx) {  // the per-256 path (opt-in)
    auto xq = torch::empty({M, K}, torch::kInt8);
    auto xs = torch::empty({M, G / 8}, torch::kFloat32);
    auto bs = torch::empty({M, G}, torch::kInt16);
    quantize_rows256(x.data_ptr<float>(), M, K, xq.data_ptr<int8_t>(), xs.data_ptr<float>(), bs.data_ptr<int16_t>());
    const int8_t* xqp = xq.data_ptr<int8_t>();
    const float* xsp = xs.data_ptr<float>();
    const int16_t* bsp = bs.data_ptr<int16_t>();
    const int64_t GS = G / 8;
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        for (int64_t m0 = 0; m0 < M; m0 += MR) {
          const int R = (int)std::min<int64_t>(MR, M - m0);
          run_rows_sb(R, cp + b * G * 256, scp + b * G * 16, mnp + b * G * 16, dp + b * GS * 16, dmp + b * GS * 16,
                      G, xqp + m0 * K, xsp + m0 * GS, bsp + m0 * G, K, yp + m0 * N + b * 16, N);
        }
    });
    return y;
  }
  const int64_t Mpad = amx ? (M + 15) / 16 * 16 : M;  // AMX loads 16 rows a tile: zero rows past M
  auto xq = torch::empty({Mpad, K}, torch::kInt8);
  if (Mpad > M) std::memset(xq.data_ptr<int8_t>() + M * K, 0, (Mpad - M) * K);
  auto xs = torch::empty({M, G}, torch::kFloat32);
  auto xsq = torch::empty({M, G}, torch::kFloat32);
  auto xh = torch::empty({bits == 6 ? M : 0, 2 * G}, torch::kInt32);
  int32_t* xhp = bits == 6 ? xh.data_ptr<int32_t>() : nullptr;  // 6-bit codes only: the half groups' sums
  quantize_rows(x.data_ptr<float>(), M, K, xq.data_ptr<int8_t>(), xs.data_ptr<float>(), xsq.data_ptr<float>(), xhp);
  const int8_t* xqp = xq.data_ptr<int8_t>();
  const float* xsp = xs.data_ptr<float>();
  const float* xsqp = xsq.data_ptr<float>();
  const int64_t cbytes = code_bytes(bits);
  const int64_t GS = G / S;
  if (amx) {
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      amx_configure();  // per thread
      for (int64_t b = b0; b < b1; ++b)
        for (int64_t m0 = 0; m0 < M; m0 += AR) {
          const int R = (int)std::min<int64_t>(AR, M - m0);
          auto f = bits == 4 ? amx_block<true> : amx_block<false>;
          f(R, cp + b * G * cbytes, scp + b * G * 16, mnp + b * G * 16, dp + b * GS * 16, dmp + b * GS * 16, G,
            S, xqp + m0 * K, xsp + m0 * G, xsqp + m0 * G, K, yp + m0 * N + b * 16, N);
        }
      _tile_release();
    });
    return y;
  }
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      for (int64_t m0 = 0; m0 < M; m0 += MR) {
        const int R = (int)std::min<int64_t>(MR, M - m0);
        if (bits == 6)
          run_rows6(R, cp + b * G * cbytes, scp + b * G * 16, mnp + b * G * 16, dp + b * GS * 16, G, S,
                    xqp + m0 * K, xsp + m0 * G, xhp + m0 * 2 * G, K, yp + m0 * N + b * 16, N);
        else if (bits == 4)
          run_rows<true>(R, cp + b * G * cbytes, scp + b * G * 16, mnp + b * G * 16, dp + b * GS * 16,
                         dmp + b * GS * 16, G, S, xqp + m0 * K, xsp + m0 * G, xsqp + m0 * G, K,
                         yp + m0 * N + b * 16, N);
        else
          run_rows<false>(R, cp + b * G * cbytes, scp + b * G * 16, mnp + b * G * 16, dp + b * GS * 16,
                          dmp + b * GS * 16, G, S, xqp + m0 * K, xsp + m0 * G, xsqp + m0 * G, K,
                          yp + m0 * N + b * 16, N);
      }
    }
  });
  return y;
}

// ------------------------------------------------------------------------------------------ prefill (bf16)
// A prompt's prefill is the one pass whose rows are many (up to a 512-token chunk) and whose numbers need not match
// a decode pass's: plain and speculative runs prefill the same prompt the same way, so greedy identity holds
// whatever prefill computes. The int8 paths above pay their per-group float work per row (3.8 ms a row for the
// 1.5B at 64 rows on AMX); here every weight is dequantized once per pass into bf16 tiles (w = d*sc*q - dmin*mn
// in fp32, rounded to bf16) and multiplied with the rows' bf16 activations by AMX-BF16 (tdpbf16ps: 16 rows x 32
// inputs x 16 outputs, fp32 sums), so the per-row work is the tile multiply alone.
// Blocking: K in slices whose activations (all rows) stay in L2; per slice, threads take pairs of 16-output
// blocks; a pair's slice goes BSUB groups at a time: dequantized once into B tiles that stay in L1, then every
// 16-row tile through 2 C tiles (fp32 sums carried between sub-slices in a packed buffer). Activations and sums
// are packed tile by tile (1 KB each), so no tile load or store strides across pages.
// Tiles: 0, 1 = C (block 0 / 1), 2, 3 = A (even / odd groups), 4, 5 and 6, 7 = B (block 0 / 1, even / odd groups).
// Measured on the 1.5B's layer shapes (one layer = q|k|v, o, gate|up, down; ms a layer for 33 / 64 / 128 / 256 /
// 512 rows, one window, docs/runners.md): the int8 path 4.9 / 7.7 / 16.8 / 35.6 / 75.7, this path 4.7 / 5.6 / 9.3 /
// 17.2 / 43.8. SPECDEC_QKERNEL=int8 keeps prefills on the int8 kernel.
namespace {

bool bf16_request() {
  static const bool ok = [] {
    unsigned a, b, c, d;
    if (!amx_request()) return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((d >> 22) & 1)) return false;  // AMX-BF16
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !((a >> 5) & 1)) return false;   // AVX512-BF16
    return true;
  }();
  return ok;
}

constexpr int64_t BSUB = 16;  // groups per dequantized sub-slice (2 blocks x 16 groups x 1 KB = 32 KB)

void amx_bf16_configure() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) cfg.colsb[t] = 64, cfg.rows[t] = 16;  // C: 16 x 16 fp32; A: 16 x 32 bf16; B: 16 pairs x 16 x 2
  _tile_loadconfig(&cfg);
}

// One group (32 inputs) of one block (16 outputs) as a bf16 B tile: row i holds inputs 2i and 2i+1 of every
// output (output j at words 2j, 2j+1). A 64-byte load of codes holds 4 inputs of each of the 16 outputs (a
// 32-bit lane per output): byte s of the lanes is input k0 + s.
// BITS 6: quads 0-3 take (s, m), quads 4-7 (s2, m2) (the half groups' scales, m = 32 s: w = s q - m exactly)
template <int BITS>
inline void dequant_group_bf16(const uint8_t* p, __m512 s, __m512 m, __m512 s2, __m512 m2, uint16_t* out) {
  alignas(64) static const uint16_t PAIR[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                                8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i pair = _mm512_load_si512((const void*)PAIR);
  const __m512i mff = _mm512_set1_epi32(0xFF);
  auto quad = [&](__m512i v, uint16_t* rows, __m512 s, __m512 m) {  // inputs k0..k0+3 -> tile rows k0/2, k0/2 + 1
    __m512 f0 = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_and_si512(v, mff)), s, m);
    __m512 f1 = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(v, 8), mff)), s, m);
    __m512 f2 = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(v, 16), mff)), s, m);
    __m512 f3 = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(v, 24)), s, m);
    _mm512_store_si512((void*)rows, _mm512_permutexvar_epi16(pair, (__m512i)_mm512_cvtne2ps_pbh(f1, f0)));
    _mm512_store_si512((void*)(rows + 32), _mm512_permutexvar_epi16(pair, (__m512i)_mm512_cvtne2ps_pbh(f3, f2)));
  };
  if (BITS == 4) {
    const __m512i m0f = _mm512_set1_epi8(0x0F);
    for (int c = 0; c < 4; ++c) {  // chunk c: low nibbles inputs 8c..8c+3, high nibbles 8c+4..8c+7
      __m512i v = _mm512_loadu_si512((const void*)(p + 64 * c));
      quad(_mm512_and_si512(v, m0f), out + 32 * (4 * c), s, m);
      quad(_mm512_and_si512(_mm512_srli_epi16(v, 4), m0f), out + 32 * (4 * c + 2), s, m);
    }
  } else if (BITS == 6) {
    __m512i lo, hi;
#define SIX_BF16(C, S_, M_)                   \
    six_quads<C>(p, lo, hi);                  \
    quad(lo, out + 32 * (4 * C), S_, M_);     \
    quad(hi, out + 32 * (4 * C + 2), S_, M_);
    SIX_BF16(0, s, m) SIX_BF16(1, s, m) SIX_BF16(2, s2, m2) SIX_BF16(3, s2, m2)
#undef SIX_BF16
  } else {
    for (int q = 0; q < 8; ++q) quad(_mm512_loadu_si512((const void*)(p + 64 * q)), out + 32 * (2 * q), s, m);
  }
}

// One 16-row tile x one block pair: C tiles 0, 1 (packed: 1 KB each, rows of 16 fp32) (+)= A x B over gl groups,
// even groups through A tile 2 and B tiles 4, 5, odd groups through 3 and 6, 7, so one group's tile loads are
// not held up by the multiplies still reading the other's. A is packed per 16-row tile and group (1 KB each: a tile
// load reads 16 lines of one page; loading from row-major activations touched 16 pages a load and cost more than
// the multiply), B comes from `buf` (L1).
inline void bf16_rows(const uint16_t* a, const uint16_t* buf, int64_t gl, int nb, bool first, float* c) {
  if (first) {
    _tile_zero(0); _tile_zero(1);
  } else {
    _tile_loadd(0, c, 64);
    if (nb == 2) _tile_loadd(1, c + 256, 64);
  }
  for (int64_t g = 0; g < gl; g += 2) {
    const uint16_t* b = buf + 1024 * g;
    _tile_loadd(2, a + 512 * g, 64);
    _tile_loadd(4, b, 64);
    if (nb == 2) _tile_loadd(5, b + 512, 64);
    _tile_dpbf16ps(0, 2, 4);
    if (nb == 2) _tile_dpbf16ps(1, 2, 5);
    if (g + 1 < gl) {
      _tile_loadd(3, a + 512 * (g + 1), 64);
      _tile_loadd(6, b + 1024, 64);
      if (nb == 2) _tile_loadd(7, b + 1536, 64);
      _tile_dpbf16ps(0, 3, 6);
      if (nb == 2) _tile_dpbf16ps(1, 3, 7);
    }
  }
  _tile_stored(0, c, 64);
  if (nb == 2) _tile_stored(1, c + 256, 64);
}

// A buffer kept between calls (which = 0: packed activations, 1: packed sums): a prefill pass of 512 rows needs tens
// of MB a call, and fresh pages are faulted in one by one (measured: 33 of 65 ms for one layer of the 1.5B at 512
// rows went to allocating and first-touching them). Grows to the largest call; calls come one at a time.
void* scratch(int which, int64_t bytes) {
  static torch::Tensor buf[2];
  if (!buf[which].defined() || buf[which].numel() < bytes) buf[which] = torch::empty({bytes}, torch::kUInt8);
  return buf[which].data_ptr();
}

}  // namespace

bool bf16_prefill_available() { return bf16_request(); }

// x (M, K) float32; returns (M, N) float32 through bf16 tiles (prefill passes; see above)
torch::Tensor qmatmul_bf16(torch::Tensor x, torch::Tensor codes, torch::Tensor sc, torch::Tensor mn, torch::Tensor d,
                           torch::Tensor dm, int64_t bits) {
  TORCH_CHECK(bf16_request(), "qmatmul_bf16: this CPU or OS does not run AMX-BF16 tiles");
  const QShape q = check_qweight(x, codes, d, bits);
  x = x.contiguous();
  const int64_t M = q.M, K = q.K, B = q.B, G = q.G, S = q.S;
  const int64_t N = B * 16, Mpad = (M + 15) / 16 * 16, GS = G / S, cbytes = code_bytes(bits);
  const int64_t RT = Mpad / 16;  // 16-row tiles
  // activations in bf16, packed (RT, G, 16, 32): row tile t, group g is 1 KB; zero rows past M
  uint16_t* xbp = (uint16_t*)scratch(0, RT * G * 512 * 2);
  const float* xp = x.data_ptr<float>();
  at::parallel_for(0, Mpad, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t g = 0; g < G; ++g) {
        __m512i v = _mm512_setzero_si512();
        if (r < M) {
          const float* src = xp + r * K + 32 * g;
          v = (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + 16), _mm512_loadu_ps(src));
        }
        _mm512_store_si512((void*)(xbp + ((r / 16 * G + g) * 16 + r % 16) * 32), v);
      }
  });
  const int64_t pairs = (B + 1) / 2;
  // sums packed (pairs, RT, 2, 16, 16): pair p, row tile t, block j is 1 KB; unpacked into y at the end
  float* ybp = (float*)scratch(1, pairs * RT * 512 * 4);
  const uint8_t* cp = codes.data_ptr<uint8_t>();
  const uint8_t* scp = sc.data_ptr<uint8_t>();
  const uint8_t* mnp = mn.data_ptr<uint8_t>();
  const uint16_t* dp = (const uint16_t*)d.data_ptr<at::Half>();
  const uint16_t* dmp = (const uint16_t*)dm.data_ptr<at::Half>();
  // groups per K slice: the slice's activations (Mpad rows x 64 bytes a group) within ~1 MB of L2
  const int64_t GSL = std::max<int64_t>(1, std::min<int64_t>(G, (1 << 20) / (Mpad * 64)));
  for (int64_t g0 = 0; g0 < G; g0 += GSL) {
    const int64_t gl = std::min<int64_t>(GSL, G - g0);
    at::parallel_for(0, pairs, 1, [&](int64_t p0, int64_t p1) {
      alignas(64) uint16_t buf[BSUB * 1024];  // BSUB groups x 2 blocks of B tiles: 32 KB, kept in L1
      amx_bf16_configure();  // per thread
      for (int64_t pr = p0; pr < p1; ++pr) {
        const int64_t b0 = 2 * pr;
        const int nb = (int)std::min<int64_t>(2, B - b0);
        for (int64_t s0 = g0; s0 < g0 + gl; s0 += BSUB) {
          const int64_t sl = std::min<int64_t>(BSUB, g0 + gl - s0);
          for (int j = 0; j < nb; ++j) {
            const int64_t b = b0 + j;
            for (int64_t g = 0; g < sl; ++g) {
              __m512 s, m, s2, m2;
              const uint8_t* p = cp + (b * G + s0 + g) * cbytes;
              uint16_t* out = buf + 1024 * g + 512 * j;
              if (bits == 6) {  // w = s q - 32 s per half group
                half_scales(scp + b * G * 16, mnp + b * G * 16, dp + b * GS * 16, s0 + g, S, s, s2);
                const __m512 k32 = _mm512_set1_ps(32.0f);
                m = _mm512_mul_ps(s, k32), m2 = _mm512_mul_ps(s2, k32);
                dequant_group_bf16<6>(p, s, m, s2, m2, out);
              } else {
                group_scales(scp + b * G * 16, mnp + b * G * 16, dp + b * GS * 16, dmp + b * GS * 16, s0 + g, S, s,
                             m);
                if (bits == 4) dequant_group_bf16<4>(p, s, m, s, m, out);
                else dequant_group_bf16<8>(p, s, m, s, m, out);
              }
            }
          }
          {  // the next sub-slice's codes (this pair's, else the next pair's), fetched while the tiles multiply
            const int64_t nx = s0 + BSUB < g0 + gl ? s0 + BSUB : g0;
            const int64_t nb0 = s0 + BSUB < g0 + gl ? b0 : b0 + 2;
            for (int j = 0; j < 2 && nb0 + j < B; ++j) {
              const uint8_t* pf = cp + ((nb0 + j) * G + nx) * cbytes;
              const int64_t n = std::min<int64_t>(BSUB, G - nx) * cbytes;
              for (int64_t o = 0; o < n; o += 64) _mm_prefetch((const char*)(pf + o), _MM_HINT_T1);
            }
          }
          for (int64_t t = 0; t < RT; ++t)
            bf16_rows(xbp + (t * G + s0) * 512, buf, sl, nb, s0 == 0, ybp + (pr * RT + t) * 512);
        }
      }
      _tile_release();
    });
  }
  auto y = torch::empty({M, N}, torch::kFloat32);
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, pairs, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t pr = p0; pr < p1; ++pr) {
      const int nb = (int)std::min<int64_t>(2, B - 2 * pr);
      for (int64_t r = 0; r < M; ++r)
        for (int j = 0; j < nb; ++j)
          _mm512_storeu_ps(yp + r * N + (2 * pr + j) * 16,
                           _mm512_load_ps(ybp + ((pr * RT + r / 16) * 2 + j) * 256 + (r % 16) * 16));
    }
  });
  return y;
}

// RMSNorm of each row of x (M, H) float32 with weight w (H,): y = x / sqrt(mean(x^2) + eps) * w, in one call
// instead of the six tensor ops (and their dispatch) of a Python RMSNorm (~60 us each on the 1.5B's 57 norms a
// token). add_rms_norm(x, r, ...) -> (x + r, rms_norm(x + r)): the residual stream and its norm together.
static void norm_rows(const float* x, const float* r, float* s, const float* w, float eps, int64_t M, int64_t H,
                      float* y) {
  // s = x + r (when r is given), y = s / sqrt(mean(s^2) + eps) * w; H % 16 == 0 (checked by the callers)
  for (int64_t m = 0; m < M; ++m) {
    const float* xr = x + m * H;
    float* sr = s + m * H;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < H; i += 16) {
      __m512 v = _mm512_loadu_ps(xr + i);
      if (r) v = _mm512_add_ps(v, _mm512_loadu_ps(r + m * H + i));
      _mm512_storeu_ps(sr + i, v);
      acc = _mm512_fmadd_ps(v, v, acc);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / std::sqrt(_mm512_reduce_add_ps(acc) / (float)H + eps));
    for (int64_t i = 0; i < H; i += 16)
      _mm512_storeu_ps(y + m * H + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(sr + i), inv),
                                                   _mm512_loadu_ps(w + i)));
  }
}

// sum16's lanes come out as slots 0, 4, 8, 12, 1, 5, ...: where each slot's sum is
alignas(64) constexpr int32_t SUM16_ORDER[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};

// exp(x) of 16 lanes for x <= 0 (softmax weights): x = n ln2 + r, Cephes' expf polynomial on r, times 2^n
// (vscalefps); within 2 ulp of expf, each lane a function of its own input alone.
inline __m512 exp16(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));  // exp < 1e-45: 0 after scaling
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

// The 16 lane sums of a[0..15] as one vector (lane s = sum of a[s]): the same add tree for every s, so a dot
// product's value does not depend on which block of 16 it was computed in.
inline __m512 sum16(__m512* a) {
  __m512 b[8], c[4], d[2];
  for (int i = 0; i < 8; ++i)  // lanes i and i+8: [a0 lo+hi (8), a1 lo+hi (8)]
    b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44),
                         _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xEE));
  for (int i = 0; i < 4; ++i)  // quarters: 4 lanes each of 4 sums
    c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xDD));
  for (int i = 0; i < 2; ++i)  // within 128-bit lanes: elements j and j+2
    d[i] = _mm512_add_ps(_mm512_shuffle_ps(c[2 * i], c[2 * i + 1], 0x44),
                         _mm512_shuffle_ps(c[2 * i], c[2 * i + 1], 0xEE));
  __m512 e = _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], 0x88), _mm512_shuffle_ps(d[0], d[1], 0xDD));
  return _mm512_permutexvar_ps(_mm512_loadu_si512((const void*)SUM16_ORDER), e);
}

// The wide case of glue.h's attention (D a multiple of WIDE up to 256): the G heads that share a KV head, one
// query row, over its n visible slots idx[0..n) in slot order. Scores 16 slots at a time, exp 16 lanes at a time,
// values accumulated in registers, the heads together (the 1.5B, one layer after 256 tokens: 1 / 8 / 16 rows
// 25 / 187 / 382 us one head at a time, 18 / 125 / 249 us so; docs/runners.md). x0 + g * xstride: head g's query;
// y0 + g * D: its output; sc (G, ld), acc (G, D), inv (G): scratch; zero: D zeros (the padding slots' keys).
constexpr int64_t WIDE = 16;

inline void attend_wide(const float* x0, int64_t xstride, float* y0, int64_t G, int64_t D, const float* K,
                        const float* V, const int64_t* idx, int64_t n, float scale, float* sc, int64_t ld,
                        float* acc, float* inv, const float* zero) {
  const int64_t C = D / 16;
  for (int64_t j0 = 0; j0 < n; j0 += 16) {  // scores of 16 visible slots, each head
    const float* kr[16];
    for (int s = 0; s < 16; ++s) kr[s] = j0 + s < n ? K + idx[j0 + s] * D : zero;
    for (int64_t g = 0; g < G; ++g) {
      const float* x = x0 + g * xstride;
      __m512 a[16];
      for (int s = 0; s < 16; ++s) a[s] = _mm512_setzero_ps();
      for (int64_t c = 0; c < C; ++c) {
        const __m512 xv = _mm512_loadu_ps(x + 16 * c);
        for (int s = 0; s < 16; ++s) a[s] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(kr[s] + 16 * c), a[s]);
      }
      _mm512_storeu_ps(sc + g * ld + j0, _mm512_mul_ps(sum16(a), _mm512_set1_ps(scale)));
    }
  }
  for (int64_t g = 0; g < G; ++g) {  // softmax weights of each head, unnormalized; 1 / their sum
    float* sg = sc + g * ld;
    __m512 mxv = _mm512_set1_ps(-INFINITY);
    for (int64_t j = 0; j < n; j += 16)
      mxv = _mm512_mask_max_ps(mxv, (__mmask16)(n - j >= 16 ? 0xFFFF : (1u << (n - j)) - 1), mxv,
                               _mm512_loadu_ps(sg + j));
    const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(mxv));
    for (int64_t j = 0; j < n; j += 16) _mm512_storeu_ps(sg + j, exp16(_mm512_sub_ps(_mm512_loadu_ps(sg + j), mx)));
    float den = 0.0f;
    for (int64_t j = 0; j < n; ++j) den += sg[j];  // in slot order
    inv[g] = 1.0f / den;
  }
  std::fill(acc, acc + G * D, 0.0f);
  for (int64_t j0 = 0; j0 < n; j0 += 16) {  // values, in slot order, 16 slots a block, each head
    const int64_t j1 = std::min<int64_t>(n, j0 + 16);
    for (int64_t g = 0; g < G; ++g) {
      const float* sg = sc + g * ld;
      float* ag = acc + g * D;
      __m512 o[16];
      for (int64_t c = 0; c < C; ++c) o[c] = _mm512_loadu_ps(ag + 16 * c);
      for (int64_t j = j0; j < j1; ++j) {
        const __m512 pj = _mm512_set1_ps(sg[j]);
        const float* vr = V + idx[j] * D;
        for (int64_t c = 0; c < C; ++c) o[c] = _mm512_fmadd_ps(pj, _mm512_loadu_ps(vr + 16 * c), o[c]);
      }
      for (int64_t c = 0; c < C; ++c) _mm512_storeu_ps(ag + 16 * c, o[c]);
    }
  }
  for (int64_t g = 0; g < G; ++g)
    for (int64_t c = 0; c < C; ++c)
      _mm512_storeu_ps((y0 + g * D) + 16 * c, _mm512_mul_ps(_mm512_loadu_ps(acc + g * D + 16 * c),
                                                     _mm512_set1_ps(inv[g])));
}

#include "glue.h"  // rms_norm, add_rms_norm, attention, rope_write, forward_layers: shared with qmatmul_avx2.cpp

// ------------------------------------------------------------------------------------------ top-k probabilities
// The k likeliest tokens of each row of the target's logits and their softmax probabilities, for drafters that
// learn from every verified row (ADED's recycling). Why: torch's topk, then logsumexp (a max pass and an exp pass)
// cost 0.35 / 1.12 / 3.63 ms for 1 / 5 / 17 rows of Qwen2.5's 151,936 logits on a Zen 4 core pair, ~3 % of an
// ADED round; this takes 0.024 / 0.13 / 0.46 ms (same machine, median of 50). Each row is split into parts across
// the threads; a part is read twice, once for its maximum and its k largest values (a vector compare against the
// part's k-th largest so far, the rare winners inserted in scalar code) and once, from cache, for its sum of
// e^(x - max) (exp16, attention's); the parts then merge per row (their sums rescaled to the row's maximum).
// Ties go to the lower token id; NaN counts as the largest value (as torch.topk).
namespace {

constexpr int TOPK_MAX = 16;

struct TopPart {
  float mx;          // the part's maximum
  double sum;        // sum of e^(x - mx) over the part
  int n;             // values held (k, or fewer in a part shorter than k)
  float v[TOPK_MAX];  // the part's largest values, descending (ties: lower id first)
  int64_t id[TOPK_MAX];
};

// x's k largest so far in t (descending, ties: earlier first): x enters below every value >= it
inline void top_insert(TopPart& t, int k, float x, int64_t i) {
  int p = 0;
  if (std::isnan(x)) {
    while (p < t.n && std::isnan(t.v[p])) ++p;
  } else {
    while (p < t.n && (std::isnan(t.v[p]) || t.v[p] >= x)) ++p;
  }
  if (p >= k) return;
  const int last = std::min(t.n, k - 1);
  for (int j = last; j > p; --j) { t.v[j] = t.v[j - 1]; t.id[j] = t.id[j - 1]; }
  t.v[p] = x;
  t.id[p] = i;
  t.n = std::min(t.n + 1, k);
}

void top_part(const float* x, int64_t lo, int64_t hi, int k, TopPart& t) {
  t.n = 0;
  float thr = -INFINITY;  // the k-th largest once k are held; until then every value enters
  auto enter = [&](int64_t i) {
    top_insert(t, k, x[i], i);
    if (t.n == k) thr = std::isnan(t.v[k - 1]) ? INFINITY : t.v[k - 1];
  };
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  int64_t j = lo;
  for (; j + 16 <= hi; j += 16) {
    const __m512 v = _mm512_loadu_ps(x + j);
    vmax = _mm512_max_ps(vmax, v);
    __mmask16 m = t.n < k ? (__mmask16)0xFFFF
                          : (__mmask16)(_mm512_cmp_ps_mask(v, _mm512_set1_ps(thr), _CMP_GT_OQ) |
                                        _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q));
    while (m) {
      const int b = __builtin_ctz(m);
      m &= m - 1;
      enter(j + b);
    }
  }
  float mx = _mm512_reduce_max_ps(vmax);
  for (int64_t i = j; i < hi; ++i) {
    mx = std::max(mx, x[i]);
    if (t.n < k || !(x[i] <= thr)) enter(i);  // greater than the k-th, or NaN
  }
  t.mx = mx;
  const __m512 vm = _mm512_set1_ps(mx);
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  j = lo;
  for (; j + 32 <= hi; j += 32) {
    s0 = _mm512_add_ps(s0, exp16(_mm512_sub_ps(_mm512_loadu_ps(x + j), vm)));
    s1 = _mm512_add_ps(s1, exp16(_mm512_sub_ps(_mm512_loadu_ps(x + j + 16), vm)));
  }
  for (; j < hi; j += 16) {
    const __mmask16 m = (__mmask16)((hi - j) >= 16 ? 0xFFFF : ((1u << (hi - j)) - 1));
    s0 = _mm512_add_ps(s0, _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + j), vm))));
  }
  t.sum = (double)_mm512_reduce_add_ps(s0) + (double)_mm512_reduce_add_ps(s1);
}

}  // namespace

// logits (R, V) float32, k (1..16) -> [ids (R, k) int64, probs (R, k) float32]: each row's k likeliest tokens,
// likeliest first, and their probabilities under softmax(row)
std::vector<torch::Tensor> top_probs(torch::Tensor logits, int64_t k) {
  TORCH_CHECK(logits.dim() == 2 && logits.scalar_type() == torch::kFloat32, "top_probs: logits must be (R, V) float32");
  TORCH_CHECK(k >= 1 && k <= TOPK_MAX && k <= logits.size(1), "top_probs: k must be in 1..16 and at most V");
  logits = logits.contiguous();
  const int64_t R = logits.size(0), V = logits.size(1);
  // parts per row: enough for every thread when the rows are few, each at least 4096 values
  const int64_t P = std::max<int64_t>(1, std::min<int64_t>((2 * at::get_num_threads() + R - 1) / R, V / 4096));
  std::vector<TopPart> parts(R * P);
  const float* xp = logits.data_ptr<float>();
  at::parallel_for(0, R * P, 1, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) {
      const int64_t r = i / P, q = i % P;
      const int64_t lo = V * q / P, hi = V * (q + 1) / P;
      top_part(xp + r * V, lo, hi, (int)k, parts[i]);
    }
  });
  auto ids = torch::empty({R, k}, torch::kInt64);
  auto probs = torch::empty({R, k}, torch::kFloat32);
  int64_t* ip = ids.data_ptr<int64_t>();
  float* pp = probs.data_ptr<float>();
  for (int64_t r = 0; r < R; ++r) {
    TopPart all;
    all.n = 0;
    float mx = -INFINITY;
    for (int64_t q = 0; q < P; ++q) mx = std::max(mx, parts[r * P + q].mx);
    double sum = 0.0;
    for (int64_t q = 0; q < P; ++q) {  // parts in id order: an equal value from a later part goes after
      const TopPart& t = parts[r * P + q];
      sum += t.sum * std::exp((double)t.mx - (double)mx);
      for (int j = 0; j < t.n; ++j) top_insert(all, (int)k, t.v[j], t.id[j]);
    }
    const double lse = (double)mx + std::log(sum);
    for (int j = 0; j < k; ++j) {
      ip[r * k + j] = all.id[j];
      pp[r * k + j] = (float)std::exp((double)all.v[j] - lse);
    }
  }
  return {ids, probs};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("qmatmul", &qmatmul, "quantized linear (W4A8 / W8A8, AVX512-VNNI, AMX for many rows)");
  m.def("qmatmul_bf16", &qmatmul_bf16, "quantized linear through bf16 AMX tiles (prefill passes)");
  m.def("bf16_prefill_available", &bf16_prefill_available, "whether this CPU and OS run AMX-BF16 tiles");
  m.def("amx_available", &amx_available, "whether this CPU and OS run AMX tiles (asks Linux for the tile state)");
  m.def("set_amx_min_rows", &set_amx_min_rows, "passes of at least n rows take the AMX path (0: never)");
  m.def("amx_min_rows", &amx_min_rows, "the current AMX threshold (0: off)");
  m.def("set_superblocks", &set_superblocks, "4-bit super-block weights through the per-256 path (opt-in)");
  m.def("rms_norm", &rms_norm, "RMSNorm of each row (float32)");
  m.def("add_rms_norm", &add_rms_norm, "(x + r, RMSNorm(x + r)) (float32)");
  m.def("rope_write", &rope_write, "rotary embedding of q, k and the KV cache write (float32)");
  m.def("attention", &attention, "grouped-query attention over the cache, row by row (float32)");
  m.def("forward_layers", &forward_layers, "every decoder layer of a pass in one call (batch 1, float32)");
  m.def("top_probs", &top_probs, "each row's k likeliest tokens and their softmax probabilities (float32)");
  m.attr("LAYER_TENSORS") = LAYER_TENSORS;
}
