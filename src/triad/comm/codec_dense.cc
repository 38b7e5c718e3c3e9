#include "triad/comm/codec_internal.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "triad/comm/pieces.h"

namespace triad::comm {

namespace {

class NoneCodec : public FlatCodec {
 public:
  using FlatCodec::FlatCodec;

  void start(float* data, int64_t) override {
    data_ = data;
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(bucket_.count), MPI_FLOAT, MPI_SUM, comm_,
                             &request_),
              "gradient all-reduce");
  }

  bool poll() override {
    if (!done(request_, "gradient all-reduce")) return false;
    scale(data_, bucket_.count, 1.0f / ranks_);
    return true;
  }
};

// ---------------------------------------------------------------------------------------------------------

class QuantizedCodec : public FlatCodec {
 public:
  QuantizedCodec(const CodecSpec& spec, const GradRange& bucket, MPI_Comm comm, const CodecOptions& options,
                 int tag)
      : FlatCodec(spec, bucket, comm, options),
        encoding_{spec.kind, options, tag, me_},
        layout_(spec.kind == CodecKind::kInt8, bucket.count, ranks_, options.int8_chunk),
        send_(ranks_ * layout_.slot_bytes),
        receive_(ranks_ * layout_.slot_bytes),
        mean_(layout_.shard) {}

  void start(float* data, int64_t step) override {
    data_ = data;
    step_ = step;
    for (int r = 0; r < ranks_; ++r)
      encoding_.encode(data + begin(r), length(r), &send_[r * layout_.slot_bytes], step, 1, r);
    exchange_.start_alltoall(send_.data(), receive_.data(), layout_.slot_bytes, comm_, "gradient all-to-all");
    phase_ = 1;
  }

  bool poll() override {
    if (!exchange_.test("quantized gradient exchange")) return false;
    if (phase_ == 1) {
      // This rank owns shard me_: sum every rank's copy in rank order, encode the mean once, share it.
      std::fill(mean_.begin(), mean_.end(), 0.0f);
      for (int r = 0; r < ranks_; ++r)
        encoding_.decode(&receive_[r * layout_.slot_bytes], length(me_), mean_.data(), true);
      scale(mean_.data(), length(me_), 1.0f / ranks_);
      encoding_.encode(mean_.data(), length(me_), send_.data(), step_, 2, me_);
      exchange_.start_allgather(send_.data(), receive_.data(), layout_.slot_bytes, comm_,
                                "gradient all-gather");
      phase_ = 2;
      return false;
    }
    for (int r = 0; r < ranks_; ++r)
      encoding_.decode(&receive_[r * layout_.slot_bytes], length(r), data_ + begin(r), false);
    return true;
  }

 private:
  size_t begin(int r) const { return std::min(bucket_.count, r * layout_.shard); }
  size_t length(int r) const { return std::min(bucket_.count, (r + 1) * layout_.shard) - begin(r); }

  Encoding encoding_;
  QuantizedLayout layout_;
  std::vector<uint8_t> send_, receive_;
  std::vector<float> mean_;
  PiecedCollective exchange_;  // a bucket's slots can be megabytes (the embedding's): sent in pieces
  int64_t step_ = 0;
  int phase_ = 0;
};

}  // namespace

std::unique_ptr<Codec> make_dense_codec(const CodecSpec& spec, const GradRange& bucket, MPI_Comm comm,
                                        const CodecOptions& options, int tag) {
  if (spec.kind == CodecKind::kNone) return std::make_unique<NoneCodec>(spec, bucket, comm, options);
  return std::make_unique<QuantizedCodec>(spec, bucket, comm, options, tag);
}

}  // namespace triad::comm
