#include "triad/train/energy.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>

#include "triad/comm/collectives.h"
#include "triad/comm/context.h"
#include "triad/core/memory.h"

namespace triad {

namespace fs = std::filesystem;

double EnergyOptions::watts_per_core() const {
  if (cpu_watts_per_core > 0) return cpu_watts_per_core;
  const long threads = sysconf(_SC_NPROCESSORS_ONLN);
  return kDefaultCpuWatts / static_cast<double>(std::max(1L, threads));
}

const OptionTable<EnergyOptions>& EnergyOptions::options() {
  static const OptionTable<EnergyOptions> table = [] {
    using O = EnergyOptions;
    OptionTable<O> t;
    t.add("cpu-watts-per-core", &O::cpu_watts_per_core,
          "Energy estimate without RAPL counters: watts per busy core (0: CodeCarbon's 42.5 W over this "
          "machine's hardware threads)")
        .value_name("W")
        .check(Check::kNonNegative)
        .per_command();
    t.add("grid-intensity", &O::grid_intensity, "Grams of CO2 per kWh of the electricity used")
        .value_name("G_PER_KWH")
        .check(Check::kNonNegative)
        .per_command();
    return t;
  }();
  return table;
}

namespace {

// The number in a one-line sysfs file, or false.
bool read_counter(const fs::path& path, uint64_t* value) {
  std::ifstream in(path);
  unsigned long long v = 0;
  if (!(in >> v)) return false;
  *value = v;
  return true;
}

}  // namespace

std::vector<RaplCounter> read_rapl(const std::string& powercap_root) {
  std::vector<RaplCounter> counters;
  std::error_code ec;
  if (!fs::is_directory(powercap_root, ec)) return {};
  static const std::regex package_zone("intel-rapl:[0-9]+");
  for (const fs::directory_entry& entry : fs::directory_iterator(powercap_root, ec)) {
    const std::string zone = entry.path().filename().string();
    if (!std::regex_match(zone, package_zone)) continue;
    std::ifstream name_file(entry.path() / "name");
    std::string name;
    if (name_file >> name && name == "psys") continue;  // the platform: packages and more, counted twice
    RaplCounter c{.zone = zone};
    // An unreadable counter (energy_uj is root-only on recent kernels) makes the reading useless.
    if (!read_counter(entry.path() / "energy_uj", &c.energy_uj) ||
        !read_counter(entry.path() / "max_energy_range_uj", &c.max_energy_range_uj))
      return {};
    counters.push_back(c);
  }
  std::sort(counters.begin(), counters.end(),
            [](const RaplCounter& a, const RaplCounter& b) { return a.zone < b.zone; });
  return counters;
}

double rapl_joules_between(const std::vector<RaplCounter>& start, const std::vector<RaplCounter>& end) {
  double microjoules = 0;
  for (const RaplCounter& e : end) {
    auto s = std::find_if(start.begin(), start.end(), [&](const RaplCounter& c) { return c.zone == e.zone; });
    if (s == start.end()) continue;
    // The counter runs from 0 to max_energy_range_uj and starts again: a smaller reading has wrapped.
    microjoules += e.energy_uj >= s->energy_uj
                       ? static_cast<double>(e.energy_uj - s->energy_uj)
                       : static_cast<double>(e.max_energy_range_uj - s->energy_uj + e.energy_uj);
  }
  return microjoules * 1e-6;
}

double estimate_joules(const ProcessUsage& usage, double watts_per_core) {
  const double gib = usage.peak_rss_bytes / double(1ull << 30);
  return usage.cpu_seconds * watts_per_core + kMemoryWattsPerGiB * gib * usage.wall_seconds;
}

double process_cpu_seconds() {
  double seconds = 0;
  for (int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
    rusage u{};
    if (getrusage(who, &u) != 0) continue;
    seconds += u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec * 1e-6;
  }
  return seconds;
}

nlohmann::json EnergyReport::to_json() const {
  nlohmann::json j = {{"energy_j", joules},
                      {"energy_source", source},
                      {"co2_g", co2_g},
                      {"cpu_s", cpu_seconds},
                      {"wall_s", wall_seconds},
                      {"peak_rss_mib", peak_rss_bytes / double(1 << 20)},
                      {"grid_intensity", grid_intensity}};
  if (source == "estimate") j["cpu_watts_per_core"] = watts_per_core;
  return j;
}

std::string EnergyReport::describe() const {
  const std::string energy =
      joules >= 1e3 ? fmt::format("{:.1f} kJ", joules / 1e3) : fmt::format("{:.0f} J", joules);
  return fmt::format("{} ({}), {:.2f} g CO2", energy, source == "rapl" ? "RAPL" : "estimate", co2_g);
}

EnergyMeter::EnergyMeter(EnergyOptions options)
    : options_(std::move(options)),
      rapl_start_(read_rapl(options_.powercap_root)),
      cpu_start_(process_cpu_seconds()),
      wall_start_(Clock::now()) {}

ProcessUsage EnergyMeter::usage_now() const {
  return {.cpu_seconds = process_cpu_seconds() - cpu_start_,
          .wall_seconds = seconds_since(wall_start_),
          .peak_rss_bytes = static_cast<double>(peak_rss_bytes())};
}

EnergyReport EnergyMeter::report(double rapl_joules, bool all_rapl, const ProcessUsage& usage) const {
  EnergyReport r;
  r.source = all_rapl ? "rapl" : "estimate";
  r.joules = all_rapl ? rapl_joules : estimate_joules(usage, options_.watts_per_core());
  r.cpu_seconds = usage.cpu_seconds;
  r.wall_seconds = usage.wall_seconds;
  r.peak_rss_bytes = usage.peak_rss_bytes;
  r.watts_per_core = all_rapl ? 0 : options_.watts_per_core();
  r.grid_intensity = options_.grid_intensity;
  r.co2_g = r.joules / 3.6e6 * options_.grid_intensity;
  return r;
}

EnergyReport EnergyMeter::finish_local() const {
  const bool rapl = !rapl_start_.empty();
  return report(rapl ? rapl_joules_between(rapl_start_, read_rapl(options_.powercap_root)) : 0, rapl,
                usage_now());
}

EnergyReport EnergyMeter::finish(comm::Context& context) const {
  if (context.world() == 1) return finish_local();
  const ProcessUsage mine = usage_now();
  const bool rapl = !rapl_start_.empty();
  // Summed over ranks: RAPL joules (a node's counters once, from its first rank), ranks without counters,
  // CPU seconds, and the estimates (each rank's memory term with its own peak).
  double sums[4] = {rapl && context.node_rank() == 0
                        ? rapl_joules_between(rapl_start_, read_rapl(options_.powercap_root))
                        : 0,
                    rapl ? 0.0 : 1.0, mine.cpu_seconds, estimate_joules(mine, options_.watts_per_core())};
  comm::allreduce_sum(context, sums, 4, "summing the energy used");
  EnergyReport r = report(
      sums[0], sums[1] == 0,
      {.cpu_seconds = sums[2], .wall_seconds = mine.wall_seconds, .peak_rss_bytes = mine.peak_rss_bytes});
  if (r.source == "estimate") {
    r.joules = sums[3];
    r.co2_g = r.joules / 3.6e6 * options_.grid_intensity;
  }
  return r;
}

nlohmann::json end_metrics_record(const nlohmann::json& summary) {
  nlohmann::json r = {{"step", summary.value("step", 0)}, {"status", summary.value("status", "completed")}};
  for (const char* key : {"wall_s", "peak_rss_mib", "cpu_s", "energy_j", "energy_source", "co2_g",
                          "grid_intensity", "cpu_watts_per_core"}) {
    if (summary.contains(key)) r[key] = summary[key];
  }
  return r;
}

}  // namespace triad
