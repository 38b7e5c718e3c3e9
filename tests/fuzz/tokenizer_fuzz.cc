// The SentencePiece model loader's wrapper (data/tokenizer.h, Tokenizer::load): the input as a .model
// file; a model that loads encodes and decodes a short text.
#include <vector>

#include "fuzz_util.h"
#include "triad/data/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = triad::fuzz::scratch_dir() + "/tokenizer.model";
  triad::fuzz::write_bytes(path, triad::fuzz::as_text(data, size));
  triad::fuzz::expect_clean([&] {
    triad::Tokenizer tokenizer = triad::Tokenizer::load(path);
    std::vector<int> ids;
    tokenizer.encode("The cat sat.\n  Ünïcödé 123 \xF0\x9F\x98\x80", &ids);
    (void)tokenizer.decode(ids);
    (void)tokenizer.piece(tokenizer.eos_id());
    (void)tokenizer.vocab_size();
  });
  return 0;
}
