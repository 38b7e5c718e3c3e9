// The input documents reader (data/reader.h): the input as a .jsonl file (or .jsonl.gz when it starts with
// gzip's magic), read lenient and --strict, and as a .txt file.
#include <vector>

#include "fuzz_util.h"
#include "triad/data/reader.h"

namespace {

void read_all(const std::string& path, bool strict) {
  triad::fuzz::expect_clean([&] {
    triad::DocumentReader reader({path}, strict);
    std::vector<triad::Document> docs;
    while (reader.read_batch(&docs, 1 << 16)) docs.clear();
    (void)reader.issues().total();
    (void)reader.files().front().sha256;
  });
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  triad::fuzz::silence_stdio_stderr();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const bool gzipped = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  const std::string dir = triad::fuzz::scratch_dir();
  const std::string jsonl = dir + (gzipped ? "/input.jsonl.gz" : "/input.jsonl");
  const std::string text = dir + (gzipped ? "/input.txt.gz" : "/input.txt");
  triad::fuzz::write_bytes(jsonl, triad::fuzz::as_text(data, size));
  triad::fuzz::write_bytes(text, triad::fuzz::as_text(data, size));
  read_all(jsonl, false);
  read_all(jsonl, true);
  read_all(text, false);
  return 0;
}
