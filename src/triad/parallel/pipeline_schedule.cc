#include "triad/parallel/pipeline_schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <string_view>

#include "triad/core/error.h"

namespace triad::parallel {

namespace {

using Kind = PipelineOp::Kind;

void check_stages(int layers, int stages) {
  if (stages < 1) fail_usage("--pipeline-parallel must be at least 1, got {}", stages);
  if (stages > layers) {
    fail_usage(
        "--pipeline-parallel {} is more stages than the model's {} blocks (--layers); each stage needs one",
        stages, layers);
  }
}

// first[s] from per-stage counts.
std::vector<int> firsts(const std::vector<int>& counts) {
  std::vector<int> first(counts.size() + 1, 0);
  for (size_t s = 0; s < counts.size(); ++s) first[s + 1] = first[s] + counts[s];
  return first;
}

// "3,1" → {3, 1}. Spaces around an entry are allowed; an entry that is not a decimal integer is not.
std::vector<int> parse_counts(const std::string& spec) {
  std::vector<int> counts;
  for (size_t begin = 0; begin <= spec.size();) {
    const size_t end = std::min(spec.find(',', begin), spec.size());
    std::string_view entry(spec.data() + begin, end - begin);
    while (!entry.empty() && entry.front() == ' ') entry.remove_prefix(1);
    while (!entry.empty() && entry.back() == ' ') entry.remove_suffix(1);
    int count = 0;
    auto [ptr, ec] = std::from_chars(entry.data(), entry.data() + entry.size(), count);
    if (entry.empty() || ec != std::errc() || ptr != entry.data() + entry.size()) {
      fail_usage("--pipeline-split \"{}\": \"{}\" is not a block count; give one count per stage, like 3,1",
                 spec, entry);
    }
    counts.push_back(count);
    begin = end + 1;
  }
  return counts;
}

}  // namespace

PipelineSchedule parse_pipeline_schedule(const std::string& name) {
  if (name == "1f1b") return PipelineSchedule::kOneFOneB;
  if (name == "gpipe") return PipelineSchedule::kGPipe;
  fail_usage("--pipeline-schedule must be 1f1b or gpipe, got \"{}\"", name);
}

const char* schedule_name(PipelineSchedule schedule) {
  return schedule == PipelineSchedule::kOneFOneB ? "1f1b" : "gpipe";
}

std::vector<PipelineOp> stage_ops(PipelineSchedule schedule, int stage, int stages, int micro_batches) {
  if (stages < 1 || stage < 0 || stage >= stages || micro_batches < 1) {
    fail("internal: stage {} of {} with {} micro-batches", stage, stages, micro_batches);
  }
  const int m = micro_batches;
  std::vector<PipelineOp> ops;
  ops.reserve(2 * static_cast<size_t>(m));
  if (schedule == PipelineSchedule::kGPipe) {
    for (int i = 0; i < m; ++i) ops.push_back({Kind::kForward, i});
    for (int i = 0; i < m; ++i) ops.push_back({Kind::kBackward, i});
    return ops;
  }
  // Stage s starts its first backward once that micro-batch has gone through the p-1-s stages after it and
  // come back: p-1-s forwards fill the time, after which each backward frees room for one more forward.
  const int warmup = std::min(stages - stage - 1, m);
  for (int i = 0; i < warmup; ++i) ops.push_back({Kind::kForward, i});
  for (int i = 0; i < m - warmup; ++i) {
    ops.push_back({Kind::kForward, warmup + i});
    ops.push_back({Kind::kBackward, i});
  }
  for (int i = m - warmup; i < m; ++i) ops.push_back({Kind::kBackward, i});
  return ops;
}

int max_in_flight(const std::vector<PipelineOp>& ops) {
  int in_flight = 0, most = 0;
  for (const PipelineOp& op : ops) {
    in_flight += op.kind == Kind::kForward ? 1 : -1;
    most = std::max(most, in_flight);
  }
  return most;
}

double bubble_fraction(int stages, int micro_batches) {
  return static_cast<double>(stages - 1) / (micro_batches + stages - 1);
}

std::vector<int> split_blocks(int layers, int stages, const std::string& spec) {
  check_stages(layers, stages);
  if (spec.empty()) {
    std::vector<int> counts(static_cast<size_t>(stages), layers / stages);
    for (int s = 0; s < layers % stages; ++s) ++counts[static_cast<size_t>(s)];
    return firsts(counts);
  }
  const std::vector<int> counts = parse_counts(spec);
  if (counts.size() != static_cast<size_t>(stages)) {
    fail_usage("--pipeline-split \"{}\" gives {} block counts for --pipeline-parallel {}; give one per stage",
               spec, counts.size(), stages);
  }
  long long total = 0;
  for (size_t s = 0; s < counts.size(); ++s) {
    if (counts[s] < 1) {
      fail_usage("--pipeline-split \"{}\" gives stage {} {} blocks; each stage needs at least one", spec, s,
                 counts[s]);
    }
    total += counts[s];
  }
  // Other tools drop the blocks a short split leaves out, training a shallower model without a word.
  if (total < layers) {
    fail_usage("--pipeline-split \"{}\" covers {} of {} blocks; every block must belong to a stage", spec,
               total, layers);
  }
  if (total > layers) {
    fail_usage("--pipeline-split \"{}\" asks for {} blocks; the model has {}", spec, total, layers);
  }
  return firsts(counts);
}

std::vector<int> balanced_split(int layers, const std::vector<double>& stage_speed, double head_blocks) {
  const int p = static_cast<int>(stage_speed.size());
  check_stages(layers, p);
  for (int s = 0; s < p; ++s) {
    if (!(stage_speed[s] > 0) || !std::isfinite(stage_speed[s])) {
      fail("stage {} has speed {}; a stage's speed must be a positive number", s, stage_speed[s]);
    }
  }
  // Stage s's time holding c blocks; the last also runs the head.
  auto load = [&](int s, int c) { return (c + (s == p - 1 ? head_blocks : 0.0)) / stage_speed[s]; };
  const size_t n = static_cast<size_t>(layers) + 1;
  // worst[s][r]: the least max count/speed over stages s..p-1 holding r blocks (infinite: impossible).
  const double kInf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> worst(static_cast<size_t>(p) + 1, std::vector<double>(n, kInf));
  worst[p][0] = 0;
  for (int s = p - 1; s >= 0; --s) {
    for (int r = 1; r <= layers; ++r) {
      for (int c = 1; c <= r; ++c) {
        worst[s][r] = std::min(worst[s][r], std::max(load(s, c), worst[s + 1][r - c]));
      }
    }
  }
  // Every split whose stages all stay within the optimum (and the tolerance) ties; among those, the least
  // sum of squares, by the same recursion with a cap of blocks per stage. squares[s][r] < 0: impossible.
  const double bound = worst[0][layers] * (1 + 1e-9);
  std::vector<std::vector<long long>> squares(static_cast<size_t>(p) + 1, std::vector<long long>(n, -1));
  squares[p][0] = 0;
  auto fits = [&](int s, int c) { return load(s, c) <= bound; };
  for (int s = p - 1; s >= 0; --s) {
    for (int r = 1; r <= layers; ++r) {
      for (int c = 1; c <= r && fits(s, c); ++c) {
        const long long rest = squares[s + 1][r - c];
        if (rest >= 0 && (squares[s][r] < 0 || rest + c * c < squares[s][r])) squares[s][r] = rest + c * c;
      }
    }
  }
  // Walk forward, each stage taking the most blocks that still allow the least sum of squares.
  std::vector<int> counts;
  for (int s = 0, r = layers; s < p; ++s) {
    int c = r;
    while (!(fits(s, c) && squares[s + 1][r - c] >= 0 && squares[s + 1][r - c] + c * c == squares[s][r])) --c;
    counts.push_back(c);
    r -= c;
  }
  return firsts(counts);
}

}  // namespace triad::parallel
