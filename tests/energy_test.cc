// Energy per run (train/energy.h): the estimate against a hand computation, RAPL counters read from a fake
// sysfs (wrap-around included), and a training run's end record and audit entry.

#include "triad/train/energy.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "test_util.h"

namespace triad {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_text;

TEST(Energy, EstimateIsCpuTimeTimesWattsPlusMemoryPowerTimesWallTime) {
  // 100 CPU seconds at 10 W = 1000 J; 4 GiB at 3 W / 8 GiB for 50 s = 1.5 W x 50 s = 75 J.
  const ProcessUsage usage{.cpu_seconds = 100, .wall_seconds = 50, .peak_rss_bytes = 4.0 * (1ull << 30)};
  EXPECT_DOUBLE_EQ(estimate_joules(usage, 10.0), 1075.0);
  EXPECT_DOUBLE_EQ(estimate_joules({.cpu_seconds = 3, .wall_seconds = 0, .peak_rss_bytes = 1e9}, 2.5), 7.5);
}

TEST(Energy, DefaultWattsPerCoreSpreadCodeCarbonsFigureOverTheThreads) {
  EnergyOptions o;
  const double threads = kDefaultCpuWatts / o.watts_per_core();
  EXPECT_GE(threads, 1.0);
  EXPECT_DOUBLE_EQ(threads, std::round(threads));
  o.cpu_watts_per_core = 7;
  EXPECT_EQ(o.watts_per_core(), 7);
}

// A fake /sys/class/powercap: zone -> (energy_uj, max_energy_range_uj, name).
void write_zone(const std::string& root, const std::string& zone, uint64_t energy, uint64_t range,
                const std::string& name) {
  fs::create_directories(root + "/" + zone);
  write_text(root + "/" + zone + "/energy_uj", std::to_string(energy) + "\n");
  write_text(root + "/" + zone + "/max_energy_range_uj", std::to_string(range) + "\n");
  write_text(root + "/" + zone + "/name", name + "\n");
}

TEST(Energy, ReadsPackageZonesOnlyAndUnwrapsCounters) {
  TempDir dir;
  const std::string root = dir / "powercap";
  write_zone(root, "intel-rapl:0", 9'000'000, 10'000'000, "package-0");
  write_zone(root, "intel-rapl:1", 2'000'000, 50'000'000, "package-1");
  write_zone(root, "intel-rapl:0:0", 123, 10'000'000, "core");  // a sub-zone: inside package 0
  write_zone(root, "intel-rapl:2", 5, 10'000'000, "psys");      // the platform: packages again
  std::vector<RaplCounter> start = read_rapl(root);
  ASSERT_EQ(start.size(), 2u);
  EXPECT_EQ(start[0].zone, "intel-rapl:0");
  EXPECT_EQ(start[0].energy_uj, 9'000'000u);
  EXPECT_EQ(start[1].max_energy_range_uj, 50'000'000u);

  EnergyOptions options;
  options.powercap_root = root;
  options.grid_intensity = 360;
  EnergyMeter meter(options);
  // Package 0 wrapped: 9.0 J -> 10.0 J (the range) -> 0.5 J is 1.5 J; package 1 grew 3.5 J.
  write_zone(root, "intel-rapl:0", 500'000, 10'000'000, "package-0");
  write_zone(root, "intel-rapl:1", 5'500'000, 50'000'000, "package-1");
  write_zone(root, "intel-rapl:0:0", 9'999'999, 10'000'000, "core");
  EXPECT_DOUBLE_EQ(rapl_joules_between(start, read_rapl(root)), 5.0);
  const EnergyReport r = meter.finish_local();
  EXPECT_EQ(r.source, "rapl");
  EXPECT_DOUBLE_EQ(r.joules, 5.0);
  EXPECT_DOUBLE_EQ(r.co2_g, 5.0 / 3.6e6 * 360);
  EXPECT_EQ(r.to_json()["energy_source"], "rapl");
  EXPECT_EQ(r.describe().find("estimate"), std::string::npos);
}

TEST(Energy, WithoutReadableCountersTheRunIsEstimatedAndSaysSo) {
  TempDir dir;
  EnergyOptions options;
  options.powercap_root = dir / "none";
  options.cpu_watts_per_core = 20;
  EXPECT_TRUE(read_rapl(options.powercap_root).empty());
  // A zone whose counter cannot be read (root-only on recent kernels) is no reading at all.
  fs::create_directories(dir / "unreadable/intel-rapl:0");
  EXPECT_TRUE(read_rapl(dir / "unreadable").empty());

  EnergyMeter meter(options);
  volatile double sink = 0;
  for (int i = 0; i < 20'000'000; ++i) sink = sink + i * 1e-9;  // some CPU time to charge
  const EnergyReport r = meter.finish_local();
  EXPECT_EQ(r.source, "estimate");
  EXPECT_GT(r.cpu_seconds, 0);
  const double memory_joules = kMemoryWattsPerGiB * r.peak_rss_bytes / double(1ull << 30) * r.wall_seconds;
  EXPECT_NEAR(r.joules, r.cpu_seconds * 20 + memory_joules, 1e-9);
  EXPECT_DOUBLE_EQ(r.co2_g, r.joules / 3.6e6 * 475);
  EXPECT_NE(r.describe().find("(estimate)"), std::string::npos) << r.describe();
  EXPECT_EQ(r.to_json()["cpu_watts_per_core"], 20);
}

TEST(Energy, TrainingEndsItsMetricsAndAuditLogWithTheEnergy) {
  TempDir dir;
  const std::string run = dir / "run";
  auto r = testing::run_triad(
      testing::tiny_train_args(run, "--steps 3 --eval-every 3 --cpu-watts-per-core 5 --grid-intensity 100"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto records = testing::read_jsonl(run + "/metrics.jsonl");
  ASSERT_FALSE(records.empty());
  const nlohmann::json& end = records.back();
  EXPECT_EQ(end["step"], 3);
  EXPECT_EQ(end["energy_source"], "estimate");  // this machine has no RAPL; tests never rely on it
  const double cpu = end["cpu_s"], wall = end["wall_s"], rss_gib = end["peak_rss_mib"].get<double>() / 1024;
  EXPECT_GT(cpu, 0);
  EXPECT_NEAR(end["energy_j"].get<double>(), cpu * 5 + kMemoryWattsPerGiB * rss_gib * wall, 1e-6);
  EXPECT_NEAR(end["co2_g"].get<double>(), end["energy_j"].get<double>() / 3.6e6 * 100, 1e-9);

  bool logged = false;
  for (const auto& e : testing::read_jsonl(run + "/audit/log.jsonl")) {
    if (e["kind"] != "run_end") continue;
    logged = true;
    EXPECT_EQ(e["payload"]["energy_source"], "estimate");
    EXPECT_EQ(e["payload"]["energy_j"], end["energy_j"]);
  }
  EXPECT_TRUE(logged);
}

}  // namespace
}  // namespace triad
