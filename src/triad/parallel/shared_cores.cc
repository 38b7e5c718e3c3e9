#include "triad/parallel/shared_cores.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <limits>
#include <map>
#include <numeric>

#include "triad/core/error.h"
#include "triad/core/statistics.h"

namespace triad::parallel {

std::vector<CpuShare> cpu_shares(const comm::Topology& topology) {
  std::map<int, std::vector<int>> ranks_of_node;
  for (int r = 0; r < static_cast<int>(topology.ranks.size()); ++r)
    ranks_of_node[topology.ranks[r].node].push_back(r);
  std::vector<CpuShare> shares;
  for (const auto& [node, ranks] : ranks_of_node) {
    std::map<std::vector<int>, std::vector<int>> ranks_of_cpus;  // affinity (sorted) -> its ranks
    bool known = true;
    for (int r : ranks) {
      std::vector<int> cpus = topology.ranks[r].cpus;
      known = known && !cpus.empty();
      std::sort(cpus.begin(), cpus.end());
      ranks_of_cpus[cpus].push_back(r);
    }
    if (!known) continue;
    std::vector<int> all;
    size_t listed = 0;
    for (const auto& [cpus, members] : ranks_of_cpus) {
      all.insert(all.end(), cpus.begin(), cpus.end());
      listed += cpus.size();
    }
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    const std::string& host = topology.ranks[ranks[0]].host;
    std::vector<CpuShare> groups;
    if (all.size() == listed) {  // the affinities do not overlap: each is its own group
      for (const auto& [cpus, members] : ranks_of_cpus)
        groups.push_back({.host = host, .ranks = members, .cpus = static_cast<int>(cpus.size())});
    } else {
      groups.push_back({.host = host, .ranks = ranks, .cpus = static_cast<int>(all.size())});
    }
    for (CpuShare& g : groups) {
      if (static_cast<int>(g.ranks.size()) > g.cpus) shares.push_back(std::move(g));
    }
  }
  std::sort(shares.begin(), shares.end(),
            [](const CpuShare& a, const CpuShare& b) { return a.ranks[0] < b.ranks[0]; });
  return shares;
}

std::string describe(const CpuShare& s) {
  return fmt::format("{}: ranks {} share {} CPU{}", s.host, fmt::join(s.ranks, ", "), s.cpus,
                     s.cpus == 1 ? "" : "s");
}

std::vector<std::string> shared_core_nodes(const comm::Topology& topology) {
  std::vector<std::string> lines;
  for (const CpuShare& s : cpu_shares(topology)) lines.push_back(describe(s));
  return lines;
}

comm::Topology at_a_core_each(const comm::Topology& topology, const std::vector<CpuShare>& shares) {
  comm::Topology out = topology;
  for (const CpuShare& s : shares) {
    const size_t n = s.ranks.size();
    bool alone = true;
    for (int r : s.ranks) alone = alone && topology.ranks[r].sgemm_alone_gflops > 0;
    std::vector<double> core;  // each rank's reading of a core's speed
    for (int r : s.ranks) {
      const comm::RankInfo& info = topology.ranks[r];
      core.push_back(alone ? info.sgemm_alone_gflops : info.sgemm_gflops * static_cast<double>(n) / s.cpus);
    }
    for (int r : s.ranks) out.ranks[r].sgemm_gflops = median(core);
  }
  return out;
}

double simulate_step(PipelineSchedule schedule, int micro_batches, const std::vector<SimulatedStage>& stages,
                     const std::vector<CpuShare>& shares, const std::vector<NodeContention>& contention,
                     std::vector<double>* busy) {
  const int p = static_cast<int>(stages.size()), m = micro_batches, tail = 2 * m;
  std::map<int, int> share_of, node_of;  // rank -> index into shares, into contention
  for (size_t g = 0; g < shares.size(); ++g) {
    for (int r : shares[g].ranks) share_of[r] = static_cast<int>(g);
  }
  for (size_t n = 0; n < contention.size(); ++n) {
    for (int r : contention[n].ranks) node_of[r] = static_cast<int>(n);
  }
  std::vector<std::vector<PipelineOp>> ops;
  for (int s = 0; s < p; ++s) ops.push_back(stage_ops(schedule, s, p, m));
  std::vector<std::vector<char>> forward_done(p, std::vector<char>(m)), backward_done = forward_done;
  std::vector<int> next(p, 0);           // the op a stage runs or waits for; `tail`, then tail + 1: done
  std::vector<double> remaining(p, -1);  // seconds at a core's speed left of its running op; < 0: waiting

  auto ready = [&](int s) {
    if (next[s] >= tail) return next[s] == tail;
    const PipelineOp& op = ops[s][next[s]];
    const int i = op.micro_batch;
    if (op.kind == PipelineOp::Kind::kForward) return s == 0 || forward_done[s - 1][i] != 0;
    return s == p - 1 ? forward_done[s][i] != 0 : backward_done[s + 1][i] != 0;
  };
  auto work = [&](int s) {
    if (next[s] == tail) return stages[s].tail;
    return ops[s][next[s]].kind == PipelineOp::Kind::kForward ? stages[s].forward : stages[s].backward;
  };

  if (busy) busy->assign(p, 0.0);
  double now = 0;
  for (;;) {
    for (int s = 0; s < p; ++s) {
      if (remaining[s] < 0 && ready(s)) remaining[s] = work(s);
    }
    std::vector<int> working(shares.size(), 0), node_working(contention.size(), 0);
    for (int s = 0; s < p; ++s) {
      if (remaining[s] < 0) continue;
      for (int r : stages[s].ranks) {
        if (auto g = share_of.find(r); g != share_of.end()) ++working[g->second];
        if (auto n = node_of.find(r); n != node_of.end()) ++node_working[n->second];
      }
    }
    std::vector<double> rate(p, 1.0);
    double step = std::numeric_limits<double>::infinity();
    for (int s = 0; s < p; ++s) {
      if (remaining[s] < 0) continue;
      for (int r : stages[s].ranks) {
        double speed = 1;
        if (const auto g = share_of.find(r);
            g != share_of.end() && working[g->second] > shares[g->second].cpus)
          speed = static_cast<double>(shares[g->second].cpus) / working[g->second];
        if (const auto n = node_of.find(r); n != node_of.end()) {
          const NodeContention& node = contention[n->second];
          const double others = static_cast<double>(node_working[n->second] - 1) / (node.ranks.size() - 1);
          speed /= 1 + (std::max(node.factor, 1.0) - 1) * others;
        }
        rate[s] = std::min(rate[s], speed);
      }
      step = std::min(step, remaining[s] / rate[s]);
    }
    if (step == std::numeric_limits<double>::infinity()) break;  // nothing runs: done (or stuck, below)
    now += step;
    for (int s = 0; s < p; ++s) {
      if (remaining[s] < 0) continue;
      if (busy && next[s] < tail) (*busy)[s] += step;
      if (remaining[s] / rate[s] > step * (1 + 1e-12)) {
        remaining[s] -= rate[s] * step;
        continue;
      }
      if (next[s] < tail) {
        const PipelineOp& op = ops[s][next[s]];
        (op.kind == PipelineOp::Kind::kForward ? forward_done : backward_done)[s][op.micro_batch] = 1;
      }
      ++next[s];
      remaining[s] = -1;
    }
  }
  for (int s = 0; s < p; ++s) {
    if (next[s] != tail + 1) fail("internal: the simulated pipeline stopped at stage {}, op {}", s, next[s]);
  }
  return now;
}

double simulate_split(const StageSharing& sharing, const std::vector<int>& blocks,
                      const std::vector<double>& block_seconds, double head_blocks,
                      std::vector<double>* busy) {
  const size_t p = blocks.size();
  std::vector<SimulatedStage> stages;
  for (size_t s = 0; s < p; ++s) {
    const double work = stage_work(blocks, s, head_blocks) * block_seconds[s];
    stages.push_back({.forward = (1 - sharing.backward_share) * work,
                      .backward = sharing.backward_share * work,
                      .tail = 0,
                      .ranks = sharing.stage_ranks[s]});
  }
  return simulate_step(sharing.schedule, sharing.micro_batches, stages, sharing.shares, {}, busy);
}

std::vector<double> block_seconds_at_a_core(const StageSharing& sharing, const std::vector<int>& blocks,
                                            double head_blocks, const std::vector<double>& busy) {
  const size_t p = blocks.size();
  std::vector<double> seconds(p), simulated;
  for (size_t s = 0; s < p; ++s) {
    seconds[s] = busy[s] / (sharing.micro_batches * stage_work(blocks, s, head_blocks));
  }
  for (int round = 0; round < 100; ++round) {
    simulate_split(sharing, blocks, seconds, head_blocks, &simulated);
    double worst = 0;
    for (size_t s = 0; s < p; ++s) {
      const double ratio = busy[s] / simulated[s];
      worst = std::max(worst, std::abs(ratio - 1));
      seconds[s] *= ratio;
    }
    if (worst < 1e-9) break;
  }
  return seconds;
}

int blocks_moved(const std::vector<int>& a, const std::vector<int>& b) {
  // Walk both splits block by block: a block moves when its stage differs.
  int moved = 0;
  size_t sa = 0, sb = 0;
  int left_a = a.empty() ? 0 : a[0], left_b = b.empty() ? 0 : b[0];
  for (;;) {
    while (sa < a.size() && left_a == 0) left_a = ++sa < a.size() ? a[sa] : 0;
    while (sb < b.size() && left_b == 0) left_b = ++sb < b.size() ? b[sb] : 0;
    if (sa >= a.size() || sb >= b.size()) break;
    const int run = std::min(left_a, left_b);
    if (sa != sb) moved += run;
    left_a -= run, left_b -= run;
  }
  return moved;
}

std::vector<int> fastest_simulated_split(const StageSharing& sharing, const std::vector<int>& blocks,
                                         const std::vector<double>& block_seconds, double head_blocks) {
  const int p = static_cast<int>(blocks.size()), layers = std::accumulate(blocks.begin(), blocks.end(), 0);
  auto step = [&](const std::vector<int>& split) {
    return simulate_split(sharing, split, block_seconds, head_blocks);
  };
  double splits = 1;  // C(layers - 1, p - 1)
  for (int k = 1; k < p; ++k) splits = splits * (layers - p + k) / k;
  std::vector<std::pair<std::vector<int>, double>> timed;  // every split visited, its step
  if (splits <= kMaxSimulatedSplits) {
    std::vector<int> split(static_cast<size_t>(p));
    // Stage s takes 1..(what is left less one block for each later stage); the last takes the rest.
    auto visit = [&](auto&& self, int s, int left) -> void {
      if (s == p - 1) {
        split[s] = left;
        timed.emplace_back(split, step(split));
        return;
      }
      for (int c = 1; c <= left - (p - 1 - s); ++c) split[s] = c, self(self, s + 1, left - c);
    };
    visit(visit, 0, layers);
  } else {
    std::vector<int> best = blocks;
    double best_seconds = step(blocks);
    timed.emplace_back(best, best_seconds);
    for (bool moved = true; moved;) {
      moved = false;
      for (int s = 0; s + 1 < p; ++s) {
        for (int direction : {1, -1}) {
          std::vector<int> next = best;
          next[s] -= direction, next[s + 1] += direction;
          if (next[s] < 1 || next[s + 1] < 1) continue;
          const double t = step(next);
          timed.emplace_back(next, t);
          if (t < best_seconds) best_seconds = t, best = next, moved = true;
        }
      }
    }
  }
  double shortest = std::numeric_limits<double>::infinity();
  for (const auto& [split, seconds] : timed) shortest = std::min(shortest, seconds);
  const std::pair<std::vector<int>, double>* chosen = nullptr;
  int chosen_moved = 0;
  for (const auto& candidate : timed) {
    if (candidate.second > shortest * (1 + kSimulationTolerance)) continue;
    const int moved = blocks_moved(blocks, candidate.first);
    if (!chosen || moved < chosen_moved || (moved == chosen_moved && candidate.second < chosen->second))
      chosen = &candidate, chosen_moved = moved;
  }
  return chosen->first;
}

}  // namespace triad::parallel
