#pragma once
// Identity-term lists: which words or phrases in a text mark it as mentioning an identity group. A TOML file
// with one table per protected attribute, each key a group and its value the group's terms:
//
//   [religion]
//   muslim = ["muslim", "muslims", "islam"]
//
// Tagging is case-insensitive on whole words: the text is split at every character that is not an ASCII
// letter or digit (bytes of other UTF-8 characters count as letters, except the typographic apostrophes
// U+2018/U+2019), so "Muslim's" is the words "muslim" "s". A multi-word term matches its words in a row.
// At each position the longest matching term wins and uses up its words, so "african american" tags the
// group of that phrase and not also the groups of "african" and "american".

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace triad::fairness {

struct IdentityGroup {
  std::string name;                // "muslim"
  std::string attribute;           // "religion"
  std::vector<std::string> terms;  // as written in the file
};

class IdentityTerms {
 public:
  // The term list in `path`; a malformed file, a term in two groups or a group name used twice fails naming
  // "file:line:column".
  static IdentityTerms load(const std::string& path);
  // The same from text already read (`path` names it in errors).
  static IdentityTerms parse(std::string_view toml_text, const std::string& path);

  // Groups in the order the file lists them.
  const std::vector<IdentityGroup>& groups() const { return groups_; }
  // The index of the group called `name`, or -1.
  int find_group(std::string_view name) const;
  // The indices of the groups `text` mentions, ascending, each once.
  std::vector<int> tag(std::string_view text) const;

 private:
  std::vector<IdentityGroup> groups_;
  std::unordered_map<std::string, int> group_of_phrase_;  // a term's words joined by single spaces
  size_t max_words_ = 0;                                  // the longest term, in words
};

// The words of `text` as tagging sees them: lower-cased, split at non-alphanumerics.
std::vector<std::string> identity_words(std::string_view text);

}  // namespace triad::fairness
