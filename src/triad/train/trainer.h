#pragma once
// The training loop. One optimizer step (Trainer::train_step, read top to bottom):
//
//   this rank's gradient of its share of the batch (BatchGradient: K micro-batches of forward and backward,
//   or DP-SGD's examples), handed to the reduction as blocks finish -> the average over the data-parallel
//   ranks -> global-norm clip -> AdamW (lr from warm-up + cosine) on what this rank owns
//   (DistributedOptimizer) -> a StepRecord -> observers
//
// Observers (metrics log, progress line, audit log, policy engine, ...) subscribe to run events instead of
// being called from inside the loop; any of them may ask the trainer to halt. Under mpirun every rank runs
// a Trainer over its B / world sequences of each batch; only rank 0 writes the run directory and has
// observers.

#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "triad/comm/context.h"
#include "triad/train/checkpoint.h"
#include "triad/train/options.h"
#include "triad/train/records.h"

namespace triad {

class Trainer;
class RdpAccountant;
class Teacher;

class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  virtual void on_start(Trainer&, const nlohmann::json& /*run*/) {}
  virtual void on_step(Trainer&, const StepRecord&) {}
  virtual void on_eval(Trainer&, const EvalRecord&) {}
  virtual void on_checkpoint(Trainer&, const CheckpointInfo&) {}
  virtual void on_end(Trainer&, const nlohmann::json& /*summary*/) {}
};

struct ResumeRequest {
  std::string run_dir;
  std::string checkpoint;  // --checkpoint: "step_N" or a path; empty: the newest valid (resume_point.h)
  // The command's options, and the names of those given explicitly (on the command line or in --config):
  // they are checked against the run's or replace them, as each option's declaration says.
  TrainOptions given;
  std::set<std::string> given_names;
};

class Trainer {
 public:
  // A new run in options.out_dir (which must be absent or empty unless `force`). Collective: every rank
  // of `context` calls it.
  static std::unique_ptr<Trainer> start(comm::Context& context, const TrainOptions& options, bool force);
  // Continues a run from its newest valid checkpoint, or the one the request names; refuses a --steps below
  // its step. Checkpoint directories after it are set aside (resume_point.h).
  static std::unique_ptr<Trainer> resume(comm::Context& context, const ResumeRequest& request);
  ~Trainer();

  void add_observer(std::unique_ptr<TrainObserver> observer) { observers_.push_back(std::move(observer)); }
  // Trains to options().steps; returns the process exit code (core/exit_code.h): 0, kExitHalted when an
  // observer halted the run, kExitPreempted when SIGTERM/SIGINT stopped it (stop_signal.h).
  int run();
  // Called by observers: stop after the current step, saving a checkpoint first.
  void request_halt(const std::string& reason) {
    if (halt_reason_.empty()) halt_reason_ = reason;
  }

  const TrainOptions& options() const { return options_; }
  const std::string& run_dir() const { return options_.out_dir; }
  int step() const { return state_.step; }
  // Rank 0 of a data-parallel job (or the only process): the one that writes the run directory.
  bool is_root() const;
  // The DP-SGD privacy ledger (--dp-noise), or nullptr.
  const RdpAccountant* privacy_ledger() const;

 private:
  struct Impl;
  Trainer(comm::Context& context, const TrainOptions& options);
  // --layout auto (layout_trials.cc): the options of the layout to train, and what was predicted and
  // timed in `record` (run.json's "layout_auto"). Collective. The teacher is lent to each trial. `resumed`:
  // among the layouts that keep the run's micro-batches, ZeRO-1 and codec (rank_layouts).
  static TrainOptions choose_layout(comm::Context& context, const TrainOptions& options,
                                    std::unique_ptr<Teacher>* teacher, nlohmann::json* record,
                                    bool resumed = false);
  // Collective: `steps` steps' times in ms (the slowest rank's), after one untimed step, of `options`'
  // layout on a trainer that writes nothing.
  static std::vector<double> time_layout(comm::Context& context, TrainOptions options, int steps,
                                         std::unique_ptr<Teacher>* teacher);
  void open_data();
  void restore(const std::string& dir, const CheckpointManifest& manifest);
  void build_step();
  void train_step();
  bool agree_on_halt();
  int stop_early(const std::string& status, const std::string& reason, int exit_code);
  void run_eval();
  CheckpointInfo checkpoint();
  // --balance online under pipelines (stage_balance.cc): after a step, the stages' times decide whether
  // blocks move; move_stages() moves them by way of a checkpoint of the step.
  void observe_stages(StepRecord* record);
  void move_stages();
  CheckpointInfo write_checkpoint(const float* params, const parallel::OptimizerState& optimizer);
  void print_sample();
  template <typename F>
  void notify(F&& f);

  TrainOptions options_;
  std::unique_ptr<Impl> impl_;
  TrainState state_;
  std::vector<std::unique_ptr<TrainObserver>> observers_;
  std::string halt_reason_;
  bool preempted_ = false;  // a stop signal reached some rank: every rank stops after this step
  std::string last_checkpoint_;
};

}  // namespace triad
