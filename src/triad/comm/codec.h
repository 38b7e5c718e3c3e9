#pragma once
// Gradient codecs: how one bucket is averaged over the ranks of a communicator, in what form it travels.
//
//   none           MPI_Iallreduce of the floats
//   fp16           all-to-all of fp16 shards, each owner sums its shard in fp32, all-gather of the fp16 means
//   int8           the same in int8 with a float scale per chunk (optionally stochastic rounding)
//   topk:RATIO     each rank keeps the RATIO largest-magnitude entries of gradient + residual (error
//                  feedback: the rest, and the fp16 rounding of what is sent, stays in the residual),
//                  all-gather of the indices (Elias-Fano coded, ~1.1 bytes each at 1 %) and fp16 values
//   powersgd:RANK  rank-RANK factors P = M Q and Q = M^T P of every matrix with error feedback, all-reduce of
//                  P (with the non-matrix entries) then of Q; Q starts the next step (warm start)
//   auto[:LIST]    per bucket, the codec of LIST (default fp16,int8,topk:0.01,powersgd:4) that the cost
//                  model predicts fastest, if it beats none (see topology.h)
//
// A Codec is a small state machine over non-blocking MPI collectives: start() encodes and posts the first
// collective, poll() advances (decoding, posting the next phase) and returns true once the bucket holds the
// average. Neither blocks, so one progress loop can drive many buckets while the backward computes. Every
// rank ends with bit-identical averages. One instance per bucket keeps that bucket's state.
//
// The specs and what each codec puts on the wire are in codec_spec.h; how fp16 and int8 encode, encoding.h.

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "triad/comm/buckets.h"
#include "triad/comm/codec_spec.h"
#include "triad/comm/encoding.h"

namespace triad::comm {

class Codec {
 public:
  virtual ~Codec() = default;
  virtual std::string name() const = 0;
  // Starts averaging the bucket whose first float is `data`. `step` counts finished steps (top-K warm-up).
  virtual void start(float* data, int64_t step) = 0;
  // Advances without blocking; true once the bucket holds the average. Fails on MPI errors.
  virtual bool poll() = 0;
  // What start(step) puts on the wire.
  virtual std::vector<Transfer> transfers(int64_t step) const = 0;
  // Error-feedback residuals and warm-start factors, for checkpoints (empty for stateless codecs). A state
  // of the wrong size is an error naming the codec.
  virtual std::vector<float> save_state() const { return {}; }
  virtual void load_state(const std::vector<float>& state);
};

// The codec that averages `bucket` over `comm` (duplicate it for this use: its collectives must not
// interleave with others). `spec` must not be auto. `tag` (e.g. the bucket index) varies the rounding noise.
std::unique_ptr<Codec> make_codec(const CodecSpec& spec, const GradRange& bucket, MPI_Comm comm,
                                  const CodecOptions& options, int tag);
// Hierarchical averaging over all ranks: reduce inside the node to its leader, average among the leaders
// with `leader_codec` (null on non-leaders, or when there is one node), broadcast inside the node.
std::unique_ptr<Codec> make_hierarchical(std::unique_ptr<Codec> leader_codec, const GradRange& bucket,
                                         MPI_Comm node_comm, int world, int nodes);
// ZeRO-1: each rank receives the average of its part of the bucket (owner_begin[r] .. owner_begin[r + 1] is
// rank r's part, in floats of the whole buffer): an all-to-all of each owner's part encoded by `spec` (none,
// fp16 or int8), summed by the owner in fp32 (no all-gather).
std::unique_ptr<Codec> make_shard_reduce(const CodecSpec& spec, const GradRange& bucket,
                                         const std::vector<size_t>& owner_begin, MPI_Comm comm,
                                         const CodecOptions& options, int tag);

}  // namespace triad::comm
