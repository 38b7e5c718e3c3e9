#pragma once
// A run, its checkpoints and its data must use one tokenizer: token ids mean nothing under another. They
// agree by the SHA-256 of tokenizer.model, which each of them records:
//   DATA/manifest.json       "tokenizer": {"sha256": ...}   (of DATA/tokenizer.model)
//   step_N/manifest.json     "tokenizer_sha256"             (of RUN/tokenizer.model when it was saved)
// and RUN/tokenizer.model is a copy of the data's. Commands compare two of them and refuse on a mismatch.

#include <nlohmann/json.hpp>
#include <string>

#include "triad/data/tokenizer.h"

namespace triad {

// A tokenizer's SHA-256 and where it comes from, for the message naming the files that disagree.
struct TokenizerHash {
  std::string sha256;  // empty: not recorded (a manifest from before triad recorded it)
  std::string source;  // the file hashed, or "FILE (field)" for a recorded hash
};

// The SHA-256 of a tokenizer.model file.
TokenizerHash tokenizer_file_hash(const std::string& path);
// What DATA/manifest.json records for DATA/tokenizer.model.
TokenizerHash data_tokenizer_hash(const std::string& data_dir);
// What a checkpoint's manifest records for RUN/tokenizer.model.
TokenizerHash checkpoint_tokenizer_hash(const std::string& checkpoint_dir, const nlohmann::json& manifest);

// Throws an Error naming both sources unless they hash the same (a hash not recorded is not checked).
void require_same_tokenizer(const TokenizerHash& a, const TokenizerHash& b);

// RUN/tokenizer.model of checkpoint RUN/checkpoints/step_N.
std::string checkpoint_tokenizer_path(const std::string& checkpoint_dir);
// The tokenizer of a checkpoint (checkpoint_tokenizer_path), checked against the hash the
// checkpoint recorded and against the model's vocabulary.
Tokenizer load_checkpoint_tokenizer(const std::string& checkpoint_dir, const nlohmann::json& manifest,
                                    int vocab);

}  // namespace triad
