// MODNet's element-wise work fused into single passes, as TorchScript operators.
//
// The CPU variants (_cpu.pt, _bf16.pt) call these instead of chains of ATen ops: on a
// 2-core Xeon the bf16 forward spent 97 of 149 ms outside the convolutions, in the
// instance norm's sum/sub/mul/addcmul, separate ReLUs, dtype casts, upsampling and
// concatenation, each a full pass over memory. Registered under `modnet::` (see
// `modnetmatte_ops_register` at the end) both in the engine (compiled into the crate by
// build.rs; src/net/ops.rs registers before a model loads) and in the exporter
// (tools/modnet/ops.py builds this file for torch.ops.load_library).
// tools/modnet/model.py keeps the unfused modules as the reference these are tested
// against.
//
// Both operators take and give channels-last tensors (NHWC in memory) of float32 or
// bfloat16 and compute in float32, rounding once on the way out.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

namespace {

// The package runs on any x86-64, so the hot loops are compiled three times and the
// loader picks by CPU (GCC function multiversioning): AVX-512 made the bf16 instance
// norm 3x faster than the baseline build here. The loops are written so the compiler
// vectorises them over the channels (NHWC's innermost, contiguous dimension).
#define MODNET_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define MODNET_INLINE inline __attribute__((always_inline))

MODNET_INLINE float load(const float* p, int64_t i) { return p[i]; }
MODNET_INLINE float load(const c10::BFloat16* p, int64_t i) { return static_cast<float>(p[i]); }
MODNET_INLINE void store(float* p, int64_t i, float v) { p[i] = v; }
MODNET_INLINE void store(c10::BFloat16* p, int64_t i, float v) { p[i] = c10::BFloat16(v); }

at::Tensor channels_last(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.dim() == 4, what, ": expected a 4-d tensor, got ", t.dim(), " dims");
  TORCH_CHECK(t.device().is_cpu(), what, ": expected a CPU tensor");
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16, what,
              ": expected float32 or bfloat16, got ", t.scalar_type());
  return t.contiguous(at::MemoryFormat::ChannelsLast);
}

// ------------------------------------------------------------------ ibnorm_relu

