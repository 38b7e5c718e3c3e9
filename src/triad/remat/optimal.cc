#include "triad/remat/optimal.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "triad/core/error.h"

namespace triad {

namespace {

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
// and storing or dropping the output. Bytes are counted exactly.
//
// Left alone, the fronts hold every distinct (P, reach) a prefix can reach — hundreds of thousands of
// candidates per block at L = 96. Branch and bound keeps them small without giving up exactness: a state
// is dropped when its time plus a lower bound on the rest exceeds the time of a plan known to fit, and when
// its stored bytes leave no room for the head's backward. The bound relaxes the rest to a knapsack: each
// later block takes any of its choices, with only the stored bytes (within what the head's backward
// leaves) and the next block's backward as constraints; it is solved backwards over a table of cells,
// rounding costs down so it never exceeds the truth (bound_cell picks cells that sizes are multiples of).
// The known plan comes from a first pass of the same program that keeps only the kBeamWidth most promising
// states per front: within a fraction of a percent of the optimum, it lets the exact pass prune hard.
// Candidates sharing (P, reach) — sizes repeat across blocks, so most do — meet in a hash table first.

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
      Act k = backward_reads()[i];
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
  // Sorted by stored bytes, a pattern can only be dominated by one before it (or an equal one after it,
  // which the tie order puts first).
  std::sort(all.begin(), all.end(), [](const Pattern& a, const Pattern& b) {
    if (a.stored != b.stored) return a.stored < b.stored;
    if (a.seconds != b.seconds) return a.seconds < b.seconds;
    return a.rebuild < b.rebuild;
  });
  std::vector<Pattern> front;
  for (const Pattern& pat : all) {
    bool dominated = false;
    for (const Pattern& kept : front) dominated = dominated || dominates(kept, pat, output_dropped);
    if (!dominated) front.push_back(pat);
  }
  return front;
}

struct Entry {
  uint64_t stored;  // P(l)
  uint64_t reach;   // P(l) + extra
  double seconds;
  int prev_list;  // 0: segment start, 1: inside a segment (at the previous block)
  int prev_index;
  uint16_t mask;  // stored units of the previous block, its output bit included
};

// Collects a block's candidate states and yields their Pareto front. Memory sizes repeat across blocks, so
// many candidates share (stored, reach): a hash table keeps the fastest of each, and only those are sorted.
class Front {
 public:
  void offer(const Entry& e) {
    if (2 * (entries_.size() + 1) > slots_.size()) grow();
    size_t i = slot(e.stored, e.reach);
    if (slots_[i] < 0) {
      slots_[i] = static_cast<int>(entries_.size());
      entries_.push_back(e);
    } else if (e.seconds < entries_[static_cast<size_t>(slots_[i])].seconds) {
      entries_[static_cast<size_t>(slots_[i])] = e;
    }
  }

  // The entries no other beats in all of (stored, reach, seconds). Sorted by stored, an entry survives when
  // no kept one has both reach and seconds at most its own; the kept ones form a staircase of (reach
  // ascending, seconds descending), so each test is one lookup.
  std::vector<Entry> take() {
    std::vector<Entry> v;
    v.swap(entries_);
    slots_.clear();
    std::sort(v.begin(), v.end(), [](const Entry& a, const Entry& b) {
      return a.stored != b.stored ? a.stored < b.stored : a.reach < b.reach;
    });
    std::map<uint64_t, double> stairs;  // reach -> least seconds among kept entries with that reach or less
    std::vector<Entry> out;
    for (const Entry& e : v) {
      auto it = stairs.upper_bound(e.reach);
      if (it != stairs.begin() && std::prev(it)->second <= e.seconds) continue;
      out.push_back(e);
      auto [pos, inserted] = stairs.insert_or_assign(e.reach, e.seconds);
      for (auto next = std::next(pos); next != stairs.end() && next->second >= e.seconds;)
        next = stairs.erase(next);
    }
    return out;
  }

 private:
  size_t slot(uint64_t stored, uint64_t reach) const {
    const size_t mask = slots_.size() - 1;
    uint64_t h = (stored * 0x9E3779B97F4A7C15ull + reach) * 0xC2B2AE3D27D4EB4Full;
    size_t i = static_cast<size_t>(h ^ (h >> 29) ^ (h >> 47)) &
               mask;  // sizes are multiples of 64: mix high bits down
    while (slots_[i] >= 0) {
      const Entry& e = entries_[static_cast<size_t>(slots_[i])];
      if (e.stored == stored && e.reach == reach) break;
      i = (i + 1) & mask;
    }
    return i;
  }
  void grow() {
    slots_.assign(std::max<size_t>(64, 2 * slots_.size()), -1);
    for (size_t k = 0; k < entries_.size(); ++k)
      slots_[slot(entries_[k].stored, entries_[k].reach)] = static_cast<int>(k);
  }

