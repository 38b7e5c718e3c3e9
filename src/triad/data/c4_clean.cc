#include "triad/data/c4_clean.h"

#include <cld2/public/compact_lang_det.h>
#include <xxhash.h>

#include <algorithm>
#include <cctype>

namespace triad {

namespace {

constexpr size_t kMaxWordLength = 1000;
constexpr size_t kMinWordsPerLine = 5;
constexpr size_t kMinSentences = 3;
constexpr std::string_view kPolicySubstrings[] = {"terms of use", "privacy policy", "cookie policy",
                                                  "uses cookies", "use of cookies", "use cookies"};
constexpr std::string_view kAbbreviations[] = {
    "mr",   "mrs",  "ms",  "dr",  "prof", "sr",  "jr",     "st",   "mt",  "vs",  "etc", "e.g",
    "i.e",  "inc",  "ltd", "co",  "corp", "no",  "gen",    "gov",  "sen", "rep", "lt",  "col",
    "capt", "sgt",  "rev", "fig", "vol",  "jan", "feb",    "mar",  "apr", "jun", "jul", "aug",
    "sep",  "sept", "oct", "nov", "dec",  "ave", "approx", "dept", "est"};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Words as str.split() sees them; reports the longest.
size_t count_words(std::string_view line, size_t* longest) {
  size_t words = 0, run = 0;
  *longest = 0;
  for (char c : line) {
    if (is_space(c)) {
      run = 0;
    } else {
      if (run == 0) ++words;
      *longest = std::max(*longest, ++run);
    }
  }
  return words;
}

// Removes "[<digits>]", "[edit]" and "[citation needed]".
std::string remove_citations(std::string_view line) {
  std::string out;
  out.reserve(line.size());
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '[') {
      size_t close = line.find(']', i);
      if (close != std::string_view::npos) {
        std::string_view inner = line.substr(i + 1, close - i - 1);
        bool digits =
            std::all_of(inner.begin(), inner.end(), [](char c) { return std::isdigit((unsigned char)c); });
        if (digits || inner == "edit" || inner == "citation needed") {
          i = close;
          continue;
        }
      }
    }
    out += line[i];
  }
  return out;
}

bool is_english(std::string_view text) {
  bool reliable = false;
  CLD2::Language language = CLD2::DetectLanguage(text.data(), static_cast<int>(text.size()), true, &reliable);
  return language == CLD2::ENGLISH;
}

// The word right before position `end` (exclusive), lower-cased, e.g. "mr" in "Mr." or "u.s" in "U.S.".
std::string word_before(std::string_view line, size_t end) {
  size_t start = end;
  while (start > 0 && !is_space(line[start - 1]) && line[start - 1] != '(' && line[start - 1] != '"') --start;
  return to_lower(line.substr(start, end - start));
}

bool is_abbreviation(std::string_view line, size_t period) {
  std::string word = word_before(line, period);
  if (word.size() == 1 && std::isalpha(static_cast<unsigned char>(word[0]))) return true;  // an initial
  if (word.find('.') != std::string::npos && word.size() <= 5) return true;                // "u.s", "e.g"
  return std::find(std::begin(kAbbreviations), std::end(kAbbreviations), word) != std::end(kAbbreviations);
}

uint64_t hash_span(const std::vector<std::string_view>& sentences, size_t first) {
  std::string joined;
  for (size_t k = first; k < first + 3; ++k) {
    joined += to_lower(sentences[k]);
    joined += '\n';
  }
  return XXH3_64bits(joined.data(), joined.size());
}

// Sentences of the page's lines and the three-sentence spans over them.
size_t compute_spans(CleanedPage* page) {
  std::vector<std::string_view> sentences;
  std::vector<uint32_t> line_of;
  for (uint32_t i = 0; i < page->lines.size(); ++i) {
    for (auto s : split_sentences(page->lines[i])) {
      sentences.push_back(s);
      line_of.push_back(i);
    }
  }
  page->spans.clear();
  for (size_t k = 0; k + 3 <= sentences.size(); ++k) {
    page->spans.push_back({hash_span(sentences, k), line_of[k], line_of[k + 2]});
  }
  return sentences.size();
}

}  // namespace

const char* rule_name(Rule rule) {
  switch (rule) {
    case Rule::kLineLongWord:
      return "line_word_over_1000_chars";
    case Rule::kLineNoTerminalPunctuation:
      return "line_no_terminal_punctuation";
    case Rule::kLineEllipsis:
      return "line_ends_with_ellipsis";
    case Rule::kLineTooFewWords:
      return "line_under_5_words";
    case Rule::kLineJavascript:
      return "line_javascript";
    case Rule::kLinePolicy:
      return "line_policy_boilerplate";
    case Rule::kLineDuplicateSpan:
      return "line_duplicate_3_sentence_span";
    case Rule::kPageLoremIpsum:
      return "page_lorem_ipsum";
    case Rule::kPageCurlyBracket:
      return "page_curly_bracket";
    case Rule::kPageTooFewSentences:
      return "page_under_3_sentences";
    case Rule::kPageBlocklisted:
      return "page_blocklisted_word";
    case Rule::kPageNotEnglish:
      return "page_not_english";
    case Rule::kPageEmptiedByDedupe:
      return "page_under_3_sentences_after_dedupe";
    case Rule::kPageTooShort:
      return "page_under_min_chars";
    case Rule::kCount:
      break;
  }
  return "?";
}

bool is_line_rule(Rule rule) {
  return rule <= Rule::kLineDuplicateSpan;
}

