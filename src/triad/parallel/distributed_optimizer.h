#pragma once
// Everything distribution does to a step after the forward: one object owns the averaging of gradients
// over the data-parallel ranks, bucket by bucket with their codecs (comm/grad_sync.h), the per-rank
// clipping that error-feedback codecs need, the gradient norm and clip, the AdamW step on the parameters
// this rank owns (all of them, or its ZeRO-1 shard), the parameter gather, and the state a checkpoint keeps
// of all that — so the trainer never asks which codec runs or whether the state is sharded. (Megatron's
// DistributedOptimizer and llm.c's zero.cuh play this part.)
//
//   DistributedOptimizer opt(context, model, options);   // collective, like every call below but hook()
//   each step, after the forward and backward of K micro-batches, the last one with the hook:
//     model.backward(scale, opt.hook());    // hands each bucket over as soon as its blocks are done
//     opt.finish_reduction();               // grads: the average over ranks (ZeRO-1: this rank's shard)
//     double norm = opt.grad_norm();
//     opt.step(lr, norm);                   // clip to options.clip, AdamW, ZeRO-1 gather
//
// In one process it makes no MPI call and the gradients stay as they are. Its ranks are the data-parallel
// group of the job's layout (parallel/layout.h). Under model parallelism it also adds the two pipeline end
// stages' gradients of the tied embedding (before the data-parallel reduction of their buckets) and sums
// the gradient norm over the ranks holding the other parts of the model, counting replicated tensors once.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "triad/comm/context.h"
#include "triad/comm/grad_sync.h"
#include "triad/comm/options.h"
#include "triad/model/gpt.h"
#include "triad/model/optimizer.h"

namespace triad::parallel {

struct DistributedOptimizerOptions {
  AdamWConfig adamw;
  double clip = 1.0;  // global gradient-norm clip (0: none, as under DP-SGD, which clips each example)
  // The parameters whose gradients travel top-K take their own AdamW β1 and learning-rate factor: error
  // feedback already carries each gradient over steps, and momentum on top delays it further.
  float topk_beta1 = 0.5f, topk_lr_scale = 0.67f;
  comm::CommOptions comm;
  uint64_t seed = 0;  // rounding noise of stochastic codecs, PowerSGD's first factor
  // --optimizer-states: fp32 or 8-bit moments (model/optimizer.h). Under ZeRO-1 with 8-bit, shards end at
  // quantization blocks, so each block has one owner.
  StatePrecision states = StatePrecision::kFp32;
};

// What a checkpoint keeps of the optimizer and the reduction.
struct OptimizerState {
  StatePrecision states = StatePrecision::kFp32;  // which of the two below hold AdamW's moments
  // fp32: the moments over the whole flat buffer; 8-bit: those of the tensors that keep fp32 state
  // (keeps_fp32_state()), one after the other in the order of the flat buffer
  std::vector<float> m, v;
  // 8-bit: the moments as they are held, codes over the whole flat buffer and one absmax per block of
  // quantization_boundaries(layout, 0, count) (model/quantized_state.h)
  QuantizedMoment m8, v8;
  int adam_steps = 0;
  int world = 1;           // ranks of the reduction that saved it
  int64_t sync_steps = 0;  // reductions finished (the top-K warm-up and rounding-noise clock)
  // residuals[r][b]: rank r's codec state of bucket b (empty for stateless codecs). state() gathers every
  // rank's on rank 0; load() reads only its own rank's entry.
  std::vector<std::vector<std::vector<float>>> residuals;
  std::string codec;  // --grad-compression of the run that saved it
};

// One step's communication, for the step record.
struct ReductionStats {
  int ranks = 1;
  uint64_t bytes_sent = 0;  // this rank's, parameter gather included
  double comm_ms = 0;
  double comm_hidden_fraction = 1;
  std::string codec;
};

class DistributedOptimizer {
 public:
  // `data`: the data-parallel group; `model_group`: the tensor x pipeline ranks of one model copy;
  // `tied`: the first and last pipeline stages (nullptr elsewhere and without pipeline parallelism).
  DistributedOptimizer(comm::Context& data, Gpt<float>& model, const DistributedOptimizerOptions& options,
                       comm::Context* model_group = nullptr, comm::Context* tied = nullptr);
  ~DistributedOptimizer();

