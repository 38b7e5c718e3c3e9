#include "triad/comm/codec.h"

#include "triad/comm/codec_internal.h"
#include "triad/core/error.h"

namespace triad::comm {

void check_count(const GradRange& bucket) {
  if (bucket.count > kMaxCount) {
    fail("gradient bucket of {} floats is too large for one MPI message (at most {}); lower --bucket-mb",
         bucket.count, kMaxCount);
  }
}

void Codec::load_state(const std::vector<float>& state) {
  if (!state.empty())
    fail("codec {} keeps no state, but a state of {} floats was given", name(), state.size());
}

std::unique_ptr<Codec> make_codec(const CodecSpec& spec, const GradRange& bucket, MPI_Comm comm,
                                  const CodecOptions& options, int tag) {
  check_count(bucket);
  if (options.int8_chunk == 0) fail_usage("--int8-chunk must be positive");
  switch (spec.kind) {
    case CodecKind::kNone:
    case CodecKind::kFp16:
    case CodecKind::kInt8:
      return make_dense_codec(spec, bucket, comm, options, tag);
    case CodecKind::kTopK:
      return make_topk_codec(spec, bucket, comm, options);
    case CodecKind::kPowerSgd:
      return make_powersgd_codec(spec, bucket, comm, options, tag);
    case CodecKind::kAuto:
      break;
  }
  fail("make_codec: resolve auto to a codec first");
}

}  // namespace triad::comm
