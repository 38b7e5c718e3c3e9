#pragma once
// Private to the codec files of this folder (codec*.cc, encoding.cc): the helpers, wire layout and base
// class they share, and the factory of each codec family that make_codec calls. Include codec.h elsewhere.

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "triad/comm/codec.h"
#include "triad/comm/context.h"

namespace triad::comm {

// Floats in one bucket at most: MPI counts are int, and a float takes up to 8 bytes (top-K pair: 6).
inline constexpr size_t kMaxCount = INT_MAX / 8;

inline size_t ceil_div(size_t a, size_t b) {
  return (a + b - 1) / b;
}
inline size_t round_up(size_t a, size_t b) {
  return ceil_div(a, b) * b;
}

inline int comm_size(MPI_Comm comm) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  return size;
}
inline int comm_rank(MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  return rank;
}

inline bool done(MPI_Request& request, const char* what) {
  int flag = 0;
  check_mpi(MPI_Test(&request, &flag, MPI_STATUS_IGNORE), what);
  return flag != 0;
}

inline void scale(float* x, size_t n, float factor) {
  for (size_t i = 0; i < n; ++i) x[i] *= factor;
}

// Fails when the bucket is too large for one MPI message (kMaxCount floats).
void check_count(const GradRange& bucket);

// Bytes of n values in fp16 or int8 (with its scales), padded to 8 so that slots stay aligned.
size_t quantized_bytes(bool int8, size_t n, size_t chunk);

// fp16 and int8 split the bucket into one shard per rank (whole int8 chunks); each shard travels as a slot
// of slot_bytes (8-byte aligned) in the all-to-all and the all-gather.
struct QuantizedLayout {
  size_t shard, slot_bytes;

  QuantizedLayout(bool int8, size_t count, int ranks, size_t chunk) {
    size_t step = int8 ? chunk : 8;
    shard = round_up(std::max<size_t>(1, ceil_div(count, ranks)), step);
    slot_bytes = quantized_bytes(int8, shard, chunk);
  }
};

// What the flat codecs share: the spec, the bucket, the communicator, the request in flight.
class FlatCodec : public Codec {
 public:
  FlatCodec(const CodecSpec& spec, const GradRange& bucket, MPI_Comm comm, const CodecOptions& options)
      : spec_(spec),
        bucket_(bucket),
        options_(options),
        comm_(comm),
        ranks_(comm_size(comm)),
        me_(comm_rank(comm)) {}

  std::string name() const override { return spec_.name(); }
  std::vector<Transfer> transfers(int64_t step) const override {
    return codec_transfers(spec_, bucket_, ranks_, options_, step);
  }

 protected:
  CodecSpec spec_;
  GradRange bucket_;
  CodecOptions options_;
  MPI_Comm comm_;
  int ranks_, me_;
  float* data_ = nullptr;
  MPI_Request request_ = MPI_REQUEST_NULL;
};

// The flat codecs by family, as make_codec builds them (arguments as there).
std::unique_ptr<Codec> make_dense_codec(const CodecSpec& spec, const GradRange& bucket, MPI_Comm comm,
                                        const CodecOptions& options, int tag);  // none, fp16, int8
std::unique_ptr<Codec> make_topk_codec(const CodecSpec& spec, const GradRange& bucket, MPI_Comm comm,
                                       const CodecOptions& options);
std::unique_ptr<Codec> make_powersgd_codec(const CodecSpec& spec, const GradRange& bucket, MPI_Comm comm,
                                           const CodecOptions& options, int tag);

}  // namespace triad::comm