  std::vector<Entry> entries_;
  std::vector<int> slots_;  // open addressing, -1: empty
};

// The bound table's cell. Rounding a choice's bytes down to cells loosens the bound by up to a cell per
// block — unless the sizes are multiples of the cell, and activation sizes are a few multiples of B·T·C.
// Among the finest cell the table allows (2L² cells) and whole fractions (1/1 .. 1/16) of each unit size,
// the pick is the one whose rounding loses the least over all blocks; on a tie, the coarser.
uint64_t bound_cell(const ActivationProfile& p, uint64_t room) {
  const size_t most =
      std::clamp<size_t>(2 * static_cast<size_t>(p.layers) * static_cast<size_t>(p.layers), 1024, 65536);
  const uint64_t finest = room / most + 1;
  auto loss = [&](uint64_t cell) {
    uint64_t lost = 0;
    for (int l = 0; l < p.layers; ++l) {
      for (Act k : block_units()) lost += p.bytes_of(l, k) % cell;
    }
    return lost;
  };
  uint64_t best = finest, best_loss = loss(finest);
  for (Act k : block_units()) {
    for (uint64_t d = 1; d <= 16; ++d) {
      const uint64_t cell = p.bytes_of(0, k) / d;
      if (cell < finest) break;
      const uint64_t lost = loss(cell);
      if (lost < best_loss || (lost == best_loss && cell > best)) {
        best = cell;
        best_loss = lost;
      }
    }
  }
  return best;
}

constexpr size_t kBeamWidth = 16;

class OptimalPlanner {
 public:
  explicit OptimalPlanner(const ActivationProfile& profile) : p_(profile), L_(profile.layers) {
    for (int l = 0; l < L_; ++l) {
      patterns_.push_back({block_patterns(p_, l, false), block_patterns(p_, l, true)});
      reads_.push_back(0);
      for (Act k : backward_reads()) reads_.back() += p_.bytes_of(l, k);
    }
  }

  // The least-recompute plan whose peak is within `budget`, or an empty plan when none is or none beats
  // `known`, the time of a plan known to fit.
  RematPlan best(size_t budget, double known) const {
    Budget b(p_, budget);
    if (!b.ok) return {};
    const Bounds bounds = rest_bounds(b);
    // A narrow beam first: a near-optimal plan whose time prunes the exact search far better than `known`.
    RematPlan beam = search(b, &bounds, known, kBeamWidth);
    if (!beam.keep.empty()) known = std::min(known, simulate(beam, p_).recompute_seconds);
    RematPlan exact = search(b, &bounds, known, 0);
    return exact.keep.empty() ? beam : exact;
  }

  bool fits(size_t budget) const {
    Budget b(p_, budget);
    return b.ok && !search(b, nullptr, 0, 0).keep.empty();
  }

 private:
  struct Budget {
    Budget(const ActivationProfile& p, size_t budget) : M(budget) {
      const uint64_t head_base = p.bytes_of(-1, Act::kLnf) + p.bytes_of(-1, Act::kLoss);
      head_kept = head_base + p.bytes_of(-1, Act::kLogits);
      head_sliced = head_base + p.bytes_of(-1, Act::kLogitsSlice);
      scratch = p.bytes_of(-1, Act::kScratch);
      const uint64_t reserved = std::min(head_kept, head_sliced) + scratch;
      ok = reserved <= M;
      room = ok ? M - reserved : 0;
    }
    uint64_t M;
    // The head's backward keeps the logits or one slice of them (then recomputed, at the logits' time).
    uint64_t head_kept, head_sliced, scratch;
    bool ok;
    uint64_t room;  // for P(L), with the smaller head
  };
  struct Bounds {
    uint64_t cell;                           // bytes
    std::vector<std::vector<double>> table;  // [block][cells left]
    double at(int l, uint64_t bytes_left) const { return table[static_cast<size_t>(l)][bytes_left / cell]; }
  };