std::string CleanedPage::text() const {
  std::string out;
  for (const auto& line : lines) {
    if (!out.empty()) out += '\n';
    out += line;
  }
  return out;
}

std::vector<std::string_view> split_sentences(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  const size_t n = line.size();
  for (size_t i = 0; i < n; ++i) {
    char c = line[i];
    if (c != '.' && c != '!' && c != '?') continue;
    size_t end = i + 1;
    while (end < n && (line[end] == '.' || line[end] == '!' || line[end] == '?')) ++end;
    while (end < n && (line[end] == '"' || line[end] == '\'' || line[end] == ')' || line[end] == ']')) ++end;
    if (end < n && !is_space(line[end])) continue;
    size_t next = end;
    while (next < n && is_space(line[next])) ++next;
    if (next < n) {
      unsigned char d = static_cast<unsigned char>(line[next]);
      bool starts_sentence =
          std::isupper(d) || std::isdigit(d) || d == '"' || d == '\'' || d == '(' || d >= 0x80;
      if (!starts_sentence) continue;
    }
    if (c == '.' && end == i + 1 && is_abbreviation(line, i)) continue;
    auto sentence = trim(line.substr(start, end - start));
    if (!sentence.empty()) out.push_back(sentence);
    start = end;
    i = end - 1;
  }
  auto rest = trim(line.substr(std::min(start, n)));
  if (!rest.empty()) out.push_back(rest);
  return out;
}

size_t count_code_points(std::string_view utf8) {
  size_t n = 0;
  for (unsigned char c : utf8) n += (c & 0xC0) != 0x80;
  return n;
}

CleanedPage clean_page(std::string_view text, const CleanOptions& options, RuleCounts* counts) {
  CleanedPage page;
  if (!options.c4) {
    page.lines.emplace_back(trim(text));
    page.kept = true;
    apply_min_chars(&page, options, counts);
    return page;
  }
  size_t sentences = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view raw = trim(text.substr(start, end - start));
    start = end + 1;
    if (raw.empty()) continue;  // blank lines carry no text; TFDS drops them as "no end mark"
    size_t longest = 0;
    count_words(raw, &longest);
    if (longest > kMaxWordLength) {
      ++(*counts)[Rule::kLineLongWord];
      continue;
    }
    std::string line = remove_citations(raw);
    std::string_view view = trim(line);
    if (view.ends_with("...")) {
      ++(*counts)[Rule::kLineEllipsis];
      continue;
    }
    if (view.empty() || std::string_view(".?!\"").find(view.back()) == std::string_view::npos) {
      ++(*counts)[Rule::kLineNoTerminalPunctuation];
      continue;
    }
    if (count_words(view, &longest) < kMinWordsPerLine) {
      ++(*counts)[Rule::kLineTooFewWords];
      continue;
    }
    std::string lower = to_lower(view);
    if (lower.find("lorem ipsum") != std::string::npos) {
      ++(*counts)[Rule::kPageLoremIpsum];
      return page;
    }
    if (lower.find("javascript") != std::string::npos) {
      ++(*counts)[Rule::kLineJavascript];
      continue;
    }
    if (view.find('{') != std::string_view::npos) {
      ++(*counts)[Rule::kPageCurlyBracket];
      return page;
    }
    bool policy = std::any_of(std::begin(kPolicySubstrings), std::end(kPolicySubstrings),
                              [&](std::string_view p) { return lower.find(p) != std::string::npos; });
    if (policy) {
      ++(*counts)[Rule::kLinePolicy];
      continue;
    }
    sentences += split_sentences(view).size();
    page.lines.emplace_back(view);
  }
  if (sentences < kMinSentences) {
    ++(*counts)[Rule::kPageTooFewSentences];
    return page;
  }
  std::string cleaned = page.text();
  if (options.blocklist && options.blocklist->matches(to_lower(cleaned))) {
    ++(*counts)[Rule::kPageBlocklisted];
    return page;
  }
  if (!is_english(cleaned)) {
    ++(*counts)[Rule::kPageNotEnglish];
    return page;
  }
  compute_spans(&page);
  page.kept = true;
  return page;
}

void SpanDeduper::apply(CleanedPage* page, RuleCounts* counts) {
  if (!page->kept || page->spans.empty()) return;
  std::vector<bool> drop(page->lines.size(), false);
  bool any = false;
  for (const Span& span : page->spans) {
    if (!seen_.insert(span.hash).second) {
      for (uint32_t l = span.first_line; l <= span.last_line; ++l) drop[l] = true;
      any = true;
    }
  }
  if (!any) return;
  std::vector<std::string> kept;
  for (size_t l = 0; l < page->lines.size(); ++l) {
    if (drop[l]) {
      ++(*counts)[Rule::kLineDuplicateSpan];
    } else {
      kept.push_back(std::move(page->lines[l]));
    }
  }
  page->lines = std::move(kept);
  if (compute_spans(page) < kMinSentences) {
    ++(*counts)[Rule::kPageEmptiedByDedupe];
    page->kept = false;
  }
}

void apply_min_chars(CleanedPage* page, const CleanOptions& options, RuleCounts* counts) {
  if (!page->kept) return;
  size_t chars = 0;
  for (const auto& line : page->lines) chars += count_code_points(line) + 1;
  if (chars > 0) --chars;  // newlines between lines, not after the last
  if (chars < options.min_chars) {
    ++(*counts)[Rule::kPageTooShort];
    page->kept = false;
  }
}

}  // namespace triad
