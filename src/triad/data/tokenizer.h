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

// The smallest vocabulary triad trains: byte fallback alone takes 256 pieces, and <unk>, <s>, </s> three.
inline constexpr int kMinVocabSize = 300;
// SentencePiece trains on lines of at most this many bytes; it skips longer ones.
inline constexpr size_t kMaxTrainingLineBytes = 16384;

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

  // Thread-safe: encoding runs on all threads against one model. A text over kEncodePieceBytes is encoded
  // in the pieces encoding_pieces() cuts: SentencePiece holds some 150 bytes per byte of the string it
  // encodes (8 GB for one 50 MB document), a piece at a time that is ~10 MB.
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
  // The model without its dummy prefix, for the pieces of a long text after the first; null for a model
  // whose pieces could not be cut exactly (the text is then encoded whole).
  std::unique_ptr<sentencepiece::SentencePieceProcessor> continuation_;
};

// Where Tokenizer::encode cuts a text longer than max_bytes: into pieces of at most max_bytes that
// concatenate to it, each after the first starting at the last space (' ') in the second half of its
// window, or, with no space there, at a UTF-8 character boundary.
//
// What a cut can change: a model whose pieces hold a space only at their start (split by whitespace, as
// triad trains them) puts a token boundary before every space, so a cut there gives the ids of encoding the
// whole text, but for near-ties in SentencePiece's float path scores, which a whole long text resolves
// worse: its scores sum to -1e8, where a float's step is 8 (50 MB of "word " encoded whole drifts from
// 25 MB on, 32.8 M tokens where pieces give 30.0 M). A cut inside a word (32 KiB without a space) can
// tokenize its two halves differently; the ids still decode to the text.
inline constexpr size_t kEncodePieceBytes = 64 << 10;
std::vector<std::string_view> encoding_pieces(std::string_view text, size_t max_bytes = kEncodePieceBytes);

}  // namespace triad
