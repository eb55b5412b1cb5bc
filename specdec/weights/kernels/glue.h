// The kernel library's parts that are the same C++ in both builds (qmatmul.cpp: AVX-512, qmatmul_avx2.cpp: AVX2),
// included by each after its own qmatmul, norm_rows, WIDE and attend_wide: rms_norm / add_rms_norm, attention (the
// gathering of visible slots, the threads, the slow path for other head sizes), rope_write (plain loops, which the
// compiler vectorizes for the build's flags) and forward_layers (every decoder layer of a pass in one call).
#pragma once

// RMSNorm of each row of x (M, H) float32 with weight w (H,): y = x / sqrt(mean(x^2) + eps) * w, in one call
// instead of the six tensor ops (and their dispatch) of a Python RMSNorm (~60 us each on the 1.5B's 57 norms a
// token), through the build's norm_rows. add_rms_norm(x, r, ...) -> (x + r, rms_norm(x + r)): the residual stream
// and its norm together.
torch::Tensor rms_norm(torch::Tensor x, torch::Tensor w, double eps) {
  TORCH_CHECK(x.scalar_type() == torch::kFloat32 && w.scalar_type() == torch::kFloat32, "float32 only");
  x = x.contiguous();
  const int64_t H = x.size(-1);
  TORCH_CHECK(H % 16 == 0 && w.numel() == H, "rms_norm: H must be a multiple of 16 and match the weight");
  auto s = torch::empty_like(x);
  auto y = torch::empty_like(x);
  norm_rows(x.data_ptr<float>(), nullptr, s.data_ptr<float>(), w.contiguous().data_ptr<float>(), (float)eps,
            x.numel() / H, H, y.data_ptr<float>());
  return y;
}

std::vector<torch::Tensor> add_rms_norm(torch::Tensor x, torch::Tensor r, torch::Tensor w, double eps) {
  TORCH_CHECK(x.scalar_type() == torch::kFloat32 && r.scalar_type() == torch::kFloat32, "float32 only");
  x = x.contiguous();
  r = r.contiguous();
  const int64_t H = x.size(-1);
  TORCH_CHECK(H % 16 == 0 && w.numel() == H && r.numel() == x.numel(), "add_rms_norm: shapes do not match");
  auto s = torch::empty_like(x);
  auto y = torch::empty_like(x);
  norm_rows(x.data_ptr<float>(), r.data_ptr<float>(), s.data_ptr<float>(), w.contiguous().data_ptr<float>(),
            (float)eps, x.numel() / H, H, y.data_ptr<float>());
  return {s, y};
}

// Attention of q (B, Hq, T, D) over the cache's first L slots k / v (B, Hkv, S, D), grouped-query (head h reads
// kv head h / (Hq / Hkv)), `mask` (T, L) bool: which slots each query row sees. Each (head, row) is computed on
// its own over its visible slots gathered in slot order, so a row's output depends only on its query and the
// sequence of keys and values it sees: not on the other rows of the pass, nor on where those slots lie (a tree
// node gets exactly the numbers of the same tokens run as a chain). D a multiple of the build's WIDE (up to 256):
// the build's attend_wide; other D: one slot at a time. Returns (B, T, Hq*D).
torch::Tensor attention(torch::Tensor q, torch::Tensor kc, torch::Tensor vc, torch::Tensor mask, double scale) {
  TORCH_CHECK(q.scalar_type() == torch::kFloat32, "float32 only");
  q = q.contiguous();
  auto m = mask.to(torch::kBool).contiguous();
  const int64_t B = q.size(0), Hq = q.size(1), T = q.size(2), D = q.size(3);
  const int64_t Hkv = kc.size(1), S = kc.size(2), L = m.size(1), G = Hq / Hkv;
  TORCH_CHECK(L <= S && m.size(0) == T, "attention: mask does not match");
  TORCH_CHECK(kc.stride(3) == 1 && kc.stride(2) == D && vc.stride(3) == 1 && vc.stride(2) == D,
              "the caches' rows must be contiguous");
  const int64_t kb = kc.stride(0), kh = kc.stride(1), vb = vc.stride(0), vh = vc.stride(1);
  auto out = torch::empty({B, T, Hq * D}, q.options());
  const float *qp = q.data_ptr<float>(), *kp = kc.data_ptr<float>(), *vp = vc.data_ptr<float>();
  const bool* mp = m.data_ptr<bool>();
  float* op = out.data_ptr<float>();
  const bool wide = D % WIDE == 0 && D <= 256;
  // one work item = one row of the G query heads that share a KV head: the keys and values of a block of WIDE
  // visible slots are read from L2 once and reused from L1 by the G heads (each head alone re-read the whole
  // cache from L2: that, not arithmetic, bound the per-head loop)
  at::parallel_for(0, B * Hkv * T, 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> sc(G * (L + WIDE));
    std::vector<int64_t> idx(L);
    std::vector<float> acc(G * D), zero(D, 0.0f), inv(G);
    for (int64_t it = i0; it < i1; ++it) {
      const int64_t b = it / (Hkv * T), kvh = (it / T) % Hkv, t = it % T;
      const float* K = kp + b * kb + kvh * kh;
      const float* V = vp + b * vb + kvh * vh;
      const bool* vis = mp + t * L;
      int64_t n = 0;
      for (int64_t s = 0; s < L; ++s)
        if (vis[s]) idx[n++] = s;
      auto xq = [&](int64_t g) { return qp + ((b * Hq + kvh * G + g) * T + t) * D; };
      auto yq = [&](int64_t g) { return op + (b * T + t) * Hq * D + (kvh * G + g) * D; };
      if (n == 0) {
        for (int64_t g = 0; g < G; ++g) std::fill(yq(g), yq(g) + D, 0.0f);
        continue;
      }
      if (wide) {
        attend_wide(xq(0), T * D, yq(0), G, D, K, V, idx.data(), n, (float)scale, sc.data(), L + WIDE, acc.data(),
                    inv.data(), zero.data());
        continue;
      }
      for (int64_t g = 0; g < G; ++g) {  // other D: one slot at a time
        const float* x = xq(g);
        float mx = -INFINITY;
        for (int64_t j = 0; j < n; ++j) {
          const float* kr = K + idx[j] * D;
          float dot = 0.0f;
          for (int64_t i = 0; i < D; ++i) dot += x[i] * kr[i];
          sc[j] = dot * (float)scale;
          mx = std::max(mx, sc[j]);
        }
        float* ag = acc.data();
        std::fill(ag, ag + D, 0.0f);
        float den = 0.0f;
        for (int64_t j = 0; j < n; ++j) {
          const float p = std::exp(sc[j] - mx);
          den += p;
          const float* vr = V + idx[j] * D;
          for (int64_t i = 0; i < D; ++i) ag[i] += p * vr[i];
        }
        float* y = yq(g);
        for (int64_t i = 0; i < D; ++i) y[i] = ag[i] / den;
      }
    }
  });
  return out;
}