  // table[l][c]: the least time blocks l.. and the head can take while blocks l.. store at most c cells
  // (costs rounded down, so it never exceeds the truth) — the rest of the program relaxed to a knapsack:
  // any choice per block, segments free.
  Bounds rest_bounds(const Budget& b) const {
    Bounds bounds{bound_cell(p_, b.room), {}};
    const uint64_t cell = bounds.cell;
    const size_t cells = b.room / cell + 1;
    const double inf = std::numeric_limits<double>::infinity();
    auto& bound = bounds.table;
    bound.assign(static_cast<size_t>(L_) + 1, std::vector<double>(cells, inf));
    // Keeping the logits takes head_kept - min(head) more, else they are recomputed.
    const uint64_t logits_extra = b.head_kept - std::min(b.head_kept, b.head_sliced);
    for (size_t c = 0; c < cells; ++c)
      bound[static_cast<size_t>(L_)][c] =
          (c + 1) * cell > logits_extra ? 0.0 : p_.seconds_of(-1, Act::kLogits);
    for (int l = L_ - 1; l >= 0; --l) {
      const std::vector<double>& after = bound[static_cast<size_t>(l) + 1];
      std::vector<double>& here = bound[static_cast<size_t>(l)];
      // Each choice: cells stored (rounded down), the least cells left for it to fit (a choice storing S
      // that needs `peak` free bytes above P(l) at some backward: with c cells left, up to (c + 1) cells
      // - 1 byte + the head and scratch are free), time. Dominated ones are skipped.
      struct Option {
        size_t w, least;
        double seconds;
      };
      std::vector<Option> options;
      auto add = [&](uint64_t bytes, uint64_t peak, double seconds) {
        const uint64_t free = b.M - b.room;
        options.push_back({bytes / cell, peak > free ? (peak - free) / cell : 0, seconds});
      };
      const uint64_t out = p_.bytes_of(l, Act::kBlockOut);
      for (const Pattern& pat : patterns_[static_cast<size_t>(l)][0]) add(pat.stored + out, 0, pat.seconds);
      if (l + 1 < L_) {  // dropped: block l + 1's backward holds P(l) + S + R + O + F(l + 1) at least
        for (const Pattern& pat : patterns_[static_cast<size_t>(l)][1]) {
          add(pat.stored, pat.stored + pat.rebuild + out + reads_[static_cast<size_t>(l) + 1] + b.scratch,
              pat.seconds + p_.seconds_of(l, Act::kBlockOut));
        }
      }
      for (size_t i = 0; i < options.size(); ++i) {
        const Option& o = options[i];
        bool dominated = false;
        for (size_t j = 0; j < options.size() && !dominated; ++j) {
          const Option& q = options[j];
          dominated = j != i && q.w <= o.w && q.least <= o.least && q.seconds <= o.seconds &&
                      (q.w < o.w || q.least < o.least || q.seconds < o.seconds || j < i);
        }
        if (dominated) continue;
        for (size_t c = std::max(o.w, o.least); c < cells; ++c)
          here[c] = std::min(here[c], o.seconds + after[c - o.w]);
      }
    }
    return bounds;
  }

