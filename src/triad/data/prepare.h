#pragma once
// `triad prepare`: raw documents in, token shards out.
//
//   read (JSONL / text, gz) -> clean (C4 rules, parallel) -> deduplicate (in input order) -> split by hash
//     -> train or load SentencePiece -> encode (parallel) -> shards + tokenizer.model + manifest.json
//
// Everything is written into a staging directory next to --out and renamed into place at the end, so an
// interrupted run leaves --out as it was. The result is a function of the inputs and options: the thread
// count changes the speed, not the bytes.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace triad {

struct PrepareOptions {
  std::vector<std::string> inputs;  // files, directories or globs
  std::string out_dir;
  int vocab_size = 8192;
  std::string tokenizer;  // an existing .model to use instead of training one
  bool clean_c4 = true;
  bool blocklist = true;
  std::string blocklist_path;  // the LDNOOBW English list
  size_t min_chars = 128;
  int max_tokens = 512;
  double val_fraction = 0.01;
  uint64_t seed = 1234;
  int threads = 1;
  bool strict = false;
  bool force = false;
  uint64_t shard_tokens = uint64_t{1} << 28;  // start a new shard after this many tokens
  size_t tokenizer_sentences = 2'000'000;     // lines sampled to train the tokenizer
};

// Runs the whole pipeline and returns the manifest it wrote to out_dir/manifest.json.
nlohmann::json run_prepare(const PrepareOptions& options);

// Which split a cleaned document belongs to: a hash of its text, so the split is stable under reordering,
// re-sharding and reseeding.
bool is_validation_document(std::string_view text, double val_fraction);

}  // namespace triad
