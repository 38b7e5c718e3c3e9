// Reading an audit log (governance/audit_log.h, audit_verify.h): the input as RUN/audit/log.jsonl, cut at
// each line "%%HEAD%%" into the log and its tree heads (heads/000001.ckpt, 000002.ckpt, ...). Each line
// is parsed and chained as AuditLog::open does, then the whole run is verified.
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "fuzz_util.h"
#include "triad/core/file_io.h"
#include "triad/governance/audit_log.h"
#include "triad/governance/audit_verify.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string run = triad::fuzz::scratch_dir() + "/run";
  std::error_code ignored;
  std::filesystem::remove_all(run, ignored);
  triad::make_dirs(triad::audit_heads_dir(run));

  const std::string_view input = triad::fuzz::as_text(data, size);
  const std::string_view separator = "%%HEAD%%\n";
  std::vector<std::string_view> parts;
  size_t begin = 0;
  for (size_t at; (at = input.find(separator, begin)) != std::string_view::npos;
       begin = at + separator.size()) {
    parts.push_back(input.substr(begin, at - begin));
  }
  parts.push_back(input.substr(begin));
  triad::fuzz::write_bytes(triad::audit_log_path(run), parts[0]);
  for (size_t i = 1; i < parts.size(); ++i) {
    triad::fuzz::write_bytes(fmt::format("{}/{:06d}.ckpt", triad::audit_heads_dir(run), i), parts[i]);
  }

  triad::fuzz::expect_clean([&] {
    triad::RawAuditLog raw = triad::read_audit_lines(triad::audit_log_path(run));
    triad::Hash prev{};
    for (size_t i = 0; i < raw.lines.size(); ++i) {
      triad::parse_audit_entry(raw.lines[i], i, i == 0 ? nullptr : &prev);
      prev = triad::merkle_leaf_hash(raw.lines[i]);
    }
  });
  triad::fuzz::expect_clean([&] { (void)triad::AuditLog::open(run).size(); });
  triad::fuzz::expect_clean([&] {
    // As `audit verify --json` prints it.
    (void)triad::verify_audit(run).to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  });
  return 0;
}