// Per-channel sums over rows [r0, r1) of one image (hw pixels of c channels),
// shifted by `k` (the image's first pixel) so that the variance keeps its digits.
template <typename T>
MODNET_INLINE void partial_sums_t(const T* x, int64_t c, int64_t split, int64_t w, int64_t r0, int64_t r1,
                                  const float* k, double* s1, double* s2) {
  const int64_t n = c - split;
  std::vector<float> a(n), b(n);
  for (int64_t r = r0; r < r1; ++r) {
    std::fill(a.begin(), a.end(), 0.f);
    std::fill(b.begin(), b.end(), 0.f);
    const T* row = x + r * w * c + split;
    for (int64_t p = 0; p < w; ++p) {
      for (int64_t j = 0; j < n; ++j) {
        float v = load(row, p * c + j) - k[j];
        a[j] += v;
        b[j] += v * v;
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      s1[j] += a[j];
      s2[j] += b[j];
    }
  }
}

template <typename T, bool Relu>
MODNET_INLINE void apply_t(const T* x, T* o, int64_t c, int64_t p0, int64_t p1, const float* scale, const float* shift) {
  for (int64_t p = p0; p < p1; ++p) {
    for (int64_t j = 0; j < c; ++j) {
      float v = load(x, p * c + j) * scale[j] + shift[j];
      store(o, p * c + j, Relu ? std::max(v, 0.f) : v);
    }
  }
}

// The compiled-three-times entry points (a clone can inline the templates above; a
// lambda inside one would get the baseline target, so the lambdas call these).
MODNET_CLONES void partial_sums(const float* x, int64_t c, int64_t split, int64_t w, int64_t r0, int64_t r1,
                                const float* k, double* s1, double* s2) {
  partial_sums_t(x, c, split, w, r0, r1, k, s1, s2);
}
MODNET_CLONES void partial_sums(const c10::BFloat16* x, int64_t c, int64_t split, int64_t w, int64_t r0,
                                int64_t r1, const float* k, double* s1, double* s2) {
  partial_sums_t(x, c, split, w, r0, r1, k, s1, s2);
}
MODNET_CLONES void apply(const float* x, float* o, int64_t c, int64_t p0, int64_t p1, const float* scale,
                         const float* shift, bool relu) {
  relu ? apply_t<float, true>(x, o, c, p0, p1, scale, shift) : apply_t<float, false>(x, o, c, p0, p1, scale, shift);
}
MODNET_CLONES void apply(const c10::BFloat16* x, c10::BFloat16* o, int64_t c, int64_t p0, int64_t p1,
                         const float* scale, const float* shift, bool relu) {
  relu ? apply_t<c10::BFloat16, true>(x, o, c, p0, p1, scale, shift)
       : apply_t<c10::BFloat16, false>(x, o, c, p0, p1, scale, shift);
}

template <typename T>
void ibnorm_relu_kernel(const at::Tensor& y, at::Tensor& out, int64_t split, double eps, bool relu) {
  const int64_t nb = y.size(0), c = y.size(1), h = y.size(2), w = y.size(3);
  const int64_t n = c - split;
  const T* src = y.data_ptr<T>();
  T* dst = out.data_ptr<T>();
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), h));
  std::vector<float> scale(c), shift(c), k(n);
  for (int64_t b = 0; b < nb; ++b) {
    const T* x = src + b * h * w * c;
    T* o = dst + b * h * w * c;
    std::fill(scale.begin(), scale.end(), 1.f);
    std::fill(shift.begin(), shift.end(), 0.f);
    if (n > 0) {
      for (int64_t j = 0; j < n; ++j) k[j] = load(x, split + j);
      std::vector<double> s1(threads * n, 0.0), s2(threads * n, 0.0);
      const int64_t rows = (h + threads - 1) / threads;
      at::parallel_for(0, threads, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          partial_sums(x, c, split, w, std::min(h, t * rows), std::min(h, (t + 1) * rows), k.data(),
                       s1.data() + t * n, s2.data() + t * n);
        }
      });
      const double m = double(h * w);
      for (int64_t j = 0; j < n; ++j) {
        double a = 0.0, q = 0.0;
        for (int64_t t = 0; t < threads; ++t) {
          a += s1[t * n + j];
          q += s2[t * n + j];
        }
        const double d = a / m;  // mean - k
        const double var = std::max(0.0, q / m - d * d);
        const double rstd = 1.0 / std::sqrt(var + eps);
        scale[split + j] = float(rstd);
        shift[split + j] = float(-(d + k[j]) * rstd);
      }
    }
    at::parallel_for(0, h * w, 2048, [&](int64_t p0, int64_t p1) {
      apply(x, o, c, p0, p1, scale.data(), shift.data(), relu);
    });
  }
}

// IBNorm after its BatchNorm half was folded into the convolution before it: the first
// `split` channels as they are, instance norm (no affine) on the rest; then ReLU if
// `relu`. One pass for the statistics, one to write.
at::Tensor ibnorm_relu(const at::Tensor& input, int64_t split, double eps, bool relu) {
  at::Tensor y = channels_last(input, "modnet::ibnorm_relu");
  TORCH_CHECK(split >= 0 && split <= y.size(1), "modnet::ibnorm_relu: split ", split, " outside 0..",
              y.size(1));
  TORCH_CHECK(y.size(2) * y.size(3) > 0, "modnet::ibnorm_relu: empty image");
  at::Tensor out = at::empty_like(y, at::MemoryFormat::ChannelsLast);
  if (y.scalar_type() == at::kFloat) {
    ibnorm_relu_kernel<float>(y, out, split, eps, relu);
  } else {
    ibnorm_relu_kernel<c10::BFloat16>(y, out, split, eps, relu);
  }
  return out;
}

