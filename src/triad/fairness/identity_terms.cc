#include "triad/fairness/identity_terms.h"

#include <toml++/toml.h>
#include <algorithm>

#include "triad/core/error.h"
#include "triad/core/file_io.h"

namespace triad::fairness {

namespace {

std::string where(const std::string& path, const toml::source_region& source) {
  return fmt::format("{}:{}:{}", path, source.begin.line, source.begin.column);
}

bool is_word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

// The typographic apostrophes U+2018 and U+2019 (E2 80 98/99 in UTF-8) separate words as "'" does.
bool is_curly_apostrophe(std::string_view text, size_t i) {
  return i + 2 < text.size() && static_cast<unsigned char>(text[i]) == 0xE2 &&
         static_cast<unsigned char>(text[i + 1]) == 0x80 &&
         (static_cast<unsigned char>(text[i + 2]) == 0x98 || static_cast<unsigned char>(text[i + 2]) == 0x99);
}

}  // namespace

std::vector<std::string> identity_words(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = text[i];
    const bool apostrophe = is_curly_apostrophe(text, i);
    if (is_word_byte(c) && !apostrophe) {
      word += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c);
      continue;
    }
    if (apostrophe) i += 2;
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

namespace {

std::string join_words(const std::vector<std::string>& words, size_t begin, size_t count) {
  std::string joined = words[begin];
  for (size_t k = 1; k < count; ++k) joined += ' ' + words[begin + k];
  return joined;
}

}  // namespace

IdentityTerms IdentityTerms::load(const std::string& path) {
  if (!path_exists(path)) fail_usage("identity terms {}: no such file", path);
  return parse(read_file(path), path);
}

IdentityTerms IdentityTerms::parse(std::string_view toml_text, const std::string& path) {
  toml::table table;
  try {
    table = toml::parse(toml_text, path);
  } catch (const toml::parse_error& e) {
    fail_usage("{}: {}", where(path, e.source()), e.description());
  }
  // toml++ keeps keys sorted; the file's own order is the order users expect in reports.
  struct Entry {
    toml::source_position at;
    std::string attribute, group;
    const toml::node* terms;
  };
  std::vector<Entry> entries;
  for (const auto& [attribute, node] : table) {
    const toml::table* groups = node.as_table();
    if (!groups) {
      fail_usage("{}: '{}' must be a table of groups ([{}] then group = [\"term\", ...])",
                 where(path, attribute.source()), attribute.str(), attribute.str());
    }
    for (const auto& [group, terms] : *groups) {
      entries.push_back(
          {group.source().begin, std::string(attribute.str()), std::string(group.str()), &terms});
    }
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.at.line != b.at.line ? a.at.line < b.at.line : a.at.column < b.at.column;
  });

  IdentityTerms list;
  std::unordered_map<std::string, std::string> where_phrase;  // the phrase's first place, for the error
  for (const Entry& entry : entries) {
    const std::string at = fmt::format("{}:{}:{}", path, entry.at.line, entry.at.column);
    if (list.find_group(entry.group) >= 0) {
      fail_usage("{}: group '{}' is already in attribute '{}' (group names must be unique)", at, entry.group,
                 list.groups_[list.find_group(entry.group)].attribute);
    }
    const toml::array* terms = entry.terms->as_array();
    if (!terms || terms->empty()) {
      fail_usage("{}: [{}] {} must be a non-empty list of terms, e.g. {} = [\"{}\"]", at, entry.attribute,
                 entry.group, entry.group, entry.group);
    }
    const int index = static_cast<int>(list.groups_.size());
    IdentityGroup group{entry.group, entry.attribute, {}};
    for (const toml::node& term_node : *terms) {
      const std::string term_at = where(path, term_node.source());
      const auto* term = term_node.as_string();
      if (!term) fail_usage("{}: [{}] {}: each term must be a string", term_at, entry.attribute, entry.group);
      const std::vector<std::string> words = identity_words(term->get());
      if (words.empty()) {
        fail_usage("{}: [{}] {}: term \"{}\" has no letters or digits", term_at, entry.attribute, entry.group,
                   term->get());
      }
      const std::string phrase = join_words(words, 0, words.size());
      auto [it, added] = list.group_of_phrase_.emplace(phrase, index);
      if (!added) {
        const int other = it->second;
        fail_usage("{}: term \"{}\" is already in group '{}' at {}", term_at, term->get(),
                   other == index ? group.name : list.groups_[other].name, where_phrase[phrase]);
      }
      where_phrase[phrase] = term_at;
      list.max_words_ = std::max(list.max_words_, words.size());
      group.terms.push_back(term->get());
    }
    list.groups_.push_back(std::move(group));
  }
  if (list.groups_.empty()) fail_usage("{}: no identity groups (expected [attribute] tables)", path);
  return list;
}

int IdentityTerms::find_group(std::string_view name) const {
  for (size_t g = 0; g < groups_.size(); ++g) {
    if (groups_[g].name == name) return static_cast<int>(g);
  }
  return -1;
}

std::vector<int> IdentityTerms::tag(std::string_view text) const {
  const std::vector<std::string> words = identity_words(text);
  std::vector<int> found;
  for (size_t i = 0; i < words.size();) {
    size_t used = 1;
    for (size_t n = std::min(max_words_, words.size() - i); n >= 1; --n) {
      auto it = group_of_phrase_.find(join_words(words, i, n));
      if (it == group_of_phrase_.end()) continue;
      found.push_back(it->second);
      used = n;
      break;
    }
    i += used;
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  return found;
}

}  // namespace triad::fairness
