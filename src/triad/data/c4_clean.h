#pragma once
// C4-style cleaning (Raffel et al. 2019, §2.2; constants from TFDS c4_utils), each rule counted on its own.
//
// Per page, in parallel (clean_page):
//   line rules   drop a line: a word over 1000 characters, no terminal punctuation (. ? ! "), ending in an
//                ellipsis, fewer than 5 words, containing "javascript", cookie/privacy-policy boilerplate;
//                Wikipedia-style citations ("[1]", "[edit]", "[citation needed]") are cut from lines first.
//   page rules   drop the page: "lorem ipsum", a curly bracket, fewer than 3 sentences, a blocklisted word,
//                not English (CLD2).
// Across pages, in input order (SpanDeduper): a line holding a three-sentence span already seen is dropped;
// a page left with fewer than 3 sentences is dropped. Last, the paper's rule: pages under --min-chars
// characters are dropped.
//
// Order differs from TFDS in one place, on purpose: the language and blocklist rules run before the
// deduplication, so a page that is dropped anyway never removes lines from another page.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "triad/data/blocklist.h"

namespace triad {

enum class Rule : int {
  // line rules
  kLineLongWord,
  kLineNoTerminalPunctuation,
  kLineEllipsis,
  kLineTooFewWords,
  kLineJavascript,
  kLinePolicy,
  kLineDuplicateSpan,
  // page rules
  kPageLoremIpsum,
  kPageCurlyBracket,
  kPageTooFewSentences,
  kPageBlocklisted,
  kPageNotEnglish,
  kPageEmptiedByDedupe,
  kPageTooShort,
  kCount
};
inline constexpr int kRuleCount = static_cast<int>(Rule::kCount);
const char* rule_name(Rule rule);
bool is_line_rule(Rule rule);

struct RuleCounts {
  std::array<uint64_t, kRuleCount> n{};
  uint64_t& operator[](Rule r) { return n[static_cast<int>(r)]; }
  uint64_t operator[](Rule r) const { return n[static_cast<int>(r)]; }
  void add(const RuleCounts& other) {
    for (int i = 0; i < kRuleCount; ++i) n[i] += other.n[i];
  }
};

struct CleanOptions {
  bool c4 = true;                        // --clean c4 (false: --clean none, no rule but min_chars)
  const Blocklist* blocklist = nullptr;  // --blocklist on; nullptr for off (C4's en.noblocklist)
  size_t min_chars = 128;
};

// A three-sentence span of a cleaned page: its hash and the lines its sentences sit on.
struct Span {
  uint64_t hash;
  uint32_t first_line, last_line;
};

struct CleanedPage {
  bool kept = false;
  std::vector<std::string> lines;
  std::vector<Span> spans;  // filled when kept and c4 cleaning is on
  std::string text() const;
};

CleanedPage clean_page(std::string_view text, const CleanOptions& options, RuleCounts* counts);

// Cross-page deduplication of three-sentence spans; call in input order for a deterministic result.
class SpanDeduper {
 public:
  void apply(CleanedPage* page, RuleCounts* counts);
  size_t spans_seen() const { return seen_.size(); }

 private:
  std::unordered_set<uint64_t> seen_;
};

// The last rule: drops pages under min_chars characters (code points).
void apply_min_chars(CleanedPage* page, const CleanOptions& options, RuleCounts* counts);

// Sentence boundaries inside one line: a terminal mark (. ! ?), optional closing quotes or brackets, then a
// space before an upper-case letter, a digit or an opening quote, except after common abbreviations and
// initials ("Mr.", "U.S.", "J."). An approximation of the punkt tokenizer TFDS uses.
std::vector<std::string_view> split_sentences(std::string_view line);

size_t count_code_points(std::string_view utf8);

}  // namespace triad
