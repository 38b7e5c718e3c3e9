#include "triad/data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdio>
#include <unordered_map>

#include "triad/core/error.h"
#include "triad/core/file_io.h"

namespace triad {

namespace {

class VectorSentences : public sentencepiece::SentenceIterator {
 public:
  explicit VectorSentences(const std::vector<std::string>& sentences) : sentences_(sentences) {}
  bool done() const override { return i_ >= sentences_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return sentences_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& sentences_;
  size_t i_ = 0;
};

constexpr char kSpaceSymbol[] = "\xe2\x96\x81";  // "▁", SentencePiece's space

std::string joined_pieces(const sentencepiece::SentencePieceProcessor& model, std::string_view text) {
  std::string joined;
  for (const auto& piece : model.EncodeAsPieces(text)) joined += piece;
  return joined;
}

// The model without the dummy prefix ("▁") it puts in front of a text, so that the pieces of a long text
// after the first are normalised as they are inside the whole. Protobuf merges a message field that occurs
// twice: appending normalizer_spec (field 3) { add_dummy_prefix (field 3): false } overrides that one
// setting. Null unless the copy keeps every character of a piece, a leading space as "▁", and the model
// adds nothing but a "▁" in front: not for a model that folds whitespace, adds its "▁" behind (whitespace
// as suffix) or fails its self-test without the prefix.
std::unique_ptr<sentencepiece::SentencePieceProcessor> continuation_model(
    const std::string& serialized, const sentencepiece::SentencePieceProcessor& model) {
  static constexpr char kNoDummyPrefix[] = {0x1a, 0x02, 0x18, 0x00};
  auto continuation = std::make_unique<sentencepiece::SentencePieceProcessor>();
  std::string edited = serialized + std::string(kNoDummyPrefix, sizeof kNoDummyPrefix);
  if (!continuation->LoadFromSerializedProto(edited).ok()) return nullptr;
  const std::string whole = joined_pieces(model, "a");
  if ((whole != "a" && whole != kSpaceSymbol + std::string("a")) ||
      joined_pieces(*continuation, "a") != "a" ||
      joined_pieces(*continuation, " a") != kSpaceSymbol + std::string("a")) {
    return nullptr;
  }
  return continuation;
}

// Reads the two numbers SentencePiece's `message` gives after `marker`, as `format` places them.
bool two_numbers(const std::string& message, const char* marker, const char* format, int* a, int* b) {
  size_t at = message.find(marker);
  return at != std::string::npos && std::sscanf(message.c_str() + at, format, a, b) == 2;
}

// A training failure; for a vocabulary size the text does not fit, the sizes that would fit (SentencePiece
// says "Vocabulary size is smaller than required_chars. 400 vs 860.", counting the characters at 99.95 %
// coverage and the byte and control pieces, or "Vocabulary size too high (512). Please set it to a value
// <= 266.", the pieces the text yields).
[[noreturn]] void fail_training(const std::string& message, int vocab_size) {
  int given = 0, bound = 0;
  if (two_numbers(message, "required_chars.", "required_chars. %d vs %d", &given, &bound)) {
    fail(
        "tokenizer training failed: --vocab-size {} is less than the {} pieces this text needs (its "
        "characters and the byte and control pieces); use --vocab-size {} or more",
        vocab_size, bound, bound);
  }
  if (two_numbers(message, "too high (", "too high (%d). Please set it to a value <= %d", &given, &bound)) {
    fail("tokenizer training failed: --vocab-size {} is more than the {} pieces this text yields; {}",
         vocab_size, bound,
         bound >= kMinVocabSize ? fmt::format("use --vocab-size {} or less", bound)
                                : "give more text, or a trained model with --tokenizer");
  }
  fail("tokenizer training failed: {}", message);
}

void encode_with(const sentencepiece::SentencePieceProcessor& model, std::string_view text,
                 std::vector<int>* ids) {
  auto status = model.Encode(text, ids);
  if (!status.ok()) fail("tokenizer: cannot encode text: {}", status.ToString());
}

}  // namespace

std::vector<std::string_view> encoding_pieces(std::string_view text, size_t max_bytes) {
  std::vector<std::string_view> pieces;
  while (text.size() > max_bytes) {
    size_t cut = text.rfind(' ', max_bytes);
    if (cut == std::string_view::npos || cut == 0 || cut < max_bytes / 2) {
      cut = max_bytes;
      while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // a continuation byte
      if (cut == 0) cut = max_bytes;  // not UTF-8 (max_bytes below 4): any cut
    }
    pieces.push_back(text.substr(0, cut));
    text.remove_prefix(cut);
  }
  pieces.push_back(text);
  return pieces;
}

Tokenizer::Tokenizer(std::string serialized, const std::string& origin)
    : serialized_(std::move(serialized)),
      processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  sentencepiece::util::Status status;
  try {
    status = processor_->LoadFromSerializedProto(serialized_);
  } catch (const std::exception& e) {  // e.g. its trie builder's, for a piece that is empty
    fail("{}: not a SentencePiece model ({})", origin, e.what());
  }
  if (!status.ok()) fail("{}: not a SentencePiece model ({})", origin, status.ToString());
  if (processor_->eos_id() < 0) fail("{}: the SentencePiece model has no EOS piece", origin);
  continuation_ = continuation_model(serialized_, *processor_);
}

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::train(const std::vector<std::string>& sentences, const TokenizerTrainOptions& options) {
  if (sentences.empty()) fail("no training text is left after cleaning: nothing to train the tokenizer on");
  std::unordered_map<std::string, std::string> args = {
      {"model_type", "unigram"},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"character_coverage", "0.9995"},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"max_sentence_length", std::to_string(kMaxTrainingLineBytes)},
      {"input_sentence_size", "0"},  // the caller samples
      {"shuffle_input_sentence", "false"},
      {"num_threads", std::to_string(std::max(1, options.threads))},
      {"minloglevel", "1"},
  };
  sentencepiece::SetRandomGeneratorSeed(options.seed);
  VectorSentences iterator(sentences);
  std::string model;
  auto status = sentencepiece::SentencePieceTrainer::Train(args, &iterator, &model);
  if (!status.ok()) fail_training(status.ToString(), options.vocab_size);
  return Tokenizer(std::move(model), "trained model");
}

Tokenizer Tokenizer::load(const std::string& path) {
  if (!path_exists(path)) fail_usage("tokenizer model {} does not exist", path);
  return Tokenizer(read_file(path), path);
}

void Tokenizer::encode(std::string_view text, std::vector<int>* ids) const {
  if (text.size() <= kEncodePieceBytes || !continuation_) return encode_with(*processor_, text, ids);
  ids->clear();
  std::vector<std::string_view> pieces = encoding_pieces(text);
  std::vector<int> piece_ids;
  for (size_t i = 0; i < pieces.size(); ++i) {
    encode_with(i == 0 ? *processor_ : *continuation_, pieces[i], &piece_ids);
    ids->insert(ids->end(), piece_ids.begin(), piece_ids.end());
  }
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  std::string out;
  auto status = processor_->Decode(ids, &out);
  if (!status.ok()) fail("tokenizer: cannot decode: {}", status.ToString());
  return out;
}

std::string Tokenizer::piece(int id) const {
  return processor_->IdToPiece(id);
}
int Tokenizer::vocab_size() const {
  return processor_->GetPieceSize();
}
int Tokenizer::eos_id() const {
  return processor_->eos_id();
}

}  // namespace triad
