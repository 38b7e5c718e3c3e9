#include "triad/remat/planner.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "triad/core/error.h"
#include "triad/remat/schedule.h"

namespace triad {

namespace {

constexpr Act kIntraUnits[] = {Act::kLn1,  Act::kQkv, Act::kAttProbs, Act::kAttOut,
                               Act::kRes2, Act::kLn2, Act::kFc,       Act::kGelu};

size_t round_up(size_t bytes) {
  return (bytes + 63) / 64 * 64;
}  // as the arena allocates

// Counts bytes and recompute time while the schedule runs.
class Simulator : public StepEvents {
 public:
  explicit Simulator(const ActivationProfile& p) : p_(p) {}
  void compute(int block, Act kind, bool recompute) override {
    live_ += p_.bytes_of(block, kind);
    peak_ = std::max(peak_, live_);
    if (recompute) seconds_ += p_.seconds_of(block, kind);
  }
  void release(int block, Act kind) override { live_ -= p_.bytes_of(block, kind); }
  void head_backward() override {}
  void block_backward(int) override {}
  void embed_backward() override {}
  Prediction result() const { return {peak_, seconds_}; }

 private:
  const ActivationProfile& p_;
  size_t live_ = 0, peak_ = 0;
  double seconds_ = 0;
};

RematPlan plan_with(int layers, uint16_t mask) {
  RematPlan plan{std::vector<uint16_t>(static_cast<size_t>(layers), mask)};
  plan.normalize();
  return plan;
}

// Algorithm 1 of the paper. Units are ordered by τ_re / m, most expensive to recompute per byte first, and
// stored while the stored bytes fit what the budget leaves after the memory every plan needs (embedding,
// LM head, backward scratch and one block's units during its backward).
RematPlan greedy_plan(const ActivationProfile& p, size_t budget) {
  const int L = p.layers;
  struct Candidate {
    int block;
    Act kind;
    double ratio;
  };
  std::vector<Candidate> units;
  size_t largest_block = 0;
  for (int l = 0; l < L; ++l) {
    size_t block_bytes = 0;
    for (Act k : kBlockUnits) {
      block_bytes += p.bytes_of(l, k);
      if (k == Act::kBlockOut && l == L - 1) continue;  // always stored
      units.push_back(
          {l, k, p.seconds_of(l, k) / static_cast<double>(std::max<size_t>(1, p.bytes_of(l, k)))});
    }
    largest_block = std::max(largest_block, block_bytes);
  }
  const size_t fixed = p.bytes_of(-1, Act::kEmbed) + p.bytes_of(-1, Act::kLnf) +
                       p.bytes_of(-1, Act::kLogits) + p.bytes_of(-1, Act::kLoss) +
                       p.bytes_of(-1, Act::kScratch) + largest_block + p.bytes_of(L - 1, Act::kBlockOut);
  const size_t m_max = budget > fixed ? budget - fixed : 0;
  std::stable_sort(units.begin(), units.end(),
                   [](const Candidate& a, const Candidate& b) { return a.ratio > b.ratio; });
  RematPlan plan = plan_with(L, 0);
  plan.keep_logits = false;
  size_t total = 0;
  for (const Candidate& u : units) {
    if (total + p.bytes_of(u.block, u.kind) <= m_max) {
      if (u.block < 0) {
        plan.keep_logits = true;
      } else {
        plan.keep[static_cast<size_t>(u.block)] |= unit_bit(u.kind);
      }
      total += p.bytes_of(u.block, u.kind);
    }
  }
  plan.normalize();
  return plan;
}

// ---- optimal ----------------------------------------------------------------------------------------
//
// The exact memory model behind the dynamic program, derived from the schedule (simulate() replays it):
//
// Blocks form segments: a segment [a, b] starts at a block whose input is stored and runs while block
// outputs are dropped. P(l) is what is stored from before block l (embedding, stored units and stored
// outputs of earlier blocks); within a segment, each earlier block j also holds, from the moment block b's
// backward rebuilt its output, R_j (its dropped units on the way to its output) and the output O_j itself.
//   backward of block l:     P(l) + Σ_{j=a..l-1} (R_j + O_j) + F_l + scratch      F_l: every unit it reads
//   backward of the head:    P(L) + lnf + loss + (logits, or one vocabulary slice of them) + scratch
// The forward of block l holds at most P(l) + F_l + O_l (+ O_{l-1}, its input, inside a segment, where the
// backward term already counts it), so it never exceeds the backward as long as the scratch is at least one
// block output — true by construction (10 B·T·C against B·T·C); make_plan() checks it.
// Every dropped unit is recomputed exactly once (its block's backward reads it; a dropped output is read as
// the next block's input), so recompute time is additive: Σ τ(dropped units) + Σ τ(dropped outputs).
//
// The program walks the blocks in order. Its states at block l are Pareto fronts of (P(l), P(l) + extra,
// time), extra = Σ (R_j + O_j) of the current segment so far: the first bounds every later constraint, the
// second the backward of the rest of the current segment. Fronts are kept apart for blocks that start a
// segment and blocks inside one. Per block it tries every non-dominated choice of stored units (of the 256)
// and storing or dropping the output.
//
// Memory is counted in grains. The arena allocates multiples of 64 bytes, so a 64-byte grain is exact;
// when a front outgrows kMaxFront entries the program restarts with a coarser grain, rounding every cost up
// and the budget down, so a plan never exceeds its budget and gives away at most one grain per block.

constexpr size_t kMaxFront = 2048;

struct Pattern {
  uint16_t mask;   // stored intra units
  size_t stored;   // S: bytes of the stored units
  double seconds;  // recompute time of the dropped ones
  size_t rebuild;  // R: dropped units recomputed to rebuild the block's output
};

// The rebuild bytes matter only when the block's output is dropped.
bool dominates(const Pattern& a, const Pattern& b, bool output_dropped) {
  return a.stored <= b.stored && a.seconds <= b.seconds && (!output_dropped || a.rebuild <= b.rebuild);
}

// Dropped units needed to recompute `kind` of block l, recursively through dropped units.
size_t closure_bytes(const ActivationProfile& p, int l, uint16_t mask, Act kind, uint16_t* seen) {
  if ((mask & unit_bit(kind)) || (*seen & unit_bit(kind))) return 0;
  *seen |= unit_bit(kind);
  size_t bytes = p.bytes_of(l, kind);
  switch (kind) {
    case Act::kQkv:
      return bytes + closure_bytes(p, l, mask, Act::kLn1, seen);
    case Act::kAttProbs:
      return bytes + closure_bytes(p, l, mask, Act::kQkv, seen);
    case Act::kAttOut:
      return bytes + closure_bytes(p, l, mask, Act::kAttProbs, seen) +
             closure_bytes(p, l, mask, Act::kQkv, seen);
    case Act::kRes2:
      return bytes + closure_bytes(p, l, mask, Act::kAttOut, seen);
    case Act::kLn2:
      return bytes + closure_bytes(p, l, mask, Act::kRes2, seen);
    case Act::kFc:
      return bytes + closure_bytes(p, l, mask, Act::kLn2, seen);
    case Act::kGelu:
      return bytes + closure_bytes(p, l, mask, Act::kFc, seen);
    default:
      return bytes;  // kLn1: its input is the block input, accounted for separately
  }
}

std::vector<Pattern> block_patterns(const ActivationProfile& p, int l, bool output_dropped) {
  std::vector<Pattern> all;
  for (uint32_t subset = 0; subset < 256; ++subset) {
    Pattern pat{0, 0, 0, 0};
    for (int i = 0; i < 8; ++i) {
      Act k = kIntraUnits[i];
      if (subset & (1u << i)) {
        pat.mask |= unit_bit(k);
        pat.stored += p.bytes_of(l, k);
      } else {
        pat.seconds += p.seconds_of(l, k);
      }
    }
    uint16_t seen = 0;
    pat.rebuild =
        closure_bytes(p, l, pat.mask, Act::kGelu, &seen) + closure_bytes(p, l, pat.mask, Act::kRes2, &seen);
    all.push_back(pat);
  }
  std::vector<Pattern> front;
  for (size_t i = 0; i < all.size(); ++i) {
    bool dominated = false;
    for (size_t j = 0; j < all.size() && !dominated; ++j) {
      dominated = j != i && dominates(all[j], all[i], output_dropped) &&
                  (!dominates(all[i], all[j], output_dropped) || j < i);
    }
    if (!dominated) front.push_back(all[i]);
  }
  return front;
}

struct Entry {
  uint64_t stored;  // P(l), in grains
  uint64_t reach;   // P(l) + extra, in grains
  double seconds;
  int prev_list;  // 0: segment start, 1: inside a segment (at the previous block)
  int prev_index;
  uint16_t mask;  // stored units of the previous block, its output bit included
};

// Keeps the entries no other entry beats in all of (stored, reach, seconds): sorted by stored, an entry
// survives when no kept one has both reach and seconds at most its own. The kept ones form a staircase of
// (reach ascending, seconds descending), so each test is one lookup.
void prune(std::vector<Entry>& v) {
  std::sort(v.begin(), v.end(), [](const Entry& a, const Entry& b) {
    if (a.stored != b.stored) return a.stored < b.stored;
    if (a.reach != b.reach) return a.reach < b.reach;
    return a.seconds < b.seconds;
  });
  std::map<uint64_t, double> stairs;  // reach -> least seconds among kept entries with that reach or less
  std::vector<Entry> out;
  for (const Entry& e : v) {
    auto it = stairs.upper_bound(e.reach);
    if (it != stairs.begin() && std::prev(it)->second <= e.seconds + 1e-15) continue;
    out.push_back(e);
    auto [pos, inserted] = stairs.insert_or_assign(e.reach, e.seconds);
    for (auto next = std::next(pos); next != stairs.end() && next->second >= e.seconds;)
      next = stairs.erase(next);
  }
  v.swap(out);
}

struct Dp {
  const ActivationProfile& p;
  size_t budget;
  int L;

