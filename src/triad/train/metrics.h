#pragma once
// The observers that report a run as it goes:
// - MetricsLog, RUN/metrics.jsonl: one JSON object per optimizer step and one per evaluation, the records
//   of train/records.h, and one at the end with the run's wall time, peak memory and energy. Each line is
//   flushed as it is written and the file is fsynced at every checkpoint.
// - ProgressLine, for the person at the terminal: what is trained, a line every --log-every steps (step,
//   loss, lr, gradient norm, tokens/s, ETA), each evaluation, and the end.

#include <cstdio>
#include <string>

#include "triad/train/trainer.h"

namespace triad {

class MetricsLog : public TrainObserver {
 public:
  // Opens the log for appending. Records after `keep_through_step` (written by an interrupted run after its
  // last checkpoint) are dropped first, so a resumed run's log has each step once.
  MetricsLog(const std::string& run_dir, int keep_through_step);
  ~MetricsLog() override;

  void on_step(Trainer&, const StepRecord& record) override { write(record.to_json()); }
  void on_eval(Trainer&, const EvalRecord& record) override { write(record.to_json()); }
  void on_checkpoint(Trainer&, const CheckpointInfo&) override;
  // The end record: wall time, peak memory and energy (train/energy.h), fsynced.
  void on_end(Trainer&, const nlohmann::json& summary) override;
  // One record, flushed (also for runs that are not a Trainer's: `triad classify`).
  void write(const nlohmann::json& record);

 private:
  std::string path_;
  FILE* file_ = nullptr;
};

class ProgressLine : public TrainObserver {
 public:
  void on_start(Trainer& trainer, const nlohmann::json& run) override;
  void on_step(Trainer& trainer, const StepRecord& record) override;
  void on_eval(Trainer& trainer, const EvalRecord& record) override;
  void on_end(Trainer& trainer, const nlohmann::json& summary) override;

 private:
  double mean_step_seconds_ = 0;  // exponential moving average, for the ETA
};

}  // namespace triad
