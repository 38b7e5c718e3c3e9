#pragma once
// RUN/metrics.jsonl: one JSON object per optimizer step ({"step", "loss", "lr", "grad_norm", "tokens_per_s",
// "step_ms", "peak_activation_bytes", "peak_rss_bytes", ...}) and one per evaluation ({"step", "val_loss",
// "val_ppl", ...}). Each line is flushed as it is written and the file is fsynced at every checkpoint.

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

  void on_step(Trainer&, const nlohmann::json& record) override { write(record); }
  void on_eval(Trainer&, const nlohmann::json& record) override { write(record); }
  void on_checkpoint(Trainer&, const CheckpointInfo&) override;

 private:
  void write(const nlohmann::json& record);
  std::string path_;
  FILE* file_ = nullptr;
};

}  // namespace triad