// ------------------------------------------------------------------ cat_resized

// Source rows/columns and weights of one output coordinate, as ATen's bilinear
// interpolation (align_corners=False, a given scale factor) computes them.
struct Tap {
  int64_t i0, i1;
  float w0, w1;
};

std::vector<Tap> taps(int64_t out, int64_t in, int64_t factor) {
  std::vector<Tap> t(out);
  for (int64_t d = 0; d < out; ++d) {
    // factor > 0: up by factor; factor < 0: down by -factor (scale 1/-factor).
    float src = factor > 0 ? (d + 0.5f) / float(factor) - 0.5f : (d + 0.5f) * float(-factor) - 0.5f;
    if (src < 0.f) src = 0.f;
    int64_t i0 = std::min<int64_t>(int64_t(src), in - 1);
    int64_t i1 = i0 < in - 1 ? i0 + 1 : i0;
    float l = src - float(i0);
    t[d] = Tap{i0, i1, 1.f - l, l};
  }
  return t;
}

// One output row: the two source rows blended vertically into `v` (float, iw*c), then
// each output pixel's two horizontal taps of `v` into its place among oc channels.
template <typename T>
MODNET_INLINE void resize_row_t(const T* a, const T* z, float wa, float wz, float* v, int64_t n, const Tap* tx,
                                int64_t ow, int64_t c, int64_t oc, T* o) {
  for (int64_t q = 0; q < n; ++q) v[q] = wa * load(a, q) + wz * load(z, q);
  for (int64_t p = 0; p < ow; ++p) {
    const float* v0 = v + tx[p].i0 * c;
    const float* v1 = v + tx[p].i1 * c;
    const float w0 = tx[p].w0, w1 = tx[p].w1;
    for (int64_t j = 0; j < c; ++j) store(o, p * oc + j, w0 * v0[j] + w1 * v1[j]);
  }
}
MODNET_CLONES void resize_row(const float* a, const float* z, float wa, float wz, float* v, int64_t n,
                              const Tap* tx, int64_t ow, int64_t c, int64_t oc, float* o) {
  resize_row_t(a, z, wa, wz, v, n, tx, ow, c, oc, o);
}
MODNET_CLONES void resize_row(const c10::BFloat16* a, const c10::BFloat16* z, float wa, float wz, float* v,
                              int64_t n, const Tap* tx, int64_t ow, int64_t c, int64_t oc, c10::BFloat16* o) {
  resize_row_t(a, z, wa, wz, v, n, tx, ow, c, oc, o);
}

template <typename T>
void copy_part(const at::Tensor& x, at::Tensor& out, int64_t offset, int64_t factor) {
  const int64_t nb = x.size(0), c = x.size(1), ih = x.size(2), iw = x.size(3);
  const int64_t oc = out.size(1), oh = out.size(2), ow = out.size(3);
  const T* src = x.data_ptr<T>();
  T* dst = out.data_ptr<T>() + offset;
  if (factor == 1) {
    at::parallel_for(0, nb * oh, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t p = 0; p < ow; ++p) {
          T* o = dst + (r * ow + p) * oc;
          const T* s = src + (r * ow + p) * c;
          std::memcpy(o, s, sizeof(T) * c);
        }
      }
    });
    return;
  }
  const std::vector<Tap> ty = taps(oh, ih, factor), tx = taps(ow, iw, factor);
  at::parallel_for(0, nb * oh, 4, [&](int64_t r0, int64_t r1) {
    std::vector<float> v(iw * c);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / oh;
      const Tap& yy = ty[r % oh];
      resize_row(src + (b * ih + yy.i0) * iw * c, src + (b * ih + yy.i1) * iw * c, yy.w0, yy.w1, v.data(),
                 iw * c, tx.data(), ow, c, oc, dst + r * ow * oc);
    }
  });
}

