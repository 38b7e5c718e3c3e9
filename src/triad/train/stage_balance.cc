#include "triad/train/stage_balance.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "triad/comm/collectives.h"
#include "triad/comm/placement.h"
#include "triad/core/clock.h"
#include "triad/core/error.h"
#include "triad/core/log.h"
#include "triad/core/rng.h"
#include "triad/model/gpt.h"
#include "triad/parallel/balance.h"
#include "triad/parallel/layout.h"
#include "triad/parallel/pipeline_schedule.h"
#include "triad/train/checkpoint.h"
#include "triad/train/trainer_impl.h"

namespace triad {

// (The same variable models data-parallel speeds in the trainer, rank_totals.h.)
double test_block_seconds(int rank) {
  const char* spec = std::getenv("TRIAD_TEST_SLOW_RANK");
  if (!spec || !*spec) return 0;
  int slow = -1;
  double factor = 0;
  if (std::sscanf(spec, "%d:%lf", &slow, &factor) != 2 || !(factor > 0))
    fail_usage("TRIAD_TEST_SLOW_RANK={} is not RANK:FACTOR", spec);
  return rank == slow ? 1e-3 * factor : 1e-3;
}

double time_one_block(const TrainOptions& o, int world) {
  const GptConfig& config = o.model;
  const int B = o.micro_batch(world), T = config.seq_len, C = config.d_model;
  Gpt<float> block(config, ModelShard{.blocks = 1, .embedding = false, .head = false});
  block.init_weights(o.seed);
  Rng rng(o.seed);
  std::vector<int32_t> tokens(static_cast<size_t>(B) * T,
                              0);  // only their count matters without an embedding
  std::vector<float> input(static_cast<size_t>(B) * T * C), output_grad(input.size());
  for (float& x : input) x = static_cast<float>(rng.normal());
  for (float& x : output_grad) x = static_cast<float>(rng.normal() * 1e-3);
  std::vector<double> seconds;
  for (int pass = 0; pass < 4; ++pass) {
    const auto start = Clock::now();
    block.forward(tokens.data(), nullptr, B, T, Gpt<float>::Pass::kTrain, input.data());
    block.backward(1.0f, nullptr, output_grad.data());
    if (pass > 0) seconds.push_back(seconds_since(start));
  }
  std::sort(seconds.begin(), seconds.end());
  return seconds[1];
}

parallel::StageSharing stage_sharing(comm::Context& context, const TrainOptions& o) {
  const parallel::Layout layout =
      parallel::Layout::of(context.world(), o.tensor_parallel, o.pipeline_parallel);
  parallel::StageSharing sharing{.schedule = parallel::parse_pipeline_schedule(o.pipeline_schedule),
                                 .micro_batches = o.grad_accum};
  for (int s = 0; s < layout.pipeline; ++s) sharing.stage_ranks.push_back(parallel::stage_ranks(layout, s));
  comm::Topology where{.world = context.world()};
  comm::place_ranks(context, where);
  sharing.shares = parallel::cpu_shares(where);
  return sharing;
}

bool balances_stages(const TrainOptions& o) {
  return o.pipeline_parallel > 1 && o.pipeline_split.empty() &&
         parallel::parse_balance(o.balance) != parallel::BalanceMode::kNone;
}

std::string measured_pipeline_split(comm::Context& context, const TrainOptions& o, std::string* said) {
  const parallel::Layout layout =
      parallel::Layout::of(context.world(), o.tensor_parallel, o.pipeline_parallel);
  const parallel::Coordinates at = parallel::coordinates(layout, context.rank());
  const double test = test_block_seconds(context.rank());
  const parallel::StageSharing sharing = test > 0 ? parallel::StageSharing{} : stage_sharing(context, o);
  // Ranks that share CPUs time their block in turns, the others of their group waiting, so that each reads
  // a core's speed (timed at once, each would read its share of one only as far as they overlapped).
  size_t turn = 0, turns = 1;
  for (const parallel::CpuShare& g : sharing.shares) {
    turns = std::max(turns, g.ranks.size());
    if (auto me = std::find(g.ranks.begin(), g.ranks.end(), context.rank()); me != g.ranks.end())
      turn = static_cast<size_t>(me - g.ranks.begin());
  }
  double mine = test;
  for (size_t t = 0; t < turns && test == 0; ++t) {
    if (t == turn) mine = time_one_block(o, context.world());
    if (turns > 1) comm::barrier(context, "--balance: timing one block in turns on shared CPUs");
  }
  // Each stage's slowest rank: a max over the ranks, each writing its own stage's entry.
  std::vector<float> stage_seconds(static_cast<size_t>(layout.pipeline), 0.0f);
  stage_seconds[at.pipeline] = static_cast<float>(mine);
  comm::allreduce_max(context, stage_seconds.data(), stage_seconds.size(), "sharing the stages' block times");
  const double head = parallel::model_head_blocks(o.model);
  std::vector<int> blocks;
  if (sharing.shares.empty()) {
    std::vector<double> speed;
    for (float s : stage_seconds) speed.push_back(1.0 / std::max(s, 1e-9f));
    blocks = parallel::stage_counts(parallel::balanced_split(o.model.layers, speed, head));
  } else {
    blocks = parallel::fastest_simulated_split(
        sharing, parallel::stage_counts(parallel::split_blocks(o.model.layers, layout.pipeline, "")),
        std::vector<double>(stage_seconds.begin(), stage_seconds.end()), head);
  }
  std::string times;
  for (size_t s = 0; s < blocks.size(); ++s)
    times += fmt::format("{}{:.2f}", s ? ", " : "", 1e3 * stage_seconds[s]);
  const std::string split = fmt::format("{}", fmt::join(blocks, ","));
  *said =
      fmt::format("--balance {}: one block takes {} ms on the stages' slowest ranks{}; blocks per stage {}",
                  o.balance, times, sharing.shares.empty() ? "" : " at a core's speed", split);
  for (const parallel::CpuShare& g : sharing.shares)
    *said += fmt::format(" ({}: the step simulated with them taking turns)", parallel::describe(g));
  return split;
}

// Each stage's busy seconds in the step, the same on every rank: a stage's slowest copy (its data- and
// tensor-parallel ranks measure their own). Under TRIAD_TEST_SLOW_RANK, the model machine's block times
// times the stage's work instead.
void Trainer::observe_stages(StepRecord* record) {
  Impl& s = *impl_;
  const int stages = s.layout.pipeline, me = s.at.pipeline;
  const std::vector<int> blocks = s.stage_blocks();
  record->pipeline->blocks = blocks;
  record->pipeline->moved_ms = std::exchange(s.moved_ms, 0.0);
  if (!s.stages) return;
  // Each stage's busy seconds, then the step's.
  std::vector<float> busy(static_cast<size_t>(stages) + 1, 0.0f);
  const double test = s.test_block;
  const double work = parallel::stage_work(blocks, me, parallel::model_head_blocks(options_.model));
  busy[me] = static_cast<float>(test > 0 ? test * work : 1e-3 * record->pipeline->stage_busy_ms[me]);
  busy[stages] = static_cast<float>(test > 0 ? busy[me] : 1e-3 * record->step_ms);
  comm::allreduce_max(s.comm, busy.data(), busy.size(), "--balance online: sharing the stages' times");
  s.move_to = s.stages->observe(std::vector<double>(busy.begin(), busy.end() - 1), busy[stages]);
  for (double seconds : s.stages->block_seconds()) record->pipeline->block_ms.push_back(1e3 * seconds);
}

// Blocks move with their weights and AdamW moments by way of a checkpoint of this step: every rank's part
// gathered and written as at any checkpoint, with the new split in the run's options; then the step's parts
// are rebuilt at that split and each rank loads its stage's tensors from the checkpoint, as a resume at
// another split does. Whole tensors move, so the run goes on bit for bit as it would have at the old split
// (to float reassociation in the pipeline's sums); a crash in between leaves a complete checkpoint.
void Trainer::move_stages() {
  comm::Context& context = impl_->comm;
  const std::vector<int> blocks = std::move(impl_->move_to);
  const std::vector<double> speeds = impl_->stages->speeds();
  const std::string from = options_.pipeline_split;
  options_.pipeline_split = fmt::format("{}", fmt::join(blocks, ","));
  std::string said = fmt::format("the stages ran {:.1f} blocks/s", fmt::join(speeds, ", "));
  if (const std::vector<double>& at_a_core = impl_->stages->block_seconds(); !at_a_core.empty()) {
    std::vector<double> ms;
    for (double s : at_a_core) ms.push_back(1e3 * s);
    said += fmt::format(
        " (a block and micro-batch at a core's speed {:.1f} ms, as their turns on shared CPUs "
        "are simulated)",
        fmt::join(ms, ", "));
  }
  log_info("--balance online: {}; moving blocks {} -> {} at step {}", said,
           from.empty() ? "(default split)" : from, options_.pipeline_split, state_.step);
  const Clock::time_point moving = Clock::now();
  checkpoint();
  comm::barrier(context, "waiting for rank 0 to write the checkpoint the blocks move by");
  const std::string dir = checkpoint_dir(run_dir(), state_.step);
  const CheckpointManifest manifest = read_checkpoint_manifest(dir);

  std::unique_ptr<Teacher> teacher = std::move(impl_->teacher);
  const Clock::time_point started = impl_->started;
  const EnergyMeter energy = impl_->energy;
  impl_.reset();  // the old stage's model and buffers go before the new ones come
  impl_ = std::make_unique<Impl>(context, options_);
  Impl& s = *impl_;
  s.teacher = std::move(teacher);
  s.started = started;
  s.energy = energy;
  open_data();
  restore(dir, manifest);
  s.moved_ms = 1e3 * seconds_since(moving);
  log_info("--balance online: blocks moved in {:.2f} s (through {})", 1e-3 * s.moved_ms, dir);
}

}  // namespace triad
