#pragma once
// Pipeline parallelism as data: which blocks each stage holds, and the order in which each stage runs the
// forwards and backwards of a step's micro-batches. Pure functions; the runner that moves activations
// between stages reads these.
//
// Micro-batch i's forward on stage s needs stage s-1's forward of i; its backward needs stage s+1's
// backward of i. Two schedules, both flushing at the end of each step (so the step is the same SGD step as
// one process's, with gradients accumulated over the micro-batches):
//
//   GPipe (Huang et al. 2019)       every stage: F0 F1 ... F(m-1), then B0 B1 ... B(m-1)
//   1F1B (PipeDream-Flush; the      stage s: min(p-s-1, m) warm-up forwards, then one forward, one backward
//   Megatron-LM default)            (steady state), then the remaining backwards (cool-down)
//
// With p stages of equal speed both take (m + p - 1)(t_f + t_b) for a step, idle (p-1)/(m+p-1) of it (the
// bubble); 1F1B keeps activations of at most p - s micro-batches on stage s instead of all m.
//
// The runner (train/pipeline_batches.h) does, per op, on stage s:
//
//   Forward i:   receive the activation from s-1 (s > 0), compute, send it to s+1 (s < p-1)
//   Backward i:  receive the gradient from s+1 (s < p-1), compute, send it to s-1 (s > 0)
//
// Under rendezvous (a send completes only once its receive is posted) with blocking sends, 1F1B would
// deadlock for every p, m >= 2: stage p-2 runs F0 F1 B0 ..., stage p-1 F0 B0 F1 ...; after F0 both send
// (F1's activation, B0's gradient) and neither receives. Megatron-LM pairs such a send with the next
// receive (send_forward_recv_backward); triad's runner starts its sends and completes them at the end of
// the step, so only receives block and they follow the schedule's dependencies. The tests simulate both.

#include <string>
#include <vector>

#include "triad/model/config.h"

namespace triad::parallel {

enum class PipelineSchedule { kOneFOneB, kGPipe };

// "1f1b" or "gpipe" (--pipeline-schedule); anything else is a usage error.
PipelineSchedule parse_pipeline_schedule(const std::string& name);
const char* schedule_name(PipelineSchedule schedule);

struct PipelineOp {
  enum class Kind { kForward, kBackward };
  Kind kind;
  int micro_batch;
  bool operator==(const PipelineOp&) const = default;
};

// The order in which stage `stage` of `stages` runs the forward and the backward of micro-batches
// 0..micro_batches-1: 2 × micro_batches ops.
//
// Both schedules run the backwards in micro-batch order 0..m-1. GPipe could run them m-1..0 in the same
// time, (m+p-1)(t_f+t_b) (its stages must share one order, and when the last stage's forwards end it holds
// every micro-batch's loss, so it can start with any; 0's has been ready longest). In order, gradients
// accumulate in the same order under either schedule, and floating-point sums depend on their order:
// switching schedules leaves a step's gradients the same to the bit.
std::vector<PipelineOp> stage_ops(PipelineSchedule schedule, int stage, int stages, int micro_batches);

// The most micro-batches whose forward has run and whose backward has not, at any point of `ops`: how many
// micro-batches' activations the stage must hold. 1F1B: min(stages - stage, m); GPipe: m.
int max_in_flight(const std::vector<PipelineOp>& ops);

// The idle fraction of a step of a synchronous pipeline of equal stages: (p - 1) / (m + p - 1).
double bubble_fraction(int stages, int micro_batches);

// Stage boundaries over a model's blocks, as the first block of each stage and, last, `layers`: stage s
// holds blocks [first[s], first[s+1]).
//
// `spec` "" splits as evenly as possible, the earlier stages taking one extra block each when `layers` does
// not divide (5 blocks on 2 stages: 3, 2) — the last stage also runs the final LayerNorm, the LM head and
// the loss, whose product with the vocabulary costs several blocks' worth. `spec` "3,1" gives the number
// of blocks of each stage (--pipeline-split): one positive count per stage, adding up to exactly `layers`,
// for no block may be left out. Errors in either are usage errors naming the flag.
std::vector<int> split_blocks(int layers, int stages, const std::string& spec);

// The split of `layers` blocks over stages of relative speeds `stage_speed` (> 0; one per stage) that makes
// the slowest stage fastest: contiguous counts, each at least 1, minimising max_s count_s / speed_s. Among
// splits within 1e-9 (relative) of that, the one with the least sum of squared counts (the most even),
// then the one giving earlier stages more, so equal speeds give split_blocks(layers, stages, ""). An exact
// search (dynamic programming over stages and blocks), in the form of split_blocks.
// `head_blocks`: the final LayerNorm, LM head and loss, which the last stage also runs, in blocks' worth of
// work (model_head_blocks); 0 balances the blocks alone.
std::vector<int> balanced_split(int layers, const std::vector<double>& stage_speed, double head_blocks = 0);

// The LM head's work per token, 2 C V, against a block's, 2 (4 A C + 2 F C) + 2 T A (its four linear layers
// and causal attention; A the attention width, F the MLP width: 24 C² + 2 T C for GPT-2's shape), in
// blocks: with a large vocabulary the last stage takes fewer blocks.
inline double model_head_blocks(const GptConfig& model) {
  const double C = model.d_model, A = model.attention_width(), F = model.mlp();
  return C * model.vocab / (4 * A * C + 2 * F * C + model.seq_len * A);
}

// Blocks per stage from the first block of each stage, then --layers (split_blocks, balanced_split).
inline std::vector<int> stage_counts(const std::vector<int>& first) {
  std::vector<int> counts;
  for (size_t s = 0; s + 1 < first.size(); ++s) counts.push_back(first[s + 1] - first[s]);
  return counts;
}

// Stage s's work in blocks' worth: its blocks, and on the last stage the head's `head_blocks` too.
inline double stage_work(const std::vector<int>& blocks, size_t s, double head_blocks) {
  return blocks[s] + (s + 1 == blocks.size() ? head_blocks : 0.0);
}

}  // namespace triad::parallel
