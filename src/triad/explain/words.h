#pragma once
// The unit of an explanation is a word, not a subword piece: a text is cut at whitespace, each word encoded
// on its own (SentencePiece cuts at whitespace too, so the pieces are the whole text's), and a piece's score
// goes to its word. A word without a letter or digit ("!", "--") is never offered as a reason: it can
// carry attention (an attention sink) but not meaning; it still stays in the input and can be removed
// with its neighbours.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "triad/data/tokenizer.h"

namespace triad::explain {

struct Words {
  std::vector<std::string> text;      // each word as written
  std::vector<int32_t> tokens;        // the text's tokens, the words' pieces in order
  std::vector<int> first_token;       // word w's pieces are [first_token[w], first_token[w + 1])
  std::vector<uint8_t> not_a_reason;  // 1: punctuation only, never among the top words
  size_t size() const { return text.size(); }
  size_t truncated = 0;  // words dropped because the text has more than max_tokens tokens
  // The tokens of the words whose keep flag is 1, in order.
  std::vector<int32_t> kept_tokens(std::span<const uint8_t> keep) const;
  // Per-token scores summed into their words.
  std::vector<double> word_scores(std::span<const double> token_scores) const;
};

// Whole words only: a word whose pieces would pass `max_tokens` is dropped with every word after it.
Words split_words(const Tokenizer& tokenizer, std::string_view text, int max_tokens);

// Lower case, letters and digits only ("Idiot!" -> "idiot"); empty for punctuation.
std::string normalize_word(std::string_view word);

}  // namespace triad::explain
