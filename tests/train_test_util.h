#pragma once
// What the end-to-end training tests share: the tiny run's flags, training on two ranks, and reading a run's
// metrics.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_util.h"

namespace triad::testing {

inline std::string train_args(const std::string& run, const std::string& extra) {
  return tiny_train_args(run, extra);
}

// Trains on 2 ranks (one thread each, no evaluation) and expects success.
inline void train_on_two_ranks(const std::string& run, const std::string& flags) {
  auto r = run_triad_mpi(2, train_args(run, "--eval-every 0 --threads 1 " + flags));
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// The step and eval records of RUN/metrics.jsonl (the end record, with the run's energy, left out).
inline std::vector<nlohmann::json> metrics(const std::string& run) {
  std::vector<nlohmann::json> records = read_jsonl(run + "/metrics.jsonl");
  std::erase_if(records, [](const nlohmann::json& r) { return r.contains("energy_j"); });
  return records;
}

inline std::vector<double> losses(const std::string& run) {
  std::vector<double> out;
  for (const auto& m : metrics(run)) {
    if (m.contains("loss")) out.push_back(m["loss"].get<double>());
  }
  return out;
}

}  // namespace triad::testing
