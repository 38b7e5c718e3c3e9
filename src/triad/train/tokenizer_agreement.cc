#include "triad/train/tokenizer_agreement.h"

#include <filesystem>

#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/sha256.h"

namespace triad {

namespace fs = std::filesystem;

TokenizerHash tokenizer_file_hash(const std::string& path) {
  if (!path_exists(path)) fail("{}: missing (the tokenizer)", path);
  return {sha256_file_hex(path), path};
}

TokenizerHash data_tokenizer_hash(const std::string& data_dir) {
  const std::string path = (fs::path(data_dir) / "manifest.json").string();
  if (!path_exists(path)) return {"", path};  // not prepared data: opening it says so
  const auto manifest = nlohmann::json::parse(read_file(path), nullptr, false);
  const nlohmann::json digest = manifest.is_object()
                                    ? manifest.value("/tokenizer/sha256"_json_pointer, nlohmann::json())
                                    : nlohmann::json();
  if (!digest.is_null() && !digest.is_string()) fail("{}: tokenizer.sha256 must be a string", path);
  return {digest.is_string() ? digest.get<std::string>() : "", path + " (tokenizer.sha256)"};
}

TokenizerHash checkpoint_tokenizer_hash(const std::string& checkpoint_dir, const nlohmann::json& manifest) {
  const std::string path = (fs::path(checkpoint_dir) / "manifest.json").string();
  const nlohmann::json digest = manifest.value("tokenizer_sha256", nlohmann::json());
  if (!digest.is_null() && !digest.is_string()) fail("{}: tokenizer_sha256 must be a string", path);
  return {digest.is_string() ? digest.get<std::string>() : "", path + " (tokenizer_sha256)"};
}

void require_same_tokenizer(const TokenizerHash& a, const TokenizerHash& b) {
  if (a.sha256.empty() || b.sha256.empty() || a.sha256 == b.sha256) return;
  fail(
      "the tokenizers differ: {} is SHA-256 {}, {} is {}; a run, its checkpoints and its data must use the "
      "same tokenizer.model",
      a.source, a.sha256, b.source, b.sha256);
}

std::string checkpoint_tokenizer_path(const std::string& checkpoint_dir) {
  return (fs::path(checkpoint_dir).parent_path().parent_path() / "tokenizer.model").string();
}

Tokenizer load_checkpoint_tokenizer(const std::string& checkpoint_dir, const nlohmann::json& manifest,
                                    int vocab) {
  const std::string path = checkpoint_tokenizer_path(checkpoint_dir);
  require_same_tokenizer(tokenizer_file_hash(path), checkpoint_tokenizer_hash(checkpoint_dir, manifest));
  Tokenizer tokenizer = Tokenizer::load(path);
  if (tokenizer.vocab_size() != vocab)
    fail("{}: tokenizer has {} pieces, the model {}", path, tokenizer.vocab_size(), vocab);
  return tokenizer;
}

}  // namespace triad
