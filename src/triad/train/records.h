#pragma once
// What a run reports: a StepRecord per optimizer step and an EvalRecord per evaluation, each a struct with
// one serialiser (RUN/metrics.jsonl and every observer see the same). The fields of both, with what each
// means, are one table (records.cc): to_json() writes from it, metric_fields() lists it for the policy
// engine (a rule on a metric no record carries is refused) and the model card.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "triad/parallel/distributed_optimizer.h"
#include "triad/remat/controller.h"
#include "triad/train/dp_sgd.h"

namespace triad {

struct StepRecord {
  int step = 0;
  double loss = 0;  // mean next-token loss over the step's batch, all ranks (with --teacher: the mixed loss)
  double lr = 0;
  double grad_norm = 0;  // of the averaged gradient, before clipping
  double tokens_per_s = 0;
  double step_ms = 0;
  uint64_t peak_activation_bytes = 0, peak_rss_bytes = 0, optimizer_bytes = 0;
  std::optional<parallel::ReductionStats> comm;      // with more than one rank
  std::optional<RematController::StepReport> remat;  // with --remat or --activation-memory
  std::optional<DpSgd::StepReport> privacy;          // with --dp-noise
  struct Pipeline {
    double bubble = 0;  // 1 - Σ stage busy time / (stages x the batch gradient's time): idle stage time
    double bubble_predicted = 0;        // (p - 1) / (m + p - 1), for equal stages
    std::vector<double> stage_busy_ms;  // per stage, time computing (a slower stage makes the others wait)
    std::vector<int> blocks;            // per stage, its blocks in the step
    double moved_ms = 0;                // --balance online: the blocks' move before the step (0: none)
    std::vector<double> block_ms;       // --balance online, stages sharing CPUs: its model (empty: none)
  };
  std::optional<Pipeline> pipeline;  // with --pipeline-parallel
  struct Balance {
    std::vector<int> rows;      // this step's rows of the global batch per data-parallel rank
    std::vector<double> speed;  // per rank, rows per second of its forward and backward (not the reduction)
  };
  std::optional<Balance> balance;  // with --balance static or online
  struct Distill {
    double hard_loss = 0;   // the cross-entropy part of `loss`, all ranks
    double teacher_ms = 0;  // this rank's time running the teacher in the step
  };
  std::optional<Distill> distill;  // with --teacher

  nlohmann::json to_json() const;
};

struct EvalRecord {
  int step = 0;
  double val_loss = 0;
  double val_ppl = 0;
  uint64_t val_tokens = 0;

  nlohmann::json to_json() const;
};

// Every metric a step or eval record may carry (name -> what it means), "step" included.
const std::map<std::string, std::string>& metric_fields();

}  // namespace triad
