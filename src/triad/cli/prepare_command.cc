#include <fmt/format.h>

#include <memory>

#include "triad/cli/cli.h"
#include "triad/core/error.h"
#include "triad/data/prepare.h"
#include "triad/data/tokenizer.h"

namespace triad::cli {

Runner add_prepare_command(CLI::App& root) {
  auto options = std::make_shared<PrepareOptions>();
  options->threads = default_threads();
  options->blocklist_path = data_path("blocklist/en.txt");
  auto clean = std::make_shared<std::string>("c4");
  auto blocklist = std::make_shared<std::string>("on");

  CLI::App* cmd = root.add_subcommand(
      "prepare",
      "Clean a C4-style corpus, train or load a SentencePiece tokenizer and write checksummed token shards.");
  cmd->footer(
      "Example: triad prepare --input data/corpus --out data/bundled\n"
      "Writes DIR/tokenizer.model, DIR/{train,val}-NNNNN.tok and DIR/manifest.json (inputs with their "
      "SHA-256,\n"
      "what each cleaning rule removed, token counts, timings). See docs/data.md.");
  add_config_option(*cmd);
  cmd->add_option(
         "--input", options->inputs,
         "Input files, directories or globs: .jsonl / .jsonl.gz (C4 schema: a \"text\" field per line) "
         "or .txt / .txt.gz (one document per blank-line-separated block)")
      ->type_name("PATH...");
  cmd->add_option(
         "--out", options->out_dir,
         "Output directory (refused when it exists and is not empty, unless it is prepared data and --force "
         "is given)")
      ->type_name("DIR");
  cmd->add_option("--vocab-size", options->vocab_size,
                  "Pieces in the trained tokenizer. 8192 suits the ~2M-word bundled corpus; the paper uses "
                  "32000 on C4")
      ->check(CLI::Range(kMinVocabSize, 1 << 20));
  cmd->add_option("--tokenizer", options->tokenizer, "Use this SentencePiece .model instead of training one")
      ->type_name("MODEL");
  cmd->add_option("--clean", *clean, "Cleaning recipe: c4 (the C4 rules, each counted) or none")
      ->check(CLI::IsMember({"c4", "none"}));
  cmd->add_option(
         "--blocklist", *blocklist,
         "Drop pages with a word of the LDNOOBW list (on), or keep them as C4's en.noblocklist (off)")
      ->check(CLI::IsMember({"on", "off"}));
  cmd->add_option("--blocklist-file", options->blocklist_path, "The blocklist, one phrase per line")
      ->type_name("FILE");
  cmd->add_option("--min-chars", options->min_chars,
                  "Drop documents shorter than this many characters after cleaning");
  cmd->add_option("--max-tokens", options->max_tokens, "Training window in tokens, recorded for the loader")
      ->check(positive());
  cmd->add_option("--val-fraction", options->val_fraction,
                  "Fraction of documents for validation, chosen by a hash of the text")
      ->check(CLI::Range(0.0, 0.999));
  cmd->add_option("--seed", options->seed, "Seed for the tokenizer's training sample");
  cmd->add_option("--threads", options->threads, "Threads for cleaning, tokenizer training and encoding")
      ->check(positive());
  cmd->add_option("--shard-tokens", options->shard_tokens, "Start a new shard after this many tokens")
      ->check(positive());
  cmd->add_flag("--strict", options->strict,
                "Treat a malformed input line as an error instead of skipping it");
  cmd->add_flag(
      "--force", options->force,
      "Replace an --out that holds prepared data (the old contents go only once the new are complete; "
      "refuses a directory holding anything prepare did not write)");

  return [options, clean, blocklist]() {
    if (options->inputs.empty()) fail_usage("--input is required (e.g. --input data/corpus)");
    if (options->out_dir.empty()) fail_usage("--out is required");
    options->clean_c4 = *clean == "c4";
    options->blocklist = *blocklist == "on";
    nlohmann::json manifest = run_prepare(*options);
    const auto& counts = manifest["counts"];
    fmt::print("{}\n", nlohmann::json{{"out", options->out_dir},
                                      {"documents_read", counts["documents_read"]},
                                      {"documents_kept", counts["documents_kept"]},
                                      {"train_tokens", counts["train"]["tokens"]},
                                      {"val_tokens", counts["val"]["tokens"]},
                                      {"vocab_size", manifest["tokenizer"]["vocab_size"]},
                                      {"seconds", manifest["timings_s"]["total"]}}
                           .dump());
    return 0;
  };
}

}  // namespace triad::cli
