#pragma once
// The training loop. One optimizer step, as data:
//
//   sampler -> (B / world) windows of T + 1 tokens -> K micro-batches of B / K:
//       forward -> loss; backward -> gradients accumulate (scaled by 1 / (B T): the mean over the global
//       batch)
//   -> global-norm clip -> AdamW (lr from warm-up + cosine) -> step record -> observers
//
// Observers (metrics log, audit log, policy engine, ...) subscribe to run events instead of being called
// from inside the loop; any of them may ask the trainer to halt. Under mpirun every rank runs a Trainer
// over its B / world sequences of each batch; only rank 0 writes the run directory and has observers.

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "triad/comm/options.h"
#include "triad/train/checkpoint.h"
#include "triad/train/options.h"

namespace triad {

class Trainer;
class RdpAccountant;

class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  virtual void on_start(Trainer&, const nlohmann::json& /*run*/) {}
  virtual void on_step(Trainer&, const nlohmann::json& /*record*/) {}
  virtual void on_eval(Trainer&, const nlohmann::json& /*record*/) {}
  virtual void on_checkpoint(Trainer&, const CheckpointInfo& /*info*/) {}
  virtual void on_end(Trainer&, const nlohmann::json& /*summary*/) {}
};

struct ResumeRequest {
  std::string run_dir;
  int steps = 0;  // new total; 0 keeps the run's own
  // Flags given on the command line with --resume, to check against the run (name -> value as JSON).
  nlohmann::json overrides = nlohmann::json::object();
};

class Trainer {
 public:
  // A new run in options.out_dir (which must be absent or empty unless `force`).
  static std::unique_ptr<Trainer> start(const TrainOptions& options, bool force);
  // Continues a run from its newest checkpoint. `how` gives the communication settings that may differ
  // from the run's (--comm-timeout, --comm-progress, --poll-us, --topology, --ranks-per-node).
  static std::unique_ptr<Trainer> resume(const ResumeRequest& request, const comm::CommOptions& how = {});
  ~Trainer();

  void add_observer(std::unique_ptr<TrainObserver> observer);
  // Trains to options().steps; returns the process exit code (0, or 3 when an observer halted the run).
  int run();
  // Called by observers: stop after the current step, saving a checkpoint first.
  void request_halt(const std::string& reason);

  const TrainOptions& options() const { return options_; }
  const std::string& run_dir() const { return options_.out_dir; }
  int step() const { return state_.step; }
  // Rank 0 of a data-parallel job (or the only process): the one that writes the run directory.
  bool is_root() const;
  // The DP-SGD privacy ledger (--dp-noise), or nullptr.
  const RdpAccountant* privacy_ledger() const;

 private:
  Trainer(TrainOptions options);
  void open_data();
  void start_remat();
  void start_sync(const CheckpointManifest* resumed, const std::string& resume_dir);
  bool agree_on_halt();
  void train_step();
  void run_eval();
  CheckpointInfo checkpoint();
  void print_sample();
  template <typename F>
  void notify(F&& f);

  TrainOptions options_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  TrainState state_;
  std::vector<std::unique_ptr<TrainObserver>> observers_;
  std::string halt_reason_;
  std::string last_checkpoint_;
};

}  // namespace triad
