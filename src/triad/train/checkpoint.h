#pragma once
// Checkpoints: RUN/checkpoints/step_N/ holding
//   model.safetensors      the weights, by their public names (docs/checkpoints.md)
//   optimizer.safetensors  AdamW moments "m.<name>", "v.<name>" (under ZeRO-1 gathered from every rank);
//                          with --optimizer-states 8bit as they are held: codes "m8.<name>", "v8.<name>" (U8)
//                          and per block of 2048 "m8_absmax.<name>", "v8_absmax.<name>" (F32)
//   grad_sync.safetensors  data parallel with a stateful codec: each rank's error-feedback residuals,
//                          "rank<r>.bucket<b>" (absent when no rank keeps any)
//   manifest.json          model config, training options, step, sampler position, RNG state, the SHA-256 of
//                          each file, data and tokenizer hashes; under DP-SGD "dp": the secret generator
//                          states and the privacy ledger
// A checkpoint is written into step_N.tmp-PID/ and renamed to step_N/ when complete; the last K are kept.
// Checkpoints that `train --resume` found invalid are moved to RUN/checkpoints/rejected/ (resume_point.h).

#include <array>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "triad/data/sampler.h"
#include "triad/model/gpt.h"
#include "triad/parallel/distributed_optimizer.h"
#include "triad/train/options.h"

namespace triad {

struct TrainState {
  int step = 0;  // optimizer steps completed
  SamplerState sampler;
  std::array<uint64_t, 4> rng{};
  double loss = 0;
  nlohmann::json dp;  // DP-SGD's generators and privacy ledger (train/dp_sgd.h); null without DP-SGD
};

struct CheckpointInfo {
  std::string dir;
  int step = 0;
  std::map<std::string, std::string> sha256;  // file name -> hex digest
};

// Writes step_N/ from the whole model's weights (`params` laid out by `layout`, whole tensors: under model
// parallelism gathered from every part, parallel/model_parallel.h), the options and state, the optimizer's
// state over the same layout and `extra`, merged into the manifest (data and tokenizer hashes).
CheckpointInfo save_checkpoint(const std::string& run_dir, const ParameterLayout& layout, const float* params,
                               const TrainOptions& options, const TrainState& state,
                               const parallel::OptimizerState& optimizer, const nlohmann::json& extra);
// Creates the directory of a new run: absent or empty, or (with `force`) a triad run holding nothing but
// what triad writes, whose contents are then deleted (the directory itself stays: it may be "."). Anything
// else (a file, a directory that is not a run, a run holding other files) is a usage error naming what is
// in the way, and nothing is deleted.
void create_run_dir(const std::string& dir, bool force);
// What create_run_dir would refuse, refused without changing anything: checked before work that comes
// ahead of creating it.
void check_run_dir(const std::string& dir, bool force);
// RUN/checkpoints/step_N, as save_checkpoint names it.
std::string checkpoint_dir(const std::string& run_dir, int step);
// The N of a "step_N" directory name, or -1 for any other name.
int checkpoint_step(const std::string& name);
// The step_N/ directories of a run as (N, path), oldest first, with a manifest or not.
std::vector<std::pair<int, std::string>> checkpoint_dirs(const std::string& run_dir);
// The PID of a "step_N.tmp-PID" directory name (a checkpoint being written by that process), or -1.
long checkpoint_temp_pid(const std::string& name);
// Deletes all but the newest `keep` checkpoints.
void prune_checkpoints(const std::string& run_dir, int keep);
// The newest complete checkpoint directory of a run, or "" when there is none.
std::string latest_checkpoint(const std::string& run_dir);
// A checkpoint directory, or a run directory (meaning its newest checkpoint).
std::string resolve_checkpoint(const std::string& path);

struct CheckpointManifest {
  GptConfig model;
  TrainOptions options;
  TrainState state;
  nlohmann::json json;
};
// Reads and checks manifest.json: its "step" is the N of a step_N directory, and every file it lists still
// has its recorded SHA-256.
CheckpointManifest read_checkpoint_manifest(const std::string& dir);
// Loads the weights (whole tensors; a shard keeps its slices); shapes must match the model.
void load_checkpoint_weights(const std::string& dir, Gpt<float>* model);
// The optimizer's state as rank `rank` needs it: the moments of what `layout` holds and that rank's codec
// state.
parallel::OptimizerState load_optimizer_state(const std::string& dir, const CheckpointManifest& manifest,
                                              const ParameterLayout& layout, int rank);

}  // namespace triad