// torch.cat(parts, 1) where part i is first resized by factors[i] (1: as it is, 2: up
// two times, -2 / -4: down two / four times, bilinear, align_corners=False), written
// straight into the concatenated output instead of through a tensor per part.
at::Tensor cat_resized(at::TensorList parts, at::IntArrayRef factors) {
  TORCH_CHECK(!parts.empty() && parts.size() == factors.size(), "modnet::cat_resized: ", parts.size(),
              " parts and ", factors.size(), " factors");
  std::vector<at::Tensor> xs;
  int64_t oh = -1, ow = -1, oc = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    xs.push_back(channels_last(parts[i], "modnet::cat_resized"));
    const int64_t f = factors[i];
    TORCH_CHECK(f == 1 || f == 2 || f == -2 || f == -4, "modnet::cat_resized: factor ", f,
                " is not 1, 2, -2 or -4");
    const int64_t h = f > 0 ? xs[i].size(2) * f : xs[i].size(2) / -f;
    const int64_t w = f > 0 ? xs[i].size(3) * f : xs[i].size(3) / -f;
    TORCH_CHECK(h > 0 && w > 0, "modnet::cat_resized: part ", i, " resizes to nothing");
    TORCH_CHECK(oh < 0 || (h == oh && w == ow), "modnet::cat_resized: part ", i, " comes out ", w, "x", h,
                ", the others ", ow, "x", oh);
    TORCH_CHECK(xs[i].scalar_type() == xs[0].scalar_type() && xs[i].size(0) == xs[0].size(0),
                "modnet::cat_resized: part ", i, " differs from the first in dtype or batch");
    oh = h;
    ow = w;
    oc += xs[i].size(1);
  }
  at::Tensor out = at::empty({xs[0].size(0), oc, oh, ow}, xs[0].options(), at::MemoryFormat::ChannelsLast);
  int64_t offset = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (xs[i].scalar_type() == at::kFloat) {
      copy_part<float>(xs[i], out, offset, factors[i]);
    } else {
      copy_part<c10::BFloat16>(xs[i], out, offset, factors[i]);
    }
    offset += xs[i].size(1);
  }
  return out;
}

}  // namespace

// Registered at run time, not by a static TORCH_LIBRARY: a process can hold two copies
// of the engine (a program linking it that also loads the plugin, which links its own),
// and a second static registration of the namespace aborts at load. The first copy to
// ask registers; the others find the schemas there and use them (the same code).
// Returns 1 registered now, 2 already there, -1 failed (the message on stderr).
extern "C" int modnetmatte_ops_register() {
  static std::once_flag once;
  static int result = -1;
  std::call_once(once, [] {
    try {
      if (c10::Dispatcher::singleton().findSchema({"modnet::ibnorm_relu", ""}).has_value()) {
        result = 2;
        return;
      }
      // Leaked on purpose: a Library unregisters its operators when destroyed, and
      // the models that call them live until the process ends.
      auto* def = new torch::Library(torch::Library::FRAGMENT, "modnet", std::nullopt, __FILE__, __LINE__);
      def->def("ibnorm_relu(Tensor input, int split, float eps, bool relu) -> Tensor");
      def->def("cat_resized(Tensor[] parts, int[] factors) -> Tensor");
      auto* impl = new torch::Library(torch::Library::IMPL, "modnet", c10::DispatchKey::CPU, __FILE__, __LINE__);
      impl->impl("ibnorm_relu", ibnorm_relu);
      impl->impl("cat_resized", cat_resized);
      result = 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "modnetmatte: registering the modnet:: operators failed: %s\n", e.what());
    }
  });
  return result;
}

#ifdef MODNET_OPS_REGISTER_AT_LOAD
// The exporter's build (tools/modnet/ops.py): torch.ops.load_library only loads.
static const int registered_at_load = modnetmatte_ops_register();
#endif
