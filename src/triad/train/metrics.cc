#include "triad/train/metrics.h"

#include <unistd.h>

#include <filesystem>

#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/format.h"
#include "triad/core/log.h"
#include "triad/train/energy.h"

namespace triad {

MetricsLog::MetricsLog(const std::string& run_dir, int keep_through_step)
    : path_((std::filesystem::path(run_dir) / "metrics.jsonl").string()) {
  if (path_exists(path_)) {
    std::string kept, text = read_file(path_);
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) break;  // a torn last line: drop it
      std::string line = text.substr(start, end - start);
      start = end + 1;
      auto record = nlohmann::json::parse(line, nullptr, false);
      if (record.is_discarded() || record.value("step", 0) > keep_through_step) continue;
      kept += line + "\n";
    }
    if (kept.size() != text.size()) write_file_atomic(path_, kept);
  }
  file_ = std::fopen(path_.c_str(), "a");
  if (!file_) fail("cannot open {}: {}", path_, errno_text());
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::write(const nlohmann::json& record) {
  std::string line = record.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    fail("cannot write {}: {}", path_, errno_text());
  }
}

void MetricsLog::on_checkpoint(Trainer&, const CheckpointInfo&) {
  ::fsync(fileno(file_));
}

void MetricsLog::on_end(Trainer&, const nlohmann::json& summary) {
  if (!summary.contains("energy_j")) return;
  write(end_metrics_record(summary));
  ::fsync(fileno(file_));
}

void ProgressLine::on_start(Trainer& trainer, const nlohmann::json&) {
  const TrainOptions& o = trainer.options();
  log_info("train {}: {}, {} steps of {} x {} tokens, {} threads", trainer.run_dir(), o.model.describe(),
           o.steps, o.batch, o.model.seq_len, o.threads);
}

void ProgressLine::on_step(Trainer& trainer, const StepRecord& r) {
  const double seconds = r.step_ms / 1e3;
  mean_step_seconds_ = mean_step_seconds_ == 0 ? seconds : 0.9 * mean_step_seconds_ + 0.1 * seconds;
  const TrainOptions& o = trainer.options();
  const bool last = r.step == o.steps;
  if (quiet() || !(r.step == 1 || last || (o.log_every > 0 && r.step % o.log_every == 0))) return;
  fmt::print(stderr, "step {:>5}/{} loss {:.4f} lr {:.2e} norm {:.2f} {:.0f} tok/s {:.0f} ms ETA {}\n",
             r.step, o.steps, r.loss, r.lr, r.grad_norm, r.tokens_per_s, r.step_ms,
             format_duration(mean_step_seconds_ * (o.steps - r.step)));
}

void ProgressLine::on_eval(Trainer&, const EvalRecord& r) {
  log_info("eval  step {:>5} val_loss {:.4f} val_ppl {:.2f} ({} tokens)", r.step, r.val_loss, r.val_ppl,
           r.val_tokens);
}

void ProgressLine::on_end(Trainer&, const nlohmann::json& summary) {
  if (summary.value("status", "") != "completed") return;  // a halt says why itself
  log_info("done: {} steps in {}, final loss {:.4f}, checkpoint {}", summary.value("step", 0),
           format_duration(summary.value("seconds", 0.0)), summary.value("loss", 0.0),
           summary.value("checkpoint", ""));
  if (summary.contains("energy_j")) {
    log_info("energy: {}", EnergyReport{.joules = summary.value("energy_j", 0.0),
                                        .source = summary.value("energy_source", "estimate"),
                                        .co2_g = summary.value("co2_g", 0.0)}
                               .describe());
  }
}

}  // namespace triad
