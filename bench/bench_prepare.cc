// Throughput of each `triad prepare` stage on the bundled corpus, and our encoder against SentencePiece's own
// `spm_encode` on the same lines, measured in the same run.
//
//   build/bench_prepare [--corpus data/corpus] [--threads N]

#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "triad/core/file_io.h"
#include "triad/data/c4_clean.h"
#include "triad/data/reader.h"
#include "triad/data/tokenizer.h"

using namespace triad;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void row(const char* stage, double mb, double seconds, const char* note = "") {
  std::printf("%-34s %8.2f MB %8.3f s %9.1f MB/s  %s\n", stage, mb, seconds, mb / seconds, note);
}

double encode_lines(const Tokenizer& t, const std::vector<std::string>& lines, int threads) {
  double start = now();
  size_t total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
  {
    std::vector<int> ids;
#pragma omp for schedule(dynamic, 64)
    for (size_t i = 0; i < lines.size(); ++i) {
      t.encode(lines[i], &ids);
      total += ids.size();
    }
  }
  if (total == 0) std::abort();
  return now() - start;
}

}  // namespace

int main(int argc, char** argv) {
  std::string corpus = std::string(TRIAD_SOURCE_DIR) + "/data/corpus";
  int threads = omp_get_max_threads();
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--corpus") corpus = argv[i + 1];
    if (flag == "--threads") threads = std::atoi(argv[i + 1]);
  }
  std::printf("bench_prepare: corpus %s, %d threads\n\n", corpus.c_str(), threads);

  double t0 = now();
  DocumentReader reader(expand_inputs({corpus}), false);
  std::vector<Document> docs;
  while (reader.read_batch(&docs, 64 << 20)) {
  }
  double raw_mb = reader.total_bytes() / 1e6;
  row("read + parse (JSONL, simdjson)", raw_mb, now() - t0);

  Blocklist blocklist = Blocklist::load(std::string(TRIAD_SOURCE_DIR) + "/data/blocklist/en.txt");
  CleanOptions options{true, &blocklist, 128};
  std::vector<CleanedPage> pages(docs.size());
  double text_mb = 0;
  for (const auto& d : docs) text_mb += d.text.size() / 1e6;
  t0 = now();
  RuleCounts counts;
#pragma omp parallel num_threads(threads)
  {
    RuleCounts local;
#pragma omp for schedule(dynamic, 16)
    for (size_t i = 0; i < docs.size(); ++i) pages[i] = clean_page(docs[i].text, options, &local);
#pragma omp critical
    counts.add(local);
  }
  SpanDeduper dedupe;
  std::vector<std::string> lines;
  for (auto& p : pages) {
    dedupe.apply(&p, &counts);
    apply_min_chars(&p, options, &counts);
    if (p.kept) lines.insert(lines.end(), p.lines.begin(), p.lines.end());
  }
  row("clean (C4 rules + dedupe)", text_mb, now() - t0);
  double clean_mb = 0;
  for (const auto& l : lines) clean_mb += l.size() / 1e6;

  t0 = now();
  Tokenizer tokenizer = Tokenizer::train(lines, {.vocab_size = 8192, .seed = 1, .threads = threads});
  row("tokenizer training (SentencePiece)", clean_mb, now() - t0, "unigram, 8192 pieces");

  double ours_1 = encode_lines(tokenizer, lines, 1);
  double ours_n = encode_lines(tokenizer, lines, threads);
  row("encode, triad, 1 thread", clean_mb, ours_1);
  row("encode, triad, all threads", clean_mb, ours_n);

  std::string dir = std::string("/tmp/bench_prepare_") + std::to_string(getpid());
  make_dirs(dir);
  write_file_atomic(dir + "/m.model", tokenizer.serialized());
  {
    AtomicFile f(dir + "/lines.txt");
    for (const auto& l : lines) {
      f.write(l);
      f.write("\n");
    }
    f.commit();
  }
  std::string command = "spm_encode --model " + dir + "/m.model --output_format=id --input " + dir +
                        "/lines.txt --output /dev/null";
  t0 = now();
  int rc = std::system(command.c_str());
  double spm = now() - t0;
  std::system(("rm -rf " + dir).c_str());
  if (rc != 0) {
    std::printf("spm_encode failed (install Debian's sentencepiece package)\n");
    return 1;
  }
  row("encode, spm_encode (reference)", clean_mb, spm, "single process, reads and writes files");
  std::printf("\nratio encode throughput triad(1 thread) / spm_encode: %.2fx\n", spm / ours_1);
  std::printf("ratio encode throughput triad(%d threads) / spm_encode: %.2fx\n", threads, spm / ours_n);
  return 0;
}
