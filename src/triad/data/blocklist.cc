#include "triad/data/blocklist.h"

#include <algorithm>
#include <cctype>

#include "triad/core/error.h"
#include "triad/core/file_io.h"

namespace triad {

namespace {
// Python's \w on ASCII, and every non-ASCII byte (letters of other scripts are \w there too).
bool is_word_byte(unsigned char c) {
  return std::isalnum(c) || c == '_' || c >= 0x80;
}
}  // namespace

Blocklist::Blocklist(const std::vector<std::string>& phrases) {
  nodes_.emplace_back();
  std::fill(std::begin(nodes_[0].next), std::end(nodes_[0].next), -1);
  for (const auto& raw : phrases) {
    std::string phrase = raw;
    for (auto& c : phrase) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (phrase.empty()) continue;
    int node = 0;
    for (unsigned char c : phrase) {
      if (nodes_[node].next[c] < 0) {
        nodes_[node].next[c] = static_cast<int>(nodes_.size());
        nodes_.emplace_back();
        std::fill(std::begin(nodes_.back().next), std::end(nodes_.back().next), -1);
      }
      node = nodes_[node].next[c];
    }
    if (!nodes_[node].terminal) ++phrases_;
    nodes_[node].terminal = true;
  }
}

Blocklist Blocklist::load(const std::string& path) {
  if (!path_exists(path))
    fail_usage("blocklist {} does not exist (run scripts/fetch-corpus, or --blocklist off)", path);
  std::string text = read_file(path);
  std::vector<std::string> phrases;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (!line.empty()) phrases.push_back(line);
    start = end + 1;
  }
  if (phrases.empty()) fail("blocklist {} is empty", path);
  return Blocklist(phrases);
}

bool Blocklist::matches(std::string_view lower) const {
  const auto* s = reinterpret_cast<const unsigned char*>(lower.data());
  const size_t n = lower.size();
  for (size_t start = 0; start < n; ++start) {
    if (start > 0 && is_word_byte(s[start - 1])) continue;  // a match must start at a word boundary
    int node = 0;
    for (size_t i = start; i < n; ++i) {
      node = nodes_[node].next[s[i]];
      if (node < 0) break;
      if (nodes_[node].terminal && (i + 1 == n || !is_word_byte(s[i + 1]))) return true;
    }
  }
  return false;
}

}  // namespace triad