  // For the backward of the last micro-batch of a step: hands each bucket to the reduction as its blocks
  // finish (buckets with error feedback wait for finish_reduction()).
  Gpt<float>::BlockDone hook();
  // Sends what the backward did not (error-feedback buckets clipped by this rank's gradient norm first) and
  // waits for all: afterwards the gradients hold the average (ZeRO-1: in this rank's shard).
  void finish_reduction();
  // The norm of the averaged gradient.
  double grad_norm();
  // Clips to options.clip by `norm`, updates the owned parameters, and gathers them under ZeRO-1.
  void step(float lr, double norm);

  const ReductionStats& stats() const { return stats_; }
  uint64_t state_bytes() const;
  // Without ZeRO-1, the AdamW of the whole flat buffer, for the fused update (train/fused_update.h), which
  // steps it block by block in the backward instead of step().
  AdamW& adamw() { return optimizers_.front(); }
  // "2 ranks x 8 sequences, 3 buckets of gradients, --grad-compression none, ZeRO-1: ..." for the log.
  std::string describe(int sequences_per_rank) const;

  // The whole state, this rank's moments gathered with every other rank's (a copy: 8 or 2 bytes per
  // parameter more while it lives).
  OptimizerState state();
  // Calls `use` with the whole state without a copy where this rank holds all of it (no ZeRO-1): its own
  // moments are lent for the call (moved out and back) — a checkpoint of the largest model that fits must
  // not need a second optimizer state. Under ZeRO-1, state().
  void with_state(const std::function<void(const OptimizerState&)>& use);
  void load(const OptimizerState& saved, const std::string& where);

 private:
  void on_block_done(int block);
  void add_tied_embedding_gradients();
  // 8-bit: this rank's parts of a moment (AdamW::m8 or v8) into the whole flat buffer's (ZeRO-1: gathered
  // from every rank).
  void gather_quantized(QuantizedMoment& (AdamW::*part)(), QuantizedMoment* whole);
  // Where the fp32 moment of flat-buffer `offset` sits in the whole state's m and v: the offset itself, or
  // under 8-bit the count of fp32-state values before it (OptimizerState).
  size_t fp32_moment_at(size_t offset) const;
  // The step counters and every rank's gradient codec state (collective: gathered on rank 0).
  void add_counters_and_codec_state(OptimizerState* s);

  comm::Context& context_;
  comm::Context* model_group_;  // nullptr or a group of one: the whole model is here
  comm::Context* tied_;
  Gpt<float>& model_;
  DistributedOptimizerOptions options_;
  comm::BucketPlan buckets_;
  std::unique_ptr<comm::GradSync> sync_;
  bool sharded_ = false;  // ZeRO-1 over more than one rank
  // Over the ranges of the flat buffer this rank updates: one over everything, or under ZeRO-1 one per
  // bucket's part (comm::ShardLayout).
  std::vector<AdamW> optimizers_;
  std::vector<size_t> all_blocks_;  // 8-bit: the quantization blocks of the whole flat buffer
  // Per bucket: its codec keeps error feedback, so it is sent after the backward, clipped by this rank's
  // own gradient norm (what error feedback holds back would escape the clipping of the average).
  std::vector<char> clip_first_;
  bool any_clip_first_ = false;
  // Per bucket: it holds the tied embedding, whose gradient the end stages add first (after every backward,
  // so that no stage waits on another mid-pipeline).
  std::vector<char> tied_bucket_;
  std::vector<char> counted_;  // per bucket: its Σ g² is in local_sq_ (before the reduction overwrote it)
  double local_sq_ = 0;
  int topk_buckets_ = 0;
  ReductionStats stats_;
};

}  // namespace triad::parallel
