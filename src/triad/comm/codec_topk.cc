#include "triad/comm/codec_internal.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "triad/comm/kernels.h"
#include "triad/core/error.h"

namespace triad::comm {

namespace {

class TopKCodec : public FlatCodec {
 public:
  TopKCodec(const CodecSpec& spec, const GradRange& bucket, MPI_Comm comm, const CodecOptions& options)
      : FlatCodec(spec, bucket, comm, options), residual_(bucket.count, 0.0f), scratch_(bucket.count) {}

  void start(float* data, int64_t step) override {
    data_ = data;
    size_t n = bucket_.count;
    k_ = topk_count(n, spec_.ratio, step, options_.topk_warmup_steps);
    // Error feedback: what was not sent before is added to this gradient; what is not sent now stays, and
    // so does the fp16 rounding of what is (acc - fp16(acc), exact in float for normal fp16 values).
    for (size_t i = 0; i < n; ++i) residual_[i] += data[i];
    index_.resize(k_);
    value_.resize(k_);
    half_.resize(k_);
    topk_select(residual_.data(), n, k_, index_.data(), value_.data(), scratch_.data());
    // Wire block of a rank: the k indices Elias-Fano coded, then k fp16 values.
    send_.resize(block_bytes());
    fp16_encode(value_.data(), k_, half_.data());
    fp16_decode(half_.data(), k_, value_.data());
    index_encode(index_.data(), k_, n, send_.data());
    std::memcpy(send_.data() + index_bytes(), half_.data(), 2 * k_);
    for (size_t j = 0; j < k_; ++j) residual_[index_[j]] -= value_[j];
    receive_.resize(block_bytes() * ranks_);
    int bytes = static_cast<int>(block_bytes());
    check_mpi(
        MPI_Iallgather(send_.data(), bytes, MPI_BYTE, receive_.data(), bytes, MPI_BYTE, comm_, &request_),
        "top-k all-gather");
  }

  bool poll() override {
    if (!done(request_, "top-k all-gather")) return false;
    std::fill(data_, data_ + bucket_.count, 0.0f);
    for (int r = 0; r < ranks_; ++r) {  // rank order: identical on all ranks
      const uint8_t* block = receive_.data() + r * block_bytes();
      if (!index_decode(block, k_, bucket_.count, index_.data())) {
        fail("top-k: rank {}'s block does not hold {} increasing indices below {}", r, k_, bucket_.count);
      }
      std::memcpy(half_.data(), block + index_bytes(), 2 * k_);  // not 2-byte aligned
      fp16_decode(half_.data(), k_, value_.data());
      for (size_t j = 0; j < k_; ++j) data_[index_[j]] += value_[j];
    }
    scale(data_, bucket_.count, 1.0f / ranks_);
    return true;
  }

  std::vector<float> save_state() const override { return residual_; }
  void load_state(const std::vector<float>& state) override {
    if (state.size() != residual_.size()) {
      fail("{} state has {} floats; this bucket's residual needs {}", name(), state.size(), residual_.size());
    }
    residual_ = state;
  }

 private:
  size_t index_bytes() const { return index_code_bytes(bucket_.count, k_); }
  size_t block_bytes() const { return topk_block_bytes(bucket_.count, k_); }

  size_t k_ = 0;
  std::vector<float> residual_, scratch_, value_;
  std::vector<uint32_t> index_;
  std::vector<uint16_t> half_;
  std::vector<uint8_t> send_, receive_;
};

}  // namespace

std::unique_ptr<Codec> make_topk_codec(const CodecSpec& spec, const GradRange& bucket, MPI_Comm comm,
                                       const CodecOptions& options) {
  return std::make_unique<TopKCodec>(spec, bucket, comm, options);
}

}  // namespace triad::comm
