#include "triad/compress/int8_linear.h"

#include <algorithm>
#include <cmath>
#include <dnnl.hpp>

#include "triad/core/error.h"
#include "triad/core/parallel.h"

namespace triad {

namespace {

// One engine and stream for the process: oneDNN's CPU engine runs on the OpenMP threads set_threads chose.
struct Dnnl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

Dnnl& dnnl_context() {
  static Dnnl context;
  return context;
}

}  // namespace

void quantize_rows(const float* x, int rows, int cols, int8_t* q, float* scale) {
  parallel_chunks(
      static_cast<size_t>(rows),
      [&](size_t r0, size_t r1) {
        for (size_t r = r0; r < r1; ++r) {
          const float* row = x + r * cols;
          float max = 0;
#pragma omp simd reduction(max : max)
          for (int k = 0; k < cols; ++k) max = std::max(max, std::fabs(row[k]));
          const float s = max / 127.0f, inv = max > 0 ? 127.0f / max : 0.0f;
          scale[r] = s;
          int8_t* out = q + r * cols;
#pragma omp simd
          for (int k = 0; k < cols; ++k) out[k] = static_cast<int8_t>(std::rint(row[k] * inv));
        }
      },
      64);
}

double int8_error_bound(const float* x, float x_scale, const float* w, float w_scale, int K) {
  double x1 = 0, w1 = 0;
  for (int k = 0; k < K; ++k) {
    x1 += std::fabs(x[k]);
    w1 += std::fabs(w[k]);
  }
  return 0.5 * w_scale * x1 + 0.5 * x_scale * w1 + 0.25 * K * static_cast<double>(x_scale) * w_scale;
}

struct Int8Linear::Kernel {
  int M = 0;
  dnnl::matmul matmul;
  dnnl::memory weights;  // in the layout the primitive chose for this M
  dnnl::memory::desc src, dst;
};

Int8Linear::Int8Linear(const float* weight, int out_features, int in_features)
    : out_(out_features),
      in_(in_features),
      q_(static_cast<size_t>(out_features) * in_features),
      scale_(static_cast<size_t>(out_features)) {
  if (out_features <= 0 || in_features <= 0)
    fail("internal: an int8 linear of shape ({}, {})", out_features, in_features);
  quantize_rows(weight, out_, in_, q_.data(), scale_.data());
}

Int8Linear::~Int8Linear() = default;
Int8Linear::Int8Linear(Int8Linear&&) noexcept = default;
Int8Linear& Int8Linear::operator=(Int8Linear&&) noexcept = default;

void Int8Linear::dequantize_row(int n, float* out) const {
  const int8_t* q = q_.data() + static_cast<size_t>(n) * in_;
  const float s = scale_[static_cast<size_t>(n)];
  for (int k = 0; k < in_; ++k) out[k] = s * static_cast<float>(q[k]);
}

// A primitive per row count: oneDNN picks the weights' blocked layout for the shape, and the weights are
// reordered into it once, so a call only quantizes the activations and runs the product.
Int8Linear::Kernel& Int8Linear::kernel(int M) {
  for (auto& k : kernels_) {
    if (k->M == M) return *k;
  }
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  Dnnl& d = dnnl_context();
  auto kernel = std::make_unique<Kernel>();
  kernel->M = M;
  kernel->src = dnnl::memory::desc({M, in_}, dt::s8, tag::ab);
  kernel->dst = dnnl::memory::desc({M, out_}, dt::s32, tag::ab);
  dnnl::memory::desc any_weights({in_, out_}, dt::s8, tag::any);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(kernel->src, any_weights, kernel->dst), d.engine);
  kernel->matmul = dnnl::matmul(pd);
  // Our (N, K) rows are the (K, N) matrix in column-major order: format "ba".
  dnnl::memory user({{in_, out_}, dt::s8, tag::ba}, d.engine, q_.data());
  kernel->weights = dnnl::memory(pd.weights_desc(), d.engine);
  dnnl::reorder(user, kernel->weights).execute(d.stream, user, kernel->weights);
  d.stream.wait();
  kernels_.push_back(std::move(kernel));
  return *kernels_.back();
}

void Int8Linear::forward(float* out, const float* x, const float* bias, int M) {
  const size_t MK = static_cast<size_t>(M) * in_, MN = static_cast<size_t>(M) * out_;
  if (xq_.size() < MK) xq_.resize(MK);
  if (xs_.size() < static_cast<size_t>(M)) xs_.resize(static_cast<size_t>(M));
  if (acc_.size() < MN) acc_.resize(MN);
  quantize_rows(x, M, in_, xq_.data(), xs_.data());
  Kernel& k = kernel(M);
  Dnnl& d = dnnl_context();
  dnnl::memory src(k.src, d.engine, xq_.data()), dst(k.dst, d.engine, acc_.data());
  k.matmul.execute(d.stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, k.weights}, {DNNL_ARG_DST, dst}});
  d.stream.wait();
  const int N = out_;
  parallel_chunks(
      static_cast<size_t>(M),
      [&](size_t m0, size_t m1) {
        for (size_t m = m0; m < m1; ++m) {
          const int32_t* a = acc_.data() + m * N;
          const float sx = xs_[m];
          float* o = out + m * N;
          if (bias) {
#pragma omp simd
            for (int n = 0; n < N; ++n) o[n] = static_cast<float>(a[n]) * (sx * scale_[n]) + bias[n];
          } else {
#pragma omp simd
            for (int n = 0; n < N; ++n) o[n] = static_cast<float>(a[n]) * (sx * scale_[n]);
          }
        }
      },
      16);
}

}  // namespace triad
