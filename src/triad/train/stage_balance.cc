#include "triad/train/stage_balance.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "triad/comm/collectives.h"
#include "triad/core/clock.h"
#include "triad/core/error.h"
#include "triad/core/rng.h"
#include "triad/model/gpt.h"
#include "triad/parallel/balance.h"
#include "triad/parallel/layout.h"
#include "triad/parallel/pipeline_schedule.h"

namespace triad {

namespace {

// Tests make a rank look slow without being slow: TRIAD_TEST_SLOW_RANK=R:F gives every rank a block time
// of 1 ms and world rank R F times that, so the split is the same on any machine however loaded (the same
// variable models data-parallel speeds in the trainer). 0 (measure) when unset.
double test_block_seconds(int rank) {
  const char* spec = std::getenv("TRIAD_TEST_SLOW_RANK");
  if (!spec || !*spec) return 0;
  int slow = -1;
  double factor = 0;
  if (std::sscanf(spec, "%d:%lf", &slow, &factor) != 2 || !(factor > 0))
    fail_usage("TRIAD_TEST_SLOW_RANK={} is not RANK:FACTOR", spec);
  return rank == slow ? 1e-3 * factor : 1e-3;
}

}  // namespace

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

bool balances_stages(const TrainOptions& o) {
  return o.pipeline_parallel > 1 && o.pipeline_split.empty() &&
         parallel::parse_balance(o.balance) == parallel::BalanceMode::kStatic;
}

std::string measured_pipeline_split(comm::Context& context, const TrainOptions& o, std::string* said) {
  const parallel::Layout layout =
      parallel::Layout::of(context.world(), o.tensor_parallel, o.pipeline_parallel);
  const parallel::Coordinates at = parallel::coordinates(layout, context.rank());
  const double test = test_block_seconds(context.rank());
  const double mine = test > 0 ? test : time_one_block(o, context.world());
  // Each stage's slowest rank: a max over the ranks, each writing its own stage's entry.
  std::vector<float> stage_seconds(static_cast<size_t>(layout.pipeline), 0.0f);
  stage_seconds[at.pipeline] = static_cast<float>(mine);
  comm::allreduce_max(context, stage_seconds.data(), stage_seconds.size(), "sharing the stages' block times");
  std::vector<double> speed;
  for (float s : stage_seconds) speed.push_back(1.0 / std::max(s, 1e-9f));
  const std::vector<int> first =
      parallel::balanced_split(o.model.layers, speed, parallel::model_head_blocks(o.model));
  std::string split, times;
  for (size_t s = 0; s + 1 < first.size(); ++s) {
    split += fmt::format("{}{}", s ? "," : "", first[s + 1] - first[s]);
    times += fmt::format("{}{:.2f}", s ? ", " : "", 1e3 * stage_seconds[s]);
  }
  *said =
      fmt::format("--balance static: one block takes {} ms on the stages' slowest ranks; blocks per stage {}",
                  times, split);
  return split;
}

}  // namespace triad
