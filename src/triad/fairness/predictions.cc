#include "triad/fairness/predictions.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_set>
#include <utility>

#include "triad/core/error.h"
#include "triad/core/file_io.h"

namespace triad::fairness {

namespace {

// nlohmann's message without its "[json.exception.parse_error.101] " prefix.
std::string json_message(const std::exception& e) {
  std::string m = e.what();
  if (m.starts_with("[json.exception.")) {
    const size_t close = m.find("] ");
    if (close != std::string::npos) m = m.substr(close + 2);
  }
  return m;
}

std::string shown(const nlohmann::json& v) {
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

}  // namespace

void write_predictions(const std::string& path, std::span<const std::string> ids,
                       std::span<const int8_t> labels, std::span<const double> scores,
                       const std::vector<Subgroup>& subgroups) {
  const size_t n = scores.size();
  if (ids.size() != n) fail("write_predictions {}: {} ids for {} scores", path, ids.size(), n);
  if (!labels.empty() && labels.size() != n)
    fail("write_predictions {}: {} labels for {} scores", path, labels.size(), n);
  std::vector<std::string> attributes;
  for (const Subgroup& s : subgroups) {
    if (s.member.size() != n)
      fail("write_predictions {}: subgroup '{}' of '{}' has {} member flags for {} examples", path, s.name,
           s.attribute, s.member.size(), n);
    if (std::find(attributes.begin(), attributes.end(), s.attribute) == attributes.end())
      attributes.push_back(s.attribute);
  }
  AtomicFile file(path);
  std::string line;
  for (size_t i = 0; i < n; ++i) {
    if (!(scores[i] >= 0 && scores[i] <= 1))
      fail("write_predictions {}: example {} ({}): score {} is not in [0, 1]", path, i, ids[i], scores[i]);
    nlohmann::ordered_json j;
    j["id"] = ids[i];
    const int8_t label = labels.empty() ? kNoLabel : labels[i];
    if (label == 0 || label == 1) {
      j["label"] = static_cast<int>(label);
    } else if (label != kNoLabel) {
      fail("write_predictions {}: example {} ({}): label {} is not 0, 1 or unknown", path, i, ids[i], label);
    }
    j["score"] = scores[i];
    nlohmann::ordered_json identities = nlohmann::ordered_json::object();
    for (const std::string& a : attributes) identities[a] = nlohmann::ordered_json::array();
    for (const Subgroup& s : subgroups) {
      if (s.member[i]) identities[s.attribute].push_back(s.name);
    }
    j["identities"] = std::move(identities);
    line = j.dump();
    line += '\n';
    file.write(line);
  }
  file.commit();
}

Predictions read_predictions(const std::string& path) {
  const std::string text = read_file(path);
  Predictions p;
  std::map<std::pair<std::string, std::string>, std::vector<uint32_t>> members;  // (attribute, group)
  std::unordered_set<std::string> seen_ids;
  size_t line_no = 0;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + start, end - start);
    start = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = fmt::format("{}:{}", path, line_no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      fail("{}: not a JSON object: {}", where, json_message(e));
    }
    if (!j.is_object()) fail("{}: expected a JSON object, got {}", where, shown(j));
    auto bad = [&](const char* field, const char* expected, const nlohmann::json& got) {
      fail("{}: field '{}': expected {}, got {}", where, field, expected, shown(got));
    };

    auto id = j.find("id");
    if (id == j.end()) fail("{}: field 'id' is missing (a string naming the example)", where);
    if (!id->is_string()) bad("id", "a string", *id);
    std::string id_text = id->get<std::string>();
    if (!seen_ids.insert(id_text).second) fail("{}: field 'id': \"{}\" appears twice", where, id_text);

    int8_t label = kNoLabel;
    if (auto l = j.find("label"); l != j.end() && !l->is_null()) {
      if (l->is_boolean()) {
        label = l->get<bool>();
      } else if (l->is_number() && (l->get<double>() == 0 || l->get<double>() == 1)) {
        label = static_cast<int8_t>(l->get<double>());
      } else {
        bad("label", "0, 1 or null (threshold a fractional target before writing it)", *l);
      }
    }

    auto score = j.find("score");
    if (score == j.end()) fail("{}: field 'score' is missing (the probability of the positive class)", where);
    if (!score->is_number() || !(score->get<double>() >= 0 && score->get<double>() <= 1))
      bad("score", "a number in [0, 1]", *score);

    const uint32_t index = static_cast<uint32_t>(p.scores.size());
    if (auto ids = j.find("identities"); ids != j.end() && !ids->is_null()) {
      if (!ids->is_object()) bad("identities", "an object of attribute: [group, ...]", *ids);
      for (const auto& [attribute, groups] : ids->items()) {
        const std::string field = "identities." + attribute;
        if (attribute.empty()) fail("{}: field 'identities': an attribute with an empty name", where);
        if (!groups.is_array()) bad(field.c_str(), "a list of group names", groups);
        for (const nlohmann::json& g : groups) {
          if (!g.is_string() || g.get<std::string>().empty()) bad(field.c_str(), "group names (strings)", g);
          std::vector<uint32_t>& list = members[{attribute, g.get<std::string>()}];
          if (list.empty() || list.back() != index) list.push_back(index);
        }
      }
    }
    p.ids.push_back(std::move(id_text));
    p.labels.push_back(label);
    p.scores.push_back(score->get<double>());
  }
  if (p.scores.empty()) fail("{}: no predictions in the file", path);
  for (const auto& [key, list] : members) {
    Subgroup& s = p.subgroups.emplace_back();
    s.attribute = key.first;
    s.name = key.second;
    s.member.assign(p.scores.size(), 0);
    for (uint32_t i : list) s.member[i] = 1;
  }
  return p;
}

}  // namespace triad::fairness
