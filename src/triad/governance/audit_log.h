#pragma once
// The tamper-evident audit log of a run, in RUN/audit/:
//
//   log.jsonl           one entry per line, canonical JSON, appended and fsynced one at a time
//   heads/NNNNNN.ckpt   tree heads numbered from 000001: C2SP checkpoints (note.h) of the RFC 9162 Merkle
//                       tree (merkle.h) whose leaves are the lines of log.jsonl (without the newline);
//                       a signed note when written with a key, the bare checkpoint text otherwise
//
// An entry (keys sorted, no whitespace):
//   {"host":"n1","kind":"eval","payload":{...},"prev":"<hex>","rank":0,"seq":7,"time":"2025-01-02T03:04:05.678Z"}
//   seq      its index, which is also its leaf index in the tree
//   time     UTC, milliseconds
//   prev     hex RFC 9162 leaf hash of the previous line (absent in entry 0). The Merkle heads already make
//            the log tamper-evident; this chain lets `verify` name the one entry that changed.
//   payload  an object of hashes and small facts; an array "files" of {"path","sha256","bytes"} is
//            re-hashed by `verify` (paths inside the run directory are stored relative to it)
// Entry 0 is {"kind":"audit_open","payload":{"format":1,"origin":"triad.audit/<32 random hex>"}}; the
// origin is the first line of every checkpoint of this log.
//
// Canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace, strings as raw UTF-8 with only
// '"', '\', and control characters escaped, integers in decimal, other numbers in the shortest form that
// reads back to the same double. This is RFC 8785 (JCS) except for the spelling of non-integer numbers
// (nlohmann's, e.g. 1e-07 and 2.0). NaN and infinities are refused. A line is canonical when parsing and
// re-serialising it gives the same bytes; `verify` checks that of every line.
//
// Crash safety: an append is one write() of the line and its newline followed by fdatasync, so after a
// crash the file ends either at an entry boundary or in a torn last line without a newline. open()
// refuses a torn line unless AuditOptions::recover_torn_tail is set; then it cuts the torn bytes off and
// appends a "torn_tail_recovered" entry recording their length and SHA-256. Only one process appends to a
// log at a time (an exclusive flock on log.jsonl).

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "triad/governance/merkle.h"
#include "triad/governance/note.h"

namespace triad {

struct AuditOptions {
  std::string host;  // empty: this machine's host name
  int rank = 0;
  bool recover_torn_tail = false;
};

struct TreeHead {
  uint64_t number = 0;  // 1, 2, ...: its file is heads/<number, 6 digits>.ckpt
  std::string path;
  Checkpoint checkpoint;
  bool is_signed = false;
};

class AuditLog {
 public:
  // Opens RUN/audit/ for appending, creating it and entry 0 when absent. Existing lines must parse and
  // chain; the full check (heads, signatures, files) is verify_audit() in audit_verify.h.
  static AuditLog open(const std::string& run_dir, const AuditOptions& options = {});
  AuditLog(AuditLog&& other) noexcept;
  AuditLog& operator=(AuditLog&&) = delete;
  ~AuditLog();

  // Appends one entry; returns its seq. `kind` is [a-z0-9_]+, `payload` a JSON object.
  uint64_t append(std::string_view kind, nlohmann::json payload);
  // Appends an entry whose payload is `extra` plus "files": [{"path","sha256","bytes"}] of `paths`.
  uint64_t append_files(std::string_view kind, const std::vector<std::string>& paths,
                        nlohmann::json extra = nlohmann::json::object());
  // Writes the next tree head for all entries so far, signed by `signer` when given. The first time a key
  // signs, its verifier key is logged first (kind "signing_key"), so `verify` can check signatures even
  // without --pubkey. Once a key has signed, every later head must be signed too.
  TreeHead write_head(const NoteSigner* signer = nullptr);

  uint64_t size() const { return leaves_.size(); }
  // The verifier keys of the "signing_key" entries so far: heads must be signed once this is not empty.
  const std::set<std::string>& signing_keys() const { return logged_keys_; }
  Hash root() const { return merkle_root(leaves_); }
  const std::string& origin() const { return origin_; }
  const std::string& run_dir() const { return run_dir_; }

 private:
  AuditLog() = default;
  void write_line(const std::string& line);

  std::string run_dir_;
  std::string log_path_;
  std::string origin_;
  std::string host_;
  int rank_ = 0;
  int fd_ = -1;
  uint64_t bytes_ = 0;
  uint64_t heads_ = 0;
  std::vector<Hash> leaves_;
  std::set<std::string> logged_keys_;  // verifier keys with a "signing_key" entry
};

// ---- Read side, shared by AuditLog::open and the audit commands ----

std::string audit_dir(const std::string& run_dir);
std::string audit_log_path(const std::string& run_dir);
std::string audit_heads_dir(const std::string& run_dir);

struct RawAuditLog {
  std::vector<std::string> lines;  // complete lines, without their newline
  std::string torn_tail;           // bytes after the last newline (empty when the file is whole)
};
RawAuditLog read_audit_lines(const std::string& log_path);

// Parses line `index` and checks it is a canonical entry with seq == index, the fields above, and
// prev == hex(*prev_leaf) (nullptr for entry 0). Throws an Error saying what is wrong.
nlohmann::json parse_audit_entry(std::string_view line, uint64_t index, const Hash* prev_leaf);

// The head files heads/NNNNNN.ckpt in order of their number, as (number, path).
std::vector<std::pair<uint64_t, std::string>> list_audit_heads(const std::string& run_dir);

// The canonical serialisation of `value` (throws for NaN, infinity or invalid UTF-8, naming `what`).
std::string canonical_json(const nlohmann::json& value, std::string_view what);

// Resolves a path stored in a "files" record against the run directory.
std::string resolve_logged_path(const std::string& run_dir, const std::string& stored);
// The reverse: how append_files stores `path` (relative to the run directory when inside it).
std::string logged_path(const std::string& run_dir, const std::string& path);

struct LoggedFile {
  std::string sha256;
  uint64_t bytes = 0;
};
// The checkpoint files the log of `run_dir` vouches for now, by stored path: the latest "checkpoint" entry
// recording each, unless a later "files_removed" entry records it as gone. A torn last line is left out (a
// crash while logging); any other line must be an entry that chains (parse_audit_entry), or this throws
// an Error naming its line.
std::map<std::string, LoggedFile> live_checkpoint_files(const std::string& run_dir);

}  // namespace triad
