#pragma once
// SentencePiece, trained and applied through its C++ library. Models are trained the way byte-level LLM
// tokenizers are (as Llama's): unigram, identity normalisation, no whitespace folding, digits split, byte
// fallback. So every UTF-8 text encodes without <unk> and decode(encode(text)) == text, newlines included.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace triad {

struct TokenizerTrainOptions {
  int vocab_size = 8192;
  uint32_t seed = 0;
  int threads = 1;
};

class Tokenizer {
 public:
  // Trains on `sentences` (lines of cleaned training text) and returns the model.
  static Tokenizer train(const std::vector<std::string>& sentences, const TokenizerTrainOptions& options);
  // Loads a .model file; an unreadable or invalid file is an error naming it.
  static Tokenizer load(const std::string& path);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Thread-safe: encoding runs on all threads against one model.
  void encode(std::string_view text, std::vector<int>* ids) const;
  std::string decode(const std::vector<int>& ids) const;
  std::string piece(int id) const;

  int vocab_size() const;
  int eos_id() const;
  const std::string& serialized() const { return serialized_; }  // the .model file's bytes

 private:
  explicit Tokenizer(std::string serialized, const std::string& origin);
  std::string serialized_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace triad
