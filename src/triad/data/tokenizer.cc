#include "triad/data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

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

}  // namespace

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
      {"max_sentence_length", "16384"},
      {"input_sentence_size", "0"},  // the caller samples
      {"shuffle_input_sentence", "false"},
      {"num_threads", std::to_string(std::max(1, options.threads))},
      {"minloglevel", "1"},
  };
  sentencepiece::SetRandomGeneratorSeed(options.seed);
  VectorSentences iterator(sentences);
  std::string model;
  auto status = sentencepiece::SentencePieceTrainer::Train(args, &iterator, &model);
  if (!status.ok()) fail("tokenizer training failed: {}", status.ToString());
  return Tokenizer(std::move(model), "trained model");
}

Tokenizer Tokenizer::load(const std::string& path) {
  if (!path_exists(path)) fail_usage("tokenizer model {} does not exist", path);
  return Tokenizer(read_file(path), path);
}

void Tokenizer::encode(std::string_view text, std::vector<int>* ids) const {
  ids->clear();
  auto status = processor_->Encode(text, ids);
  if (!status.ok()) fail("tokenizer: cannot encode text: {}", status.ToString());
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