  Dp(const ActivationProfile& profile, size_t m) : p(profile), budget(m), L(profile.layers) {}

  // The optimal plan, or an empty plan when nothing fits.
  RematPlan solve() const {
    // 64 bytes is the arena's own granularity: exact. Past kMaxFront, a grain of budget / 2^14 and coarser.
    for (size_t grain = 64;; grain = std::max(grain * 4, budget / 16384 / 64 * 64)) {
      bool overflow = false;
      RematPlan plan = solve(grain, &overflow);
      if (!overflow) return plan;
    }
  }

  RematPlan solve(size_t grain, bool* overflow) const {
    auto up = [grain](size_t bytes) -> uint64_t { return (bytes + grain - 1) / grain; };
    const uint64_t M = budget / grain;
    const uint64_t scratch = up(p.bytes_of(-1, Act::kScratch));
    // The head's backward keeps the logits or one slice of them (then recomputed, at the logits' time).
    const uint64_t head_base = up(p.bytes_of(-1, Act::kLnf)) + up(p.bytes_of(-1, Act::kLoss));
    const uint64_t head_kept = head_base + up(p.bytes_of(-1, Act::kLogits));
    const uint64_t head_sliced = head_base + up(p.bytes_of(-1, Act::kLogitsSlice));
    // lists[l][0]: block l starts a segment; lists[l][1]: block l's input was dropped.
    std::vector<std::array<std::vector<Entry>, 2>> lists(static_cast<size_t>(L) + 1);
    const uint64_t embed = up(p.bytes_of(-1, Act::kEmbed));
    lists[0][0].push_back({embed, embed, 0.0, -1, -1, 0});
    for (int l = 0; l < L; ++l) {
      uint64_t reads = 0;  // F_l
      for (Act k : kIntraUnits) reads += up(p.bytes_of(l, k));
      const uint64_t out = up(p.bytes_of(l, Act::kBlockOut));
      const std::vector<Pattern> patterns[2] = {block_patterns(p, l, false), block_patterns(p, l, true)};
      for (int mid = 0; mid < 2; ++mid) {
        const std::vector<Entry>& entries = lists[static_cast<size_t>(l)][static_cast<size_t>(mid)];
        for (int drop = 0; drop < (l + 1 < L ? 2 : 1); ++drop) {
          std::vector<Entry>& next = lists[static_cast<size_t>(l) + 1][static_cast<size_t>(drop)];
          for (int i = 0; i < static_cast<int>(entries.size()); ++i) {
            const Entry& e = entries[static_cast<size_t>(i)];
            if (e.reach + reads + scratch > M) continue;  // this block's backward
            for (const Pattern& pat : patterns[drop]) {
              const uint64_t stored = e.stored + up(pat.stored);
              const double seconds = e.seconds + pat.seconds;
              if (drop) {
                const uint64_t reach = e.reach + up(pat.stored) + up(pat.rebuild) + out;
                next.push_back({stored, reach, seconds + p.seconds_of(l, Act::kBlockOut), mid, i, pat.mask});
              } else {
                next.push_back({stored + out, stored + out, seconds, mid, i,
                                static_cast<uint16_t>(pat.mask | unit_bit(Act::kBlockOut))});
              }
            }
          }
        }
      }
      for (auto& list : lists[static_cast<size_t>(l) + 1]) {
        prune(list);
        if (list.size() > kMaxFront) {
          *overflow = true;
          return {};
        }
      }
    }
    const std::vector<Entry>& ends = lists[static_cast<size_t>(L)][0];
    int best = -1;
    bool best_keeps_logits = true;
    double best_seconds = 0;
    for (int i = 0; i < static_cast<int>(ends.size()); ++i) {
      const Entry& e = ends[static_cast<size_t>(i)];
      for (bool keep_logits : {true, false}) {
        if (e.stored + (keep_logits ? head_kept : head_sliced) + scratch > M)
          continue;  // the head's backward
        const double seconds = e.seconds + (keep_logits ? 0.0 : p.seconds_of(-1, Act::kLogits));
        if (best < 0 || seconds < best_seconds) {
          best = i;
          best_seconds = seconds;
          best_keeps_logits = keep_logits;
        }
      }
    }
    if (best < 0) return {};
    RematPlan plan{std::vector<uint16_t>(static_cast<size_t>(L), 0), best_keeps_logits};
    int list = 0, index = best;
    for (int l = L; l >= 1; --l) {
      const Entry& e = lists[static_cast<size_t>(l)][static_cast<size_t>(list)][static_cast<size_t>(index)];
      plan.keep[static_cast<size_t>(l) - 1] = e.mask;
      list = e.prev_list;
      index = e.prev_index;
    }
    plan.normalize();
    return plan;
  }
};

}  // namespace

ActivationProfile ActivationProfile::for_shape(const GptConfig& config, int B, int T) {
  ActivationProfile p;
  p.layers = config.layers;
  p.bytes.assign(static_cast<size_t>(config.layers) + 1, {});
  p.seconds.assign(static_cast<size_t>(config.layers) + 1, {});
  for (Act k : {Act::kEmbed, Act::kLnf, Act::kLogits, Act::kLogitsSlice, Act::kLoss, Act::kScratch}) {
    p.bytes[0][static_cast<size_t>(k)] = round_up(unit_elements(config, B, T, k) * sizeof(float));
  }
  for (int l = 0; l < config.layers; ++l) {
    for (Act k : kBlockUnits) {
      p.bytes[static_cast<size_t>(l) + 1][static_cast<size_t>(k)] =
          round_up(unit_elements(config, B, T, k) * sizeof(float));
    }
  }
  return p;
}

double ActivationProfile::update_times(const Gpt<float>& model, double weight) {
  double change = 0;
  for (int l = -1; l < layers; ++l) {
    for (size_t k = 0; k < static_cast<size_t>(Act::kCount); ++k) {
      const double now = model.unit_seconds(l, static_cast<Act>(k));
      double& have = seconds[static_cast<size_t>(l + 1)][k];
      if (have > 0) change = std::max(change, std::fabs(now - have) / have);
      have = have > 0 ? (1 - weight) * have + weight * now : now;
    }
  }
  return change;
}

Prediction simulate(const RematPlan& plan, const ActivationProfile& profile) {
  Simulator sim(profile);
  StepSchedule schedule(plan, profile.layers);
  schedule.forward(sim, true);
  schedule.backward(sim);
  return sim.result();
}

PlannerKind parse_planner(const std::string& name) {
  static const std::map<std::string, PlannerKind> kinds = {
      {"none", PlannerKind::kNone},     {"full", PlannerKind::kFull},
      {"sqrt", PlannerKind::kSqrt},     {"selective", PlannerKind::kSelective},
      {"greedy", PlannerKind::kGreedy}, {"optimal", PlannerKind::kOptimal}};
  auto it = kinds.find(name);
  if (it == kinds.end())
    fail_usage("--remat {}: expected none, full, sqrt, selective, greedy or optimal", name);
  return it->second;
}

const char* planner_name(PlannerKind kind) {
  switch (kind) {
    case PlannerKind::kNone:
      return "none";
    case PlannerKind::kFull:
      return "full";
    case PlannerKind::kSqrt:
      return "sqrt";
    case PlannerKind::kSelective:
      return "selective";
    case PlannerKind::kGreedy:
      return "greedy";
    case PlannerKind::kOptimal:
      return "optimal";
  }
  return "?";
}

RematPlan make_plan(PlannerKind kind, const ActivationProfile& p, size_t budget) {
  const int L = p.layers;
  const uint16_t out = unit_bit(Act::kBlockOut);
  switch (kind) {
    case PlannerKind::kNone:
      return RematPlan::keep_all(L);
    case PlannerKind::kFull:
      return plan_with(L, out);
    case PlannerKind::kSqrt: {
      const int k = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(L))));
      RematPlan plan = plan_with(L, 0);
      for (int l = 0; l < L; ++l) {
        if ((l + 1) % k == 0) plan.keep[static_cast<size_t>(l)] = out;  // block l+1 starts a segment
      }
      plan.normalize();
      return plan;
    }
    case PlannerKind::kSelective:
      return plan_with(L,
                       static_cast<uint16_t>(kKeepAll & ~unit_bit(Act::kAttProbs) & ~unit_bit(Act::kGelu)));
    case PlannerKind::kGreedy:
      return greedy_plan(p, budget);
    case PlannerKind::kOptimal: {
      for (int l = 0; l < L; ++l) {
        if (p.bytes_of(-1, Act::kScratch) < p.bytes_of(l, Act::kBlockOut))
          fail("internal: scratch below a block output");
      }
      RematPlan plan = Dp(p, budget).solve();
      if (plan.keep.empty()) {
        fail_usage("--activation-memory {} is below the minimum any plan needs: {}", format_bytes(budget),
                   format_bytes(minimum_budget(p)));
      }
      Prediction best = simulate(plan, p);
      if (best.peak_bytes > budget) fail("internal: the optimal plan exceeds its budget in simulation");
      // With a coarse grain (large L) the program may round itself out of a plan another planner finds.
      for (PlannerKind other : {PlannerKind::kNone, PlannerKind::kSelective, PlannerKind::kGreedy,
                                PlannerKind::kFull, PlannerKind::kSqrt}) {
        RematPlan candidate = make_plan(other, p, budget);
        Prediction pr = simulate(candidate, p);
        if (pr.peak_bytes <= budget && pr.recompute_seconds < best.recompute_seconds) {
          best = pr;
          plan = candidate;
        }
      }
      return plan;
    }
  }
  return RematPlan::keep_all(L);
}