  // The program. bounds == nullptr: times ignored, any plan that fits. Otherwise states that cannot beat
  // `limit` are dropped, and beam > 0 keeps only that many states per list, the most promising first.
  RematPlan search(const Budget& b, const Bounds* bounds, double limit, size_t beam) const {
    const bool timed = bounds != nullptr;
    limit *= 1 + 1e-9;  // sums in another order than simulate()'s
    // A state at block l with P = stored and this time that can still fit and beat the limit: its
    // least possible final time; infinity if it cannot.
    auto outlook = [&](int l, uint64_t stored, double seconds) {
      if (stored > b.room) return std::numeric_limits<double>::infinity();
      return timed ? seconds + bounds->at(l, b.room - stored) : 0.0;
    };
    // lists[l][0]: block l starts a segment; lists[l][1]: block l's input was dropped.
    std::vector<std::array<std::vector<Entry>, 2>> lists(static_cast<size_t>(L_) + 1);
    const uint64_t embed = p_.bytes_of(-1, Act::kEmbed);
    lists[0][0].push_back({embed, embed, 0.0, -1, -1, 0});
    std::array<Front, 2> fronts;  // of block l + 1: segment start, inside a segment
    for (int l = 0; l < L_; ++l) {
      const uint64_t reads = reads_[static_cast<size_t>(l)];
      const uint64_t out = p_.bytes_of(l, Act::kBlockOut);
      const double out_seconds = timed ? p_.seconds_of(l, Act::kBlockOut) : 0.0;
      for (int mid = 0; mid < 2; ++mid) {
        const std::vector<Entry>& entries = lists[static_cast<size_t>(l)][static_cast<size_t>(mid)];
        for (int drop = 0; drop < (l + 1 < L_ ? 2 : 1); ++drop) {
          Front& next = fronts[static_cast<size_t>(drop)];
          for (int i = 0; i < static_cast<int>(entries.size()); ++i) {
            const Entry& e = entries[static_cast<size_t>(i)];
            if (e.reach + reads + b.scratch > b.M) continue;  // this block's backward
            for (const Pattern& pat : patterns_[static_cast<size_t>(l)][static_cast<size_t>(drop)]) {
              const double seconds = e.seconds + (timed ? pat.seconds : 0.0);
              if (drop) {
                const uint64_t stored = e.stored + pat.stored;
                if (outlook(l + 1, stored, seconds + out_seconds) > limit) continue;
                const uint64_t reach = e.reach + pat.stored + pat.rebuild + out;
                if (reach + reads_[static_cast<size_t>(l) + 1] + b.scratch > b.M)
                  continue;  // the next backward
                next.offer({stored, reach, seconds + out_seconds, mid, i, pat.mask});
              } else {
                const uint64_t stored = e.stored + pat.stored + out;
                if (outlook(l + 1, stored, seconds) > limit) continue;
                next.offer({stored, stored, seconds, mid, i,
                            static_cast<uint16_t>(pat.mask | unit_bit(Act::kBlockOut))});
              }
            }
          }
        }
      }
      for (int drop = 0; drop < 2; ++drop) {
        std::vector<Entry>& list = lists[static_cast<size_t>(l) + 1][static_cast<size_t>(drop)];
        list = fronts[static_cast<size_t>(drop)].take();
        if (beam > 0 && list.size() > beam) {
          auto promise = [&](const Entry& e) { return outlook(l + 1, e.stored, e.seconds); };
          std::nth_element(list.begin(), list.begin() + static_cast<ptrdiff_t>(beam), list.end(),
                           [&](const Entry& x, const Entry& y) { return promise(x) < promise(y); });
          list.resize(beam);
        }
      }
    }
    const std::vector<Entry>& ends = lists[static_cast<size_t>(L_)][0];
    int best = -1;
    bool best_keeps_logits = true;
    double best_seconds = 0;
    for (int i = 0; i < static_cast<int>(ends.size()); ++i) {
      const Entry& e = ends[static_cast<size_t>(i)];
      for (bool keep_logits : {true, false}) {
        if (e.stored + (keep_logits ? b.head_kept : b.head_sliced) + b.scratch > b.M)
          continue;  // the head's backward
        const double seconds = e.seconds + (keep_logits ? 0.0 : p_.seconds_of(-1, Act::kLogits));
        if (best < 0 || seconds < best_seconds) {
          best = i;
          best_seconds = seconds;
          best_keeps_logits = keep_logits;
        }
      }
    }
    if (best < 0) return {};
    RematPlan plan{std::vector<uint16_t>(static_cast<size_t>(L_), 0), best_keeps_logits};
    int list = 0, index = best;
    for (int l = L_; l >= 1; --l) {
      const Entry& e = lists[static_cast<size_t>(l)][static_cast<size_t>(list)][static_cast<size_t>(index)];
      plan.keep[static_cast<size_t>(l) - 1] = e.mask;
      list = e.prev_list;
      index = e.prev_index;
    }
    plan.normalize();
    return plan;
  }

  const ActivationProfile& p_;
  int L_;
  std::vector<std::array<std::vector<Pattern>, 2>> patterns_;  // [block][output dropped]
  std::vector<uint64_t> reads_;                                // F_l: every unit block l's backward reads
};
}  // namespace

RematPlan optimal_plan(const ActivationProfile& profile, size_t budget, double known_seconds) {
  return OptimalPlanner(profile).best(budget, known_seconds);
}

size_t minimum_budget(const ActivationProfile& p) {
  // Upper bound: what keeping everything or only the block outputs needs.
  RematPlan full{std::vector<uint16_t>(static_cast<size_t>(p.layers), unit_bit(Act::kBlockOut))};
  full.normalize();
  size_t hi = std::max(simulate(full, p).peak_bytes, simulate(RematPlan::keep_all(p.layers), p).peak_bytes);
  size_t lo = 0;
  const OptimalPlanner planner(p);
  while (hi - lo > 1) {  // feasibility is monotone in the budget
    size_t mid = lo + (hi - lo) / 2;
    if (!planner.fits(mid)) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return hi;
}

}  // namespace triad
