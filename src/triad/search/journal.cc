#include "triad/search/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>

#include "triad/core/error.h"
#include "triad/core/file_io.h"

namespace triad::search {

nlohmann::json TrialRecord::to_json() const {
  nlohmann::json j = {{"kind", "trial"},
                      {"trial", trial},
                      {"x", x},
                      {"args", args},
                      {"command", command},
                      {"status", status},
                      {"feasible", feasible},
                      {"metrics", metrics},
                      {"fitness", fitness},
                      {"hypervolume", hypervolume}};
  if (!error.empty()) j["error"] = error;
  if (!energy_source.empty()) j["energy_source"] = energy_source;
  return j;
}

TrialRecord TrialRecord::from_json(const nlohmann::json& j) {
  TrialRecord t;
  t.trial = j.at("trial").get<int>();
  t.x = j.at("x").get<std::vector<double>>();
  t.args = j.at("args").get<std::vector<std::string>>();
  t.command = j.at("command").get<std::string>();
  t.status = j.at("status").get<std::string>();
  t.feasible = j.at("feasible").get<bool>();
  t.metrics = j.at("metrics").get<std::map<std::string, double>>();
  t.fitness = j.at("fitness").get<std::vector<double>>();
  t.error = j.value("error", "");
  t.energy_source = j.value("energy_source", "");
  t.hypervolume = j.value("hypervolume", 0.0);
  return t;
}

std::string trial_key(const std::vector<std::string>& args) {
  return fmt::format("{}", fmt::join(args, "\x1f"));
}

Journal::Journal(const std::string& path, const nlohmann::json& header) : path_(path) {
  if (!path_exists(path_)) {
    write_file_atomic(path_, header.dump() + "\n");
    return;
  }
  const std::string text = read_file(path_);
  size_t begin = 0, line_number = 0, complete = 0;
  while (begin < text.size()) {
    const size_t end = text.find('\n', begin);
    if (end == std::string::npos) break;  // torn: written when the search was killed
    ++line_number;
    const auto j = nlohmann::json::parse(text.substr(begin, end - begin), nullptr, false);
    begin = end + 1;
    if (!j.is_object()) fail("{}:{}: not a JSON object; the journal is damaged", path_, line_number);
    if (line_number == 1) {
      for (const char* key : {"kind", "space_sha256", "algorithm", "seed", "population"}) {
        if (j.value(key, nlohmann::json()) != header.at(key)) {
          fail_usage(
              "{}: this search was run with {} = {}, the command gives {}; resume it with the same space, "
              "--algorithm, --seed and --population, or search into a new --out",
              path_, key, j.value(key, nlohmann::json()).dump(), header.at(key).dump());
        }
      }
    } else if (j.value("kind", "") == "generation") {
      last_generation_ = std::max(last_generation_, j.value("generation", 0));
    } else if (j.value("kind", "") == "trial") {
      try {
        TrialRecord t = TrialRecord::from_json(j);
        by_key_[trial_key(t.args)] = trials_.size();
        trials_.push_back(std::move(t));
      } catch (const nlohmann::json::exception& e) {
        fail("{}:{}: a trial record without its fields ({})", path_, line_number, e.what());
      }
    }
    complete = begin;
  }
  if (complete != text.size()) write_file_atomic(path_, text.substr(0, complete));
}

const TrialRecord* Journal::find(const std::vector<std::string>& args) const {
  auto it = by_key_.find(trial_key(args));
  return it == by_key_.end() ? nullptr : &trials_[it->second];
}

void Journal::append_line(const nlohmann::json& j) {
  const std::string line = j.dump() + "\n";
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) fail("cannot open {}: {}", path_, errno_text());
  const bool ok =
      ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  const std::string error = ok ? "" : errno_text();
  ::close(fd);
  if (!ok) fail("cannot append to {}: {}", path_, error);
}

void Journal::append(const TrialRecord& trial) {
  append_line(trial.to_json());
  by_key_[trial_key(trial.args)] = trials_.size();
  trials_.push_back(trial);
}

void Journal::append_generation(int generation, double hypervolume) {
  if (generation <= last_generation_) return;
  last_generation_ = generation;
  append_line({{"kind", "generation"},
               {"generation", generation},
               {"trials", trials_.size()},
               {"hypervolume", hypervolume}});
}

}  // namespace triad::search
