#include "triad/train/records.h"

#include <functional>
#include <vector>

namespace triad {

namespace {

// A metric: its name, what it means, and its value in a record (null when the record does not carry it).
template <class Record>
struct Field {
  const char* name;
  const char* description;
  std::function<nlohmann::json(const Record&)> value;
};

// Reads an optional part of a record: the field's value when the part is there, null otherwise.
template <class Part, class Get>
auto when(std::optional<Part> StepRecord::*part, Get get) {
  return [part, get](const StepRecord& r) {
    return r.*part ? nlohmann::json(get(*(r.*part))) : nlohmann::json();
  };
}

using Comm = parallel::ReductionStats;
using Remat = RematController::StepReport;
using Privacy = DpSgd::StepReport;

const std::vector<Field<StepRecord>>& step_fields() {
  static const std::vector<Field<StepRecord>> fields = {
      {"step", "optimizer steps completed", [](const StepRecord& r) { return r.step; }},
      {"loss", "mean next-token loss of the step's batch (all ranks; with --teacher the distillation loss)",
       [](const StepRecord& r) { return r.loss; }},
      {"hard_loss", "--teacher: the cross-entropy on the next tokens alone, part of that loss",
       when(&StepRecord::distill, [](const StepRecord::Distill& d) { return d.hard_loss; })},
      {"teacher_ms", "--teacher: time running the teacher in the step (rank 0)",
       when(&StepRecord::distill, [](const StepRecord::Distill& d) { return d.teacher_ms; })},
      {"lr", "learning rate of the step", [](const StepRecord& r) { return r.lr; }},
      {"grad_norm", "L2 norm of the averaged gradient before clipping",
       [](const StepRecord& r) { return r.grad_norm; }},
      {"tokens_per_s", "tokens trained on per second of the step",
       [](const StepRecord& r) { return r.tokens_per_s; }},
      {"step_ms", "wall time of the step", [](const StepRecord& r) { return r.step_ms; }},
      {"peak_activation_bytes", "peak of live activation memory in the step",
       [](const StepRecord& r) { return r.peak_activation_bytes; }},
      {"peak_rss_bytes", "peak resident memory of the process so far",
       [](const StepRecord& r) { return r.peak_rss_bytes; }},
      {"optimizer_bytes", "AdamW state this rank holds",
       [](const StepRecord& r) { return r.optimizer_bytes; }},
      {"ranks", "data-parallel ranks", when(&StepRecord::comm, [](const Comm& c) { return c.ranks; })},
      {"bytes_sent", "bytes this rank sent for the gradient average (and ZeRO-1's gather)",
       when(&StepRecord::comm, [](const Comm& c) { return c.bytes_sent; })},
      {"comm_ms", "time at least one gradient bucket was in flight",
       when(&StepRecord::comm, [](const Comm& c) { return c.comm_ms; })},
      {"comm_hidden_fraction", "share of that time hidden behind the backward",
       when(&StepRecord::comm, [](const Comm& c) { return c.comm_hidden_fraction; })},
      {"codec", "gradient codec (auto: its choices)",
       when(&StepRecord::comm, [](const Comm& c) { return c.codec; })},
      {"predicted_peak_activation_bytes", "the remat plan's predicted activation peak",
       when(&StepRecord::remat, [](const Remat& m) { return m.predicted_peak_bytes; })},
      {"recompute_ms", "time spent recomputing dropped activations",
       when(&StepRecord::remat, [](const Remat& m) { return m.recompute_ms; })},
      {"pipeline_bubble", "share of the pipeline stages' time spent waiting for each other (measured)",
       when(&StepRecord::pipeline, [](const StepRecord::Pipeline& p) { return p.bubble; })},
      {"pipeline_stage_busy_ms", "each pipeline stage's time computing in the step",
       when(&StepRecord::pipeline, [](const StepRecord::Pipeline& p) { return p.stage_busy_ms; })},
      {"pipeline_blocks", "each pipeline stage's blocks in the step (--balance online moves them)",
       when(&StepRecord::pipeline, [](const StepRecord::Pipeline& p) { return p.blocks; })},
      {"pipeline_move_ms",
       "--balance online: time moving blocks between stages before the step, the checkpoint they move by "
       "included (only after a move)",
       when(&StepRecord::pipeline,
            [](const StepRecord::Pipeline& p) {
              return p.moved_ms > 0 ? nlohmann::json(p.moved_ms) : nullptr;
            })},
      {"pipeline_block_ms",
       "--balance online where stages share CPUs: each stage's block and micro-batch at a core's speed, as "
       "fitted to the stages' busy times by simulating their turns (the last estimate)",
       when(&StepRecord::pipeline,
            [](const StepRecord::Pipeline& p) {
              return p.block_ms.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.block_ms);
            })},
      {"pipeline_bubble_predicted", "the synchronous pipeline's idle share, (stages - 1) / (m + stages - 1)",
       when(&StepRecord::pipeline, [](const StepRecord::Pipeline& p) { return p.bubble_predicted; })},
      {"balance_rows", "--balance: rows of the step's batch each data-parallel rank trained",
       when(&StepRecord::balance, [](const StepRecord::Balance& b) { return b.rows; })},
      {"balance_speed", "--balance: each data-parallel rank's rows per second of batch gradient in the step",
       when(&StepRecord::balance, [](const StepRecord::Balance& b) { return b.speed; })},
      {"dp_epsilon", "DP-SGD: epsilon spent so far",
       when(&StepRecord::privacy, [](const Privacy& p) { return p.epsilon; })},
      {"dp_delta", "DP-SGD: delta of that epsilon",
       when(&StepRecord::privacy, [](const Privacy& p) { return p.delta; })},
      {"dp_batch", "DP-SGD: examples in the step's Poisson batch",
       when(&StepRecord::privacy, [](const Privacy& p) { return p.batch; })},
      {"dp_clipped", "DP-SGD: share of them whose gradient was clipped",
       when(&StepRecord::privacy, [](const Privacy& p) { return p.clipped_share; })},
  };
  return fields;
}

const std::vector<Field<EvalRecord>>& eval_fields() {
  static const std::vector<Field<EvalRecord>> fields = {
      {"step", "optimizer steps completed", [](const EvalRecord& r) { return r.step; }},
      {"val_loss", "mean next-token loss on the validation split",
       [](const EvalRecord& r) { return r.val_loss; }},
      {"val_ppl", "validation perplexity, exp(val_loss)", [](const EvalRecord& r) { return r.val_ppl; }},
      {"val_tokens", "validation tokens evaluated", [](const EvalRecord& r) { return r.val_tokens; }},
  };
  return fields;
}

template <class Record>
nlohmann::json serialise(const std::vector<Field<Record>>& fields, const Record& record) {
  nlohmann::json j = nlohmann::json::object();
  for (const Field<Record>& f : fields) {
    nlohmann::json value = f.value(record);
    if (!value.is_null()) j[f.name] = std::move(value);
  }
  return j;
}

}  // namespace

nlohmann::json StepRecord::to_json() const {
  return serialise(step_fields(), *this);
}

nlohmann::json EvalRecord::to_json() const {
  return serialise(eval_fields(), *this);
}

const std::map<std::string, std::string>& metric_fields() {
  static const std::map<std::string, std::string> all = [] {
    std::map<std::string, std::string> m;
    for (const auto& f : step_fields()) m[f.name] = f.description;
    for (const auto& f : eval_fields()) m.emplace(f.name, f.description);
    return m;
  }();
  return all;
}

}  // namespace triad