// Rotary embedding of q and k (NEOX / rotate_half layout, as HF's Llama-family models) and the KV cache write:
// q (B, T, Hq*D), k / v (B, T, Hkv*D), cos / sin (B, T, D); k_cache / v_cache (B, Hkv, S, D) get the rotated k and v
// at `slots` (T,). Returns the rotated q as (B, Hq, T, D). One call instead of ~14 tensor ops a layer.
torch::Tensor rope_write(torch::Tensor q, torch::Tensor k, torch::Tensor v, torch::Tensor cos, torch::Tensor sin,
                         torch::Tensor kc, torch::Tensor vc, torch::Tensor slots, int64_t n_heads, int64_t n_kv) {
  TORCH_CHECK(q.scalar_type() == torch::kFloat32 && kc.scalar_type() == torch::kFloat32, "float32 only");
  q = q.contiguous(); k = k.contiguous(); v = v.contiguous(); cos = cos.contiguous(); sin = sin.contiguous();
  TORCH_CHECK(kc.stride(3) == 1 && kc.stride(2) == cos.size(-1) && vc.stride(3) == 1 &&
              vc.stride(2) == cos.size(-1), "the caches' rows must be contiguous");
  const int64_t B = q.size(0), T = q.size(1), D = cos.size(-1), half = D / 2;
  const int64_t kb = kc.stride(0), kh = kc.stride(1), vb = vc.stride(0), vh = vc.stride(1);
  auto out = torch::empty({B, n_heads, T, D}, q.options());
  const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
  const float *cp = cos.data_ptr<float>(), *sp = sin.data_ptr<float>();
  float *op = out.data_ptr<float>(), *kcp = kc.data_ptr<float>(), *vcp = vc.data_ptr<float>();
  auto sl = slots.to(torch::kLong).contiguous();
  const int64_t* slp = sl.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const float* c = cp + (b * T + t) * D;
      const float* sn = sp + (b * T + t) * D;
      for (int64_t h = 0; h < n_heads; ++h) {
        const float* x = qp + ((b * T + t) * n_heads + h) * D;
        float* y = op + ((b * n_heads + h) * T + t) * D;
        for (int64_t i = 0; i < half; ++i) {
          y[i] = x[i] * c[i] - x[i + half] * sn[i];
          y[i + half] = x[i + half] * c[i + half] + x[i] * sn[i + half];
        }
      }
      for (int64_t h = 0; h < n_kv; ++h) {
        const float* x = kp + ((b * T + t) * n_kv + h) * D;
        const float* xv = vp + ((b * T + t) * n_kv + h) * D;
        float* y = kcp + b * kb + h * kh + slp[t] * D;
        float* yv = vcp + b * vb + h * vh + slp[t] * D;
        for (int64_t i = 0; i < half; ++i) {
          y[i] = x[i] * c[i] - x[i + half] * sn[i];
          y[i + half] = x[i + half] * c[i + half] + x[i] * sn[i + half];
        }
        for (int64_t i = 0; i < D; ++i) yv[i] = xv[i];
      }
    }
  return out;
}


