#pragma once
// The energy a training run used, and the CO2 it stands for: measured where the machine has RAPL energy
// counters (/sys/class/powercap/intel-rapl:N/energy_uj), honestly estimated where it has not.
//
// Measured ("energy_source": "rapl"): the growth of every top-level RAPL package counter between the start
// and the end of the run, through wrap-around (max_energy_range_uj). It is the whole package's energy, other
// processes' included, and leaves out whatever RAPL does not see (disks, fans, the power supply).
//
// Estimated ("energy_source": "estimate"), as CodeCarbon's fallback does when it cannot read a counter:
//   energy_j = cpu_seconds x cpu_watts_per_core                  (getrusage user + system, children included)
//            + 0.375 W/GiB x peak RSS GiB x wall_seconds          (CodeCarbon's 3 W per 8 GiB of memory)
// The default watts per core spread CodeCarbon's constant-mode CPU power (half of its 85 W default TDP:
// 42.5 W) over this machine's hardware threads: a process keeping every thread busy is charged 42.5 W.
// It is an estimate and is labelled one wherever it is shown; --cpu-watts-per-core sets a better figure.
//
// CO2 in grams = energy in kWh x --grid-intensity (g CO2 per kWh; default 475, the world average CodeCarbon
// uses when it knows no region).
//
// Under mpirun the run's energy is the sum over ranks: each rank's estimate, or each node's RAPL counters
// read once (by the node's first rank). A job where some node has no counters is estimated everywhere.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "triad/core/clock.h"
#include "triad/core/options.h"

namespace triad {

namespace comm {
class Context;
}

struct EnergyOptions {
  double cpu_watts_per_core = 0;                      // 0: 42.5 W over this machine's hardware threads
  double grid_intensity = 475;                        // g CO2 per kWh
  std::string powercap_root = "/sys/class/powercap";  // not a flag: tests point it at a fake sysfs

  // --cpu-watts-per-core as used: the given figure, or the default for this machine.
  double watts_per_core() const;
  static const OptionTable<EnergyOptions>& options();
};

// CodeCarbon's memory power: 3 W per 8 GiB.
inline constexpr double kMemoryWattsPerGiB = 3.0 / 8.0;
// CodeCarbon's CPU power when it knows nothing of the CPU: 50 % of an 85 W TDP.
inline constexpr double kDefaultCpuWatts = 42.5;

// One RAPL package counter as read.
struct RaplCounter {
  std::string zone;  // "intel-rapl:0"
  uint64_t energy_uj = 0;
  uint64_t max_energy_range_uj = 0;  // the counter wraps to 0 after this
};

// The top-level package zones under `powercap_root` (intel-rapl:N, not their sub-zones, not "psys", which
// contains the packages), sorted by zone; empty when there are none or one cannot be read.
std::vector<RaplCounter> read_rapl(const std::string& powercap_root);
// Joules between two readings of the same zones, each counter wrapped at most once.
double rapl_joules_between(const std::vector<RaplCounter>& start, const std::vector<RaplCounter>& end);

// What the estimate is computed from.
struct ProcessUsage {
  double cpu_seconds = 0;
  double wall_seconds = 0;
  double peak_rss_bytes = 0;
};
double estimate_joules(const ProcessUsage& usage, double watts_per_core);

struct EnergyReport {
  double joules = 0;
  std::string source;  // "rapl" or "estimate"
  double co2_g = 0;
  double cpu_seconds = 0;     // summed over ranks
  double wall_seconds = 0;    // this rank's
  double peak_rss_bytes = 0;  // this rank's
  double watts_per_core = 0;  // the estimate's figure (0 with rapl)
  double grid_intensity = 0;

  // {"energy_j", "energy_source", "co2_g", "wall_s", "peak_rss_mib", ...}: merged into the run's end
  // summary, and so into the audit log's run_end entry.
  nlohmann::json to_json() const;
  // "12.3 kJ (estimate), 1.6 g CO2": for people; "estimate" is always said.
  std::string describe() const;
};

// CPU seconds of this process and its waited-for children (getrusage).
double process_cpu_seconds();

class EnergyMeter {
 public:
  // Reads the counters and clocks now: the run's energy is what is used from here.
  explicit EnergyMeter(EnergyOptions options);
  // Collective: every rank of `context` calls it; each gets the job's total.
  EnergyReport finish(comm::Context& context) const;
  // This process alone.
  EnergyReport finish_local() const;

 private:
  EnergyReport report(double rapl_joules, bool all_rapl, const ProcessUsage& usage) const;
  ProcessUsage usage_now() const;

  EnergyOptions options_;
  std::vector<RaplCounter> rapl_start_;
  double cpu_start_ = 0;
  Clock::time_point wall_start_;
};

// The record metrics.jsonl ends a run with, from its end summary (which carries EnergyReport::to_json()):
// {"step", "status", "wall_s", "peak_rss_mib", "cpu_s", "energy_j", "energy_source", "co2_g", ...}.
nlohmann::json end_metrics_record(const nlohmann::json& summary);

}  // namespace triad
