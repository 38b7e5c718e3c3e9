#include "triad/explain/words.h"

#include <cctype>

namespace triad::explain {

std::string normalize_word(std::string_view word) {
  std::string out;
  for (char ch : word) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c)) {
      out += static_cast<char>(std::tolower(c));
    } else if (c >= 0x80) {
      out += ch;  // UTF-8 letters of other scripts stay as they are
    }
  }
  return out;
}

Words split_words(const Tokenizer& tokenizer, std::string_view text, int max_tokens) {
  Words out;
  std::vector<int> ids;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i == text.size()) break;
    size_t end = i;
    while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end]))) ++end;
    const std::string_view word = text.substr(i, end - i);
    ids.clear();
    tokenizer.encode(word, &ids);
    if (out.truncated > 0 || out.tokens.size() + ids.size() > static_cast<size_t>(max_tokens)) {
      ++out.truncated;
    } else if (!ids.empty()) {
      out.text.emplace_back(word);
      out.first_token.push_back(static_cast<int>(out.tokens.size()));
      out.tokens.insert(out.tokens.end(), ids.begin(), ids.end());
      out.not_a_reason.push_back(normalize_word(word).empty() ? 1 : 0);
    }
    i = end;
  }
  out.first_token.push_back(static_cast<int>(out.tokens.size()));
  return out;
}

std::vector<int32_t> Words::kept_tokens(std::span<const uint8_t> keep) const {
  std::vector<int32_t> out;
  for (size_t w = 0; w < size(); ++w) {
    if (keep[w]) out.insert(out.end(), tokens.begin() + first_token[w], tokens.begin() + first_token[w + 1]);
  }
  return out;
}

std::vector<double> Words::word_scores(std::span<const double> token_scores) const {
  std::vector<double> out(size(), 0.0);
  for (size_t w = 0; w < size(); ++w) {
    for (int t = first_token[w]; t < first_token[w + 1]; ++t) out[w] += token_scores[t];
  }
  return out;
}

}  // namespace triad::explain
