#include "triad/comm/codec_internal.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "triad/comm/kernels.h"
#include "triad/core/blas.h"
#include "triad/core/error.h"

namespace triad::comm {

namespace {

class PowerSgdCodec : public FlatCodec {
 public:
  PowerSgdCodec(const CodecSpec& spec, const GradRange& bucket, MPI_Comm comm, const CodecOptions& options,
                int tag)
      : FlatCodec(spec, bucket, comm, options), r_(spec.rank), residual_(bucket.count, 0.0f) {
    std::vector<Matrix> matrices = bucket.matrices;
    std::sort(matrices.begin(), matrices.end(),
              [](const Matrix& a, const Matrix& b) { return a.offset < b.offset; });
    size_t covered = bucket.offset, p_floats = 0, q_floats = 0;
    for (const Matrix& m : matrices) {
      if (m.offset < covered || m.offset + m.rows * m.cols > bucket.end()) {
        fail("powersgd: a {}x{} matrix at float {} overlaps another or leaves bucket [{}, {})", m.rows,
             m.cols, m.offset, bucket.offset, bucket.end());
      }
      if (!powersgd_compresses(m, r_)) continue;
      add_raw(covered, m.offset);
      factors_.push_back(Factor{m.offset - bucket.offset, m.rows, m.cols, p_floats, q_floats});
      p_floats += m.rows * r_;
      q_floats += m.cols * r_;
      covered = m.offset + m.rows * m.cols;
    }
    add_raw(covered, bucket.end());
    raw_floats_ = 0;
    for (const auto& [begin, end] : raw_) raw_floats_ += end - begin;
    p_.resize(raw_floats_ + p_floats);
    q_.resize(q_floats);
    // The first Q is the same random normal matrix on every rank (seeded), as the sum of M_i Q needs.
    for (size_t i = 0; i < q_.size(); i += 2) {
      uint64_t bits = mix64(options.seed ^ mix64(static_cast<uint64_t>(tag) << 40 ^ i));
      double u1 = (static_cast<double>(bits >> 11) + 0.5) * 0x1p-53;
      double u2 = static_cast<double>(mix64(bits) >> 11) * 0x1p-53;
      double radius = std::sqrt(-2 * std::log(u1));
      q_[i] = static_cast<float>(radius * std::cos(2 * M_PI * u2));
      if (i + 1 < q_.size()) q_[i + 1] = static_cast<float>(radius * std::sin(2 * M_PI * u2));
    }
  }

  void start(float* data, int64_t) override {
    data_ = data;
    size_t at = 0;
    for (const auto& [begin, end] : raw_) {
      std::copy(data + begin, data + end, p_.begin() + at);
      at += end - begin;
    }
    for (const Factor& f : factors_) {
      float* m = residual_.data() + f.offset;  // error feedback: M = gradient + residual
      for (size_t i = 0; i < f.rows * f.cols; ++i) m[i] += data[f.offset + i];
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, f.rows, r_, f.cols, 1.0f, m, f.cols,
                  q_.data() + f.q, r_, 0.0f, p(f), r_);  // P = M Q
    }
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, p_.data(), static_cast<int>(p_.size()), MPI_FLOAT, MPI_SUM, comm_,
                             &request_),
              "powersgd P all-reduce");
    phase_ = 1;
  }

  bool poll() override {
    if (!done(request_, "powersgd all-reduce")) return false;
    if (phase_ == 1) {
      size_t at = 0;
      for (const auto& [begin, end] : raw_) {
        for (size_t i = begin; i < end; ++i) data_[i] = p_[at++] * (1.0f / ranks_);
      }
      for (const Factor& f : factors_) {
        orthogonalize(p(f), f.rows, r_);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, f.cols, r_, f.rows, 1.0f,
                    residual_.data() + f.offset, f.cols, p(f), r_, 0.0f, q_.data() + f.q, r_);  // Q = M^T P
      }
      check_mpi(MPI_Iallreduce(MPI_IN_PLACE, q_.data(), static_cast<int>(q_.size()), MPI_FLOAT, MPI_SUM,
                               comm_, &request_),
                "powersgd Q all-reduce");
      phase_ = 2;
      return false;
    }
    for (const Factor& f : factors_) {
      float* out = data_ + f.offset;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, f.rows, f.cols, r_, 1.0f / ranks_, p(f), r_,
                  q_.data() + f.q, r_, 0.0f, out, f.cols);  // mean M ~ P (sum Q)^T / ranks
      float* m = residual_.data() + f.offset;
      for (size_t i = 0; i < f.rows * f.cols; ++i) m[i] -= out[i];
    }
    return true;
  }

  // The residual of the bucket, then Q (the warm start).
  std::vector<float> save_state() const override {
    std::vector<float> state = residual_;
    state.insert(state.end(), q_.begin(), q_.end());
    return state;
  }
  void load_state(const std::vector<float>& state) override {
    if (state.size() != residual_.size() + q_.size()) {
      fail("{} state has {} floats; this bucket needs {} (residual) + {} (Q)", name(), state.size(),
           residual_.size(), q_.size());
    }
    std::copy(state.begin(), state.begin() + residual_.size(), residual_.begin());
    std::copy(state.begin() + residual_.size(), state.end(), q_.begin());
  }

 private:
  struct Factor {
    size_t offset, rows, cols;  // offset from the bucket's first float
    size_t p, q;                // where its P (after the raw floats) and its Q start
  };

  void add_raw(size_t begin, size_t end) {
    if (end > begin) raw_.emplace_back(begin - bucket_.offset, end - bucket_.offset);
  }
  float* p(const Factor& f) { return p_.data() + raw_floats_ + f.p; }

  int r_;
  std::vector<Factor> factors_;
  std::vector<std::pair<size_t, size_t>> raw_;  // bucket-relative ranges sent uncompressed
  size_t raw_floats_ = 0;
  std::vector<float> residual_, p_, q_;
  int phase_ = 0;
};

}  // namespace

std::unique_ptr<Codec> make_powersgd_codec(const CodecSpec& spec, const GradRange& bucket, MPI_Comm comm,
                                           const CodecOptions& options, int tag) {
  return std::make_unique<PowerSgdCodec>(spec, bucket, comm, options, tag);
}

}  // namespace triad::comm