size_t minimum_budget(const ActivationProfile& p) {
  size_t hi = simulate(make_plan(PlannerKind::kFull, p, 0), p).peak_bytes;
  hi = std::max(hi, simulate(RematPlan::keep_all(p.layers), p).peak_bytes);
  size_t lo = 0;
  while (hi - lo > 1) {  // Dp feasibility is monotone in the budget
    size_t mid = lo + (hi - lo) / 2;
    if (Dp(p, mid).solve().keep.empty()) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return hi;
}

size_t parse_budget(const std::string& text, size_t none_peak) {
  if (text.empty()) fail_usage("--activation-memory: empty");
  size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    fail_usage("--activation-memory {}: expected a size like 512MiB or a fraction like 0.5x", text);
  }
  std::string unit = text.substr(pos);
  static const std::map<std::string, double> units = {{"", 1},          {"B", 1},         {"KB", 1e3},
                                                      {"MB", 1e6},      {"GB", 1e9},      {"KiB", 1 << 10},
                                                      {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"x", -1}};
  auto it = units.find(unit);
  if (it == units.end() || value <= 0) {
    fail_usage("--activation-memory {}: expected a size like 512MiB, 2GiB, 800MB, or a fraction like 0.5x",
               text);
  }
  if (it->second < 0) return static_cast<size_t>(value * static_cast<double>(none_peak));
  return static_cast<size_t>(value * it->second);
}

std::string format_bytes(size_t bytes) {
  if (bytes >= (size_t{1} << 30)) return fmt::format("{:.2f}GiB", bytes / double(1 << 30));
  if (bytes >= (size_t{1} << 20)) return fmt::format("{:.1f}MiB", bytes / double(1 << 20));
  return fmt::format("{:.1f}KiB", bytes / 1024.0);
}

}  // namespace triad
