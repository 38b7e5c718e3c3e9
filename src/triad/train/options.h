#pragma once
// Everything a training run is a function of, besides the data: saved as RUN/run.json at the start and in
// every checkpoint, read back by --resume. Each option is declared once, in TrainOptions::options()
// (train/options.cc): its flag, help, check and what may change on resume (core/options.h).

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "triad/comm/options.h"
#include "triad/core/options.h"
#include "triad/model/config.h"
#include "triad/remat/options.h"
#include "triad/train/energy.h"

namespace triad {

struct TrainOptions {
  std::string data_dir;  // a `triad prepare` output
  std::string out_dir;   // RUN
  GptConfig model;       // model.vocab comes from the data
  int batch = 16;        // global batch, sequences per optimizer step, over all data-parallel ranks
  int grad_accum = 1;    // micro-batches per step; each holds batch / (ranks * grad_accum) sequences
  int steps = 600;       // total optimizer steps
  double lr = 3e-3;      // peak learning rate
  double min_lr_ratio = 0.1;
  int warmup = 50;
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.95;
  double topk_beta1 = 0.5;                // AdamW's β1 for the parameters whose gradients travel top-K
  double topk_lr_scale = 0.67;            // and their learning-rate factor
  double clip = 1.0;                      // global gradient-norm clip; 0 disables
  std::string optimizer_states = "fp32";  // or "8bit": AdamW's moments block-wise quantized
  bool fused_update = false;              // AdamW per block in the backward (train/fused_update.h)
  std::string memory_limit;               // "20GiB": choose the three above and --activation-memory to fit
  uint64_t seed = 1234;
  int eval_every = 200;
  int eval_batches = 20;
  int ckpt_every = 200;
  int keep_ckpts = 3;
  int log_every = 10;
  int threads = 1;
  // Model parallelism (Tier I, docs/parallel.md): data-parallel ranks = world / (tensor x pipeline).
  std::string layout = "manual";  // "auto": the four below, micro-batches, ZeRO-1 and codec from the planner
  int layout_trials = 0;          // --layout auto: time this many of the planner's best before choosing
  int tensor_parallel = 1;
  int pipeline_parallel = 1;
  std::string pipeline_schedule = "1f1b";  // or "gpipe"
  std::string pipeline_split;              // blocks per stage, "3,1"; empty: balanced by work
  RematOptions remat;                      // --remat, --activation-memory, --replan-every
  comm::CommOptions comm;                  // data parallelism: --grad-compression, --bucket-mb, --zero, ...
  std::string balance = "none";            // static, online: data-parallel rows by speed (balance.h)
  double balance_gamma = 8;                // --balance online: γ of the sigmoid gain (Eq. 6)
  std::string sample_prompt = "The";       // printed with a generated continuation at the end; empty: none
  int sample_tokens = 48;
  // DP-SGD (train/dp_sgd.h): on when dp_noise > 0; then batch is the expected Poisson batch.
  double dp_noise = 0;   // noise multiplier σ
  double dp_clip = 0;    // per-example clipping norm C
  double dp_delta = 0;   // δ of the reported ε
  EnergyOptions energy;  // how the run's energy is estimated without RAPL, and its CO2 (energy.h)
  // Knowledge distillation (train/teacher.h): on when `teacher` is set.
  std::string teacher;             // a checkpoint, or a run (its newest); recorded as the step_N directory
  std::string teacher_sha256;      // of its model.safetensors: recorded at the start, checked on resume
  double distill_temperature = 2;  // T of the soft targets
  double distill_weight = 0.5;     // A: loss = (1 - A) CE + A T^2 KL

  bool dp() const { return dp_noise > 0; }
  // --topk-warmup of a new run that does not give it: a twelfth of the run (50 steps of the default 600),
  // as DGC warms up over a run's first epochs. 50 took 1-2 points off top-K's val loss at each of three
  // seeds, for 1.5x its bytes (docs/comm.md). A run resumes with the warm-up it started with.
  int64_t default_topk_warmup() const { return steps / 12; }

  // Sequences per micro-batch on each of `world` data-parallel ranks.
  int micro_batch(int world = 1) const { return batch / data_parallel(world) / grad_accum; }
  // The data-parallel ranks of a job of `world` ranks.
  int data_parallel(int world) const { return std::max(1, world / (tensor_parallel * pipeline_parallel)); }
  // Why these options cannot run under tensor or pipeline parallelism, or "" when they can.
  std::string model_parallel_refusal() const;
  // Each option's check, then what holds between options; usage errors naming the flag.
  void validate(int world = 1) const;
  // The first block of each pipeline stage, then --layers (parallel/pipeline_schedule.h).
  std::vector<int> stage_first_blocks() const;

  // The declaration of every option (flags, run.json keys, resume rules).
  static const OptionTable<TrainOptions>& options();
  nlohmann::json to_json() const;
  static TrainOptions from_json(const nlohmann::json& j, const std::string& where);
};

// Learning rate at optimizer step `step` (0-based): linear warm-up to `lr`, then cosine decay to
// lr * min_lr_ratio at the last step.
float learning_rate(const TrainOptions& o, int step);

}  // namespace triad