// Every decoder layer of a pass in one call (batch 1, float32, row-by-row attention): the same kernels and ATen
// ops, in the same order and on the same shapes, as the Python loop of runners/torch_runner.py (_Core.forward),
// so the numbers are the same bit for bit; what goes is Python's dispatch between them (~10 tensor ops and
// kernel calls a layer; see weights/layer_plan.py for the measured time).
//   x (1, T, H) the embedded tokens; cos / sin (1, T, D); slots (T,); mask (T, L) bool; kc / vc one cache a layer
//   w: per layer LAYER_TENSORS tensors: input norm, post-attention norm, then 7 linears q, k, v, o, gate, up,
//      down, each codes, sc, mn, d, dm, bias (an empty tensor: none); then the final norm's weight
//   bits: per layer the 7 linears' bits, 0 where the linear is fused into the one before it: k = v = 0 means
//      q holds q|k|v (split by sizes[0..2]), up = 0 means gate holds gate|up (split by sizes[3..4])
// Returns the final norm of the residual stream, (1, T, H): the output layer's input.
constexpr int64_t LINEARS = 7;
constexpr int64_t LAYER_TENSORS = 2 + LINEARS * 6;

torch::Tensor forward_layers(torch::Tensor x, torch::Tensor cos, torch::Tensor sin, torch::Tensor slots,
                             torch::Tensor mask, std::vector<torch::Tensor> kc, std::vector<torch::Tensor> vc,
                             std::vector<torch::Tensor> w, std::vector<int64_t> bits, std::vector<int64_t> sizes,
                             int64_t n_heads, int64_t n_kv, double eps, double scale) {
  const int64_t L = (int64_t)kc.size();
  TORCH_CHECK(x.dim() == 3 && x.size(0) == 1, "forward_layers: x must be (1, T, H)");
  TORCH_CHECK((int64_t)vc.size() == L && (int64_t)w.size() == L * LAYER_TENSORS + 1 &&
                  (int64_t)bits.size() == LINEARS * L && sizes.size() == 5,
              "forward_layers: the weight plan does not match the layers");
  const int64_t T = x.size(1);
  auto lin = [&](const torch::Tensor& in, const torch::Tensor* p, int64_t b) {  // (1, T, K) -> (1, T, N)
    auto y = qmatmul(in.reshape({-1, in.size(-1)}), p[0], p[1], p[2], p[3], p[4], b);  // (T, N)
    y = y.reshape({1, T, y.size(1)});
    return p[5].numel() ? y + p[5] : y;
  };
  torch::Tensor res;  // the last MLP output, added to the residual stream together with the next norm
  for (int64_t i = 0; i < L; ++i) {
    const torch::Tensor* p = w.data() + i * LAYER_TENSORS;
    const int64_t* bi = bits.data() + i * LINEARS;
    auto wl = [&](int j) { return p + 2 + 6 * j; };  // linear j's six tensors
    torch::Tensor h;
    if (!res.defined()) {
      h = rms_norm(x, p[0], eps);
    } else {
      auto sy = add_rms_norm(x, res, p[0], eps);
      x = sy[0]; h = sy[1];
    }
    torch::Tensor q, k, v;
    if (bi[1] == 0) {
      auto qkv = lin(h, wl(0), bi[0]).split_with_sizes({sizes[0], sizes[1], sizes[2]}, -1);
      q = qkv[0]; k = qkv[1]; v = qkv[2];
    } else {
      q = lin(h, wl(0), bi[0]); k = lin(h, wl(1), bi[1]); v = lin(h, wl(2), bi[2]);
    }
    auto qr = rope_write(q, k, v, cos, sin, kc[i], vc[i], slots, n_heads, n_kv);  // (1, Hq, T, D)
    auto o = attention(qr, kc[i], vc[i], mask, scale);  // (1, T, Hq*D)
    auto sy = add_rms_norm(x, lin(o, wl(3), bi[3]), p[1], eps);
    x = sy[0]; h = sy[1];
    torch::Tensor g, u;
    if (bi[5] == 0) {
      auto gu = lin(h, wl(4), bi[4]).split_with_sizes({sizes[3], sizes[4]}, -1);
      g = gu[0]; u = gu[1];
    } else {
      g = lin(h, wl(4), bi[4]); u = lin(h, wl(5), bi[5]);
    }
    res = lin(at::silu(g) * u, wl(6), bi[6]);
  }
  TORCH_CHECK(res.defined(), "forward_layers: no layers");
  return add_rms_norm(x, res, w.back(), eps)[1];
}
