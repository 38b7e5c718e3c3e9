#pragma once
// What the end-to-end training tests share: the tiny run's flags, training on two ranks, reading a run's
// metrics, and labelled sentences for the classifier.

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_util.h"

namespace triad::testing {

inline std::string train_args(const std::string& run, const std::string& extra) {
  return tiny_train_args(run, extra);
}

// a[i] and b[i] agree to `rel` of a[i], entry by entry (entry i is step i + 1 for a run's losses).
inline void expect_near_relative(const std::vector<double>& a, const std::vector<double>& b, double rel) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], rel * std::abs(a[i])) << "entry " << i;
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

// Labelled sentences for the classifier tests, "the <who> is <adjective>": the adjective decides the label
// (columns id,text,label); `salt` shifts which sentences come out.
inline void write_sentences(const std::string& path, int n, int salt) {
  const char* who[] = {"muslim", "christian", "woman", "man", "person", "friend"};
  const char* good[] = {"kind", "wonderful", "honest", "happy"};
  const char* bad[] = {"awful", "stupid", "ugly", "evil"};
  std::ofstream out(path);
  out << "id,text,label\n";
  for (int i = 0; i < n; ++i) {
    const int k = (i * 7 + salt) % 6, label = (i / 2 + salt) % 2, adjective = (i / 4 + salt) % 4;
    out << i << ",\"the " << who[k] << " is " << (label ? bad[adjective] : good[adjective]) << "\"," << label
        << "\n";
  }
}

}  // namespace triad::testing
