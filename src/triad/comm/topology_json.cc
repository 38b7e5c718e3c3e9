#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "triad/comm/topology.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"

namespace triad::comm {

namespace {

[[noreturn]] void bad_field(const std::string& where, const std::string& field, const std::string& expected) {
  fail("{}: field '{}' must be {}", where, field, expected);
}

double number(const nlohmann::json& json, const std::string& where, const std::string& field, double min) {
  if (!json.is_number() || !(json.get<double>() >= min))
    bad_field(where, field, fmt::format("a number >= {}", min));
  return json.get<double>();
}

std::vector<std::vector<double>> matrix(const nlohmann::json& json, const std::string& key, int world,
                                        const std::string& where, bool positive) {
  if (!json.contains(key) || !json[key].is_array() || json[key].size() != static_cast<size_t>(world)) {
    bad_field(where, key, fmt::format("a {}x{} array of arrays", world, world));
  }
  std::vector<std::vector<double>> m(world, std::vector<double>(world));
  for (int i = 0; i < world; ++i) {
    const nlohmann::json& row = json[key][i];
    if (!row.is_array() || row.size() != static_cast<size_t>(world)) {
      bad_field(where, fmt::format("{}[{}]", key, i), fmt::format("an array of {} numbers", world));
    }
    for (int j = 0; j < world; ++j) {
      std::string field = fmt::format("{}[{}][{}]", key, i, j);
      m[i][j] = number(row[j], where, field, 0);
      if (positive && i != j && m[i][j] <= 0) bad_field(where, field, "positive off the diagonal");
    }
  }
  return m;
}

}  // namespace

nlohmann::json topology_to_json(const Topology& t) {
  nlohmann::json ranks = nlohmann::json::array();
  for (size_t r = 0; r < t.ranks.size(); ++r) {
    const RankInfo& info = t.ranks[r];
    ranks.push_back({{"rank", r},
                     {"host", info.host},
                     {"node", info.node},
                     {"sgemm_gflops", info.sgemm_gflops},
                     {"sgemm_alone_gflops", info.sgemm_alone_gflops},
                     {"codec_ns_per_float", info.codec_ns_per_float},
                     {"cpus", info.cpus}});
    if (!t.micro_step_of.is_null()) {
      ranks.back()["micro_step_alone_ms"] = info.micro_step_alone_ms;
      ranks.back()["micro_step_at_once_ms"] = info.micro_step_at_once_ms;
    }
  }
  nlohmann::json out = {{"format", "triad-topology/1"},
                        {"world", t.world},
                        {"ranks", ranks},
                        {"latency_us", t.latency_us},
                        {"bandwidth_MBps", t.bandwidth_MBps}};
  if (!t.micro_step_of.is_null()) out["micro_step_of"] = t.micro_step_of;
  return out;
}

Topology topology_from_json(const nlohmann::json& json, const std::string& where) {
  if (!json.is_object() || json.value("format", "") != "triad-topology/1") {
    bad_field(where, "format", "\"triad-topology/1\" (write the file with triad probe)");
  }
  Topology t;
  if (!json.contains("world") || !json["world"].is_number_integer() || json["world"].get<int>() < 1) {
    bad_field(where, "world", "a positive integer");
  }
  t.world = json["world"].get<int>();
  if (!json.contains("ranks") || !json["ranks"].is_array() ||
      json["ranks"].size() != static_cast<size_t>(t.world)) {
    bad_field(where, "ranks", fmt::format("an array of {} objects", t.world));
  }
  for (int r = 0; r < t.world; ++r) {
    const nlohmann::json& rank = json["ranks"][r];
    std::string field = fmt::format("ranks[{}]", r);
    if (!rank.is_object()) bad_field(where, field, "an object");
    RankInfo info;
    info.host = rank.value("host", "");
    if (!rank.contains("node") || !rank["node"].is_number_integer() || rank["node"].get<int>() < 0) {
      bad_field(where, field + ".node", "an integer >= 0");
    }
    info.node = rank["node"].get<int>();
    info.sgemm_gflops =
        number(rank.value("sgemm_gflops", nlohmann::json()), where, field + ".sgemm_gflops", 0);
    if (rank.contains("sgemm_alone_gflops")) {  // optional: files written before the probe measured it
      info.sgemm_alone_gflops = number(rank["sgemm_alone_gflops"], where, field + ".sgemm_alone_gflops", 0);
    }
    const nlohmann::json& codecs = rank.value("codec_ns_per_float", nlohmann::json::object());
    for (const char* codec : {"fp16", "int8", "topk", "powersgd"}) {
      info.codec_ns_per_float[codec] =
          number(codecs.value(codec, nlohmann::json()), where, field + ".codec_ns_per_float." + codec, 0);
    }
    // Optional: with a micro_step_of.
    for (auto [key, value] : {std::pair{"micro_step_alone_ms", &info.micro_step_alone_ms},
                              std::pair{"micro_step_at_once_ms", &info.micro_step_at_once_ms}}) {
      if (json.contains("micro_step_of"))
        *value = number(rank.value(key, nlohmann::json()), where, field + "." + key, 0);
    }
    // Optional: files written before the probe recorded it.
    const nlohmann::json cpus = rank.value("cpus", nlohmann::json::array());
    if (!cpus.is_array()) bad_field(where, field + ".cpus", "an array of CPU numbers >= 0");
    for (const nlohmann::json& cpu : cpus) {
      if (!cpu.is_number_integer() || cpu.get<int>() < 0) {
        bad_field(where, field + ".cpus", "an array of CPU numbers >= 0");
      }
      info.cpus.push_back(cpu.get<int>());
    }
    t.ranks.push_back(info);
  }
  if (json.contains("micro_step_of")) {
    const nlohmann::json& of = json["micro_step_of"];
    if (!of.is_object() || !of.contains("model") || !of["model"].is_object() ||
        !of.value("micro_batch", nlohmann::json()).is_number_integer()) {
      bad_field(where, "micro_step_of", "an object with the timed model's \"model\" and its \"micro_batch\"");
    }
    t.micro_step_of = of;
  }
  t.latency_us = matrix(json, "latency_us", t.world, where, false);
  t.bandwidth_MBps = matrix(json, "bandwidth_MBps", t.world, where, true);
  return t;
}

Topology load_topology(const std::string& path) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: not valid JSON: {}", path, e.what());
  }
  return topology_from_json(json, path);
}

}  // namespace triad::comm
