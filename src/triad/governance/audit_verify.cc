#include "triad/governance/audit_verify.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/format.h"
#include "triad/governance/audit_log.h"
#include "triad/governance/encoding.h"

namespace triad {

namespace fs = std::filesystem;

namespace {

std::string head_label(uint64_t number, const std::string& path) {
  return fmt::format("head {} (audit/heads/{})", number, fs::path(path).filename().string());
}

// An entry's kind, or null. An entry that failed its checks is kept when it parses (check_entries) and may
// lack the field: reading it with the const operator[] would be undefined.
nlohmann::json kind_of(const nlohmann::json& entry) {
  return entry.is_object() ? entry.value("kind", nlohmann::json()) : nlohmann::json();
}

std::string entry_label(uint64_t index, const nlohmann::json& entry) {
  if (!entry.is_object() || !entry.value("kind", nlohmann::json()).is_string())
    return fmt::format("entry {} (log.jsonl line {})", index, index + 1);
  return fmt::format("entry {} {} (log.jsonl line {})", index, entry["kind"].get<std::string>(), index + 1);
}

struct LoggedKey {
  NoteVerifier key;
  uint64_t entry;
};

// Files a "files_removed" entry recorded as gone: (stored path, sha256) -> the seqs of those entries.
using Removals = std::map<std::pair<std::string, std::string>, std::vector<uint64_t>>;

Removals collect_removals(const std::vector<nlohmann::json>& entries) {
  Removals out;
  for (size_t i = 0; i < entries.size(); ++i) {
    const nlohmann::json& e = entries[i];
    if (kind_of(e) != "files_removed") continue;
    const nlohmann::json& removed = e["payload"].value("removed", nlohmann::json());
    if (!removed.is_array()) continue;
    for (const auto& f : removed) {
      if (f.is_object() && f.value("path", nlohmann::json()).is_string() &&
          f.value("sha256", nlohmann::json()).is_string())
        out[{f["path"], f["sha256"]}].push_back(i);
    }
  }
  return out;
}

// What phase 4 found besides problems.
struct LoggedFiles {
  uint64_t removed = 0;            // records not re-hashed: a later files_removed entry closes them
  std::set<std::string> recorded;  // every path a "files" record names, as stored
};

// Checks the "files" records of one entry against the files as they are now. A record that a later
// files_removed entry closes (same path and SHA-256) is not checked: the file's removal is itself on the
// record (a pruned checkpoint), and is counted in `out.removed`.
void check_entry_files(const std::string& run_dir, uint64_t index, const nlohmann::json& entry,
                       const Removals& removals, LoggedFiles& out, VerifyReport& r) {
  const nlohmann::json& payload = entry["payload"];
  if (!payload.contains("files")) return;
  const nlohmann::json& files = payload["files"];
  std::string label = entry_label(index, entry);
  if (!files.is_array()) {
    r.problems.push_back(label + ": 'files' is not an array");
    return;
  }
  for (size_t j = 0; j < files.size(); ++j) {
    const nlohmann::json& f = files[j];
    if (f.is_object() && f.value("path", nlohmann::json()).is_string()) out.recorded.insert(f["path"]);
    if (!f.is_object() || !f.value("path", nlohmann::json()).is_string() ||
        !f.value("sha256", nlohmann::json()).is_string() ||
        !f.value("bytes", nlohmann::json()).is_number_unsigned()) {
      r.problems.push_back(fmt::format("{}: files[{}] needs path, sha256 and bytes", label, j));
      continue;
    }
    std::string stored = f["path"];
    auto closed = removals.find({stored, f["sha256"].get<std::string>()});
    if (closed != removals.end() && closed->second.back() > index) {
      ++out.removed;
      continue;
    }
    ++r.files;
    std::string path = resolve_logged_path(run_dir, stored);
    if (!fs::is_regular_file(path)) {
      r.problems.push_back(fmt::format("{}: logged file {} is missing", label, stored));
      continue;
    }
    uint64_t bytes = file_size(path);
    std::string digest = sha256_file_hex(path);
    if (bytes != f["bytes"].get<uint64_t>() || digest != f["sha256"].get<std::string>()) {
      r.problems.push_back(fmt::format(
          "{}: logged file {} has changed since it was logged ({} bytes, SHA-256 {}; "
          "logged {} bytes, SHA-256 {})",
          label, stored, bytes, digest, f["bytes"].get<uint64_t>(), f["sha256"].get<std::string>()));
    }
  }
}

// ---- The phases of verify_audit, in the order it runs them; each adds its problems to the report. ----

// The log as phase 1 read it, for the phases after it.
struct LogEntries {
  std::vector<Hash> leaves;             // every complete line's leaf hash
  std::vector<nlohmann::json> entries;  // each line parsed; null when it is not an entry at all
  std::vector<bool> entry_ok;           // the line passed every check of phase 1
  std::string origin;                   // what entry 0 declares; empty when it does not
};

// Phase 1, the entry chain: every line complete (no torn tail), a canonical entry with seq = its index and
// prev = the leaf hash of the line before; entry 0 an audit_open entry declaring the origin. A line that
// fails is still kept when it parses as an object with a payload, so that later phases can use it.
LogEntries check_entries(const std::string& log_path, VerifyReport& r) {
  RawAuditLog raw = read_audit_lines(log_path);
  const size_t n = raw.lines.size();
  r.entries = n;
  LogEntries log;
  log.entries.resize(n);
  log.entry_ok.assign(n, false);
  for (size_t i = 0; i < n; ++i) {
    log.leaves.push_back(merkle_leaf_hash(raw.lines[i]));
    nlohmann::json& entry = log.entries[i];
    try {
      entry = parse_audit_entry(raw.lines[i], i, i ? &log.leaves[i - 1] : nullptr);
      log.entry_ok[i] = true;
    } catch (const Error& e) {
      r.problems.push_back(fmt::format("entry {} (log.jsonl line {}): {}", i, i + 1, e.what()));
      entry = nlohmann::json::parse(raw.lines[i], nullptr, false);  // still read it if it parses
      if (!entry.is_object() || !entry.value("payload", nlohmann::json()).is_object())
        entry = nlohmann::json();
    }
  }
  if (!raw.torn_tail.empty()) {
    r.problems.push_back(
        fmt::format("log.jsonl line {}: the last line is torn ({} bytes without a newline): a "
                    "crash during an append, or the file was cut",
                    n + 1, raw.torn_tail.size()));
  }
  // A kept entry always has an object payload (see above).
  if (n > 0 && kind_of(log.entries[0]) == "audit_open" &&
      log.entries[0]["payload"].value("origin", nlohmann::json()).is_string()) {
    log.origin = log.entries[0]["payload"]["origin"];
  } else {
    r.problems.push_back(
        "entry 0 (log.jsonl line 1): must be an audit_open entry declaring the log's origin");
  }
  return log;
}

// The signing keys the log records (kind signing_key), by name and key id.
struct LoggedKeys {
  std::map<std::pair<std::string, uint32_t>, LoggedKey> keys;
  uint64_t first_entry = UINT64_MAX;  // the first entry that records one
  uint64_t last_entry = UINT64_MAX;   // the last (UINT64_MAX: none)

  bool contains(const NoteSignature& sig) const { return keys.contains({sig.name, sig.key_id}); }
};

// Reads the keys the log records; a key that does not parse is a problem of its entry.
LoggedKeys collect_logged_keys(const LogEntries& log, VerifyReport& r) {
  LoggedKeys out;
  for (size_t i = 0; i < log.entries.size(); ++i) {
    const nlohmann::json& entry = log.entries[i];
    if (kind_of(entry) != "signing_key") continue;
    try {
      NoteVerifier key = parse_verifier(entry["payload"].value("verifier_key", std::string()));
      out.keys[{key.name, key.key_id}] = {key, i};
      out.first_entry = std::min<uint64_t>(out.first_entry, i);
      out.last_entry = i;
    } catch (const Error& e) {
      r.problems.push_back(fmt::format("{}: {}", entry_label(i, entry), e.what()));
    }
  }
  return out;
}

// What the heads leave for the verdict, beyond the report's counts.
struct HeadsSummary {
  uint64_t covered = 0;         // entries covered by a head that matches the log
  uint64_t sealed = 0;          // the same, counting only heads with a valid signature when a key is known
  bool keyed = false;           // a key is known (--pubkey, or one the log records): heads must be signed
  uint64_t unsigned_heads = 0;  // heads with no signature at all
  uint64_t foreign_heads = 0;   // without a trusted key: heads signed only by keys the log does not record
  bool self_checked = false;    // some head's signatures were checked against a key the log records
};

// Phase 3 for one head, its signatures. With a trusted key the head must carry a valid signature by it.
// Without one, each signature by a key the log records must verify against that key, and once the log
// records a key every head written after it must carry such a signature: otherwise stripping or renaming a
// signature line would pass unnoticed without --pubkey. Returns whether the head has a valid signature.
bool check_head_signatures(const Note& note, const Checkpoint& cp, const std::string& label,
                           const LoggedKeys& logged, const NoteVerifier* trusted_key, HeadsSummary& s,
                           VerifyReport& r) {
  bool signature_valid = false;
  if (note.signatures.empty()) {
    ++s.unsigned_heads;
    if (trusted_key)
      r.problems.push_back(fmt::format("{}: unsigned, but every head must be signed by {}+{:08x}", label,
                                       trusted_key->name, trusted_key->key_id));
  } else if (trusted_key) {
    switch (check_note(note, *trusted_key)) {
      case NoteCheck::kVerified:
        signature_valid = true;
        break;
      case NoteCheck::kNotSignedByKey:
        r.problems.push_back(fmt::format("{}: not signed by the trusted key {}+{:08x}", label,
                                         trusted_key->name, trusted_key->key_id));
        break;
      case NoteCheck::kBadSignature:
        r.problems.push_back(fmt::format("{}: the signature by {} does not verify: the head was altered",
                                         label, trusted_key->name));
        break;
    }
  } else {
    bool known = false, bad = false;
    for (const NoteSignature& sig : note.signatures) {
      auto it = logged.keys.find({sig.name, sig.key_id});
      if (it == logged.keys.end()) continue;
      known = true;
      if (check_note(note, it->second.key) != NoteCheck::kVerified) {
        bad = true;
        r.problems.push_back(
            fmt::format("{}: the signature by {} does not verify against the key logged in "
                        "entry {}: the head was altered",
                        label, sig.name, it->second.entry));
      }
    }
    signature_valid = known && !bad;
    s.self_checked |= signature_valid;
    if (!known) ++s.foreign_heads;
  }
  if (!trusted_key && !signature_valid && logged.first_entry < cp.size &&
      std::none_of(note.signatures.begin(), note.signatures.end(),
                   [&](const NoteSignature& sig) { return logged.contains(sig); })) {
    r.problems.push_back(
        fmt::format("{}: has no signature by the key recorded in entry {}, though it was "
                    "written after it (a signature was removed or altered)",
                    label, logged.first_entry));
  }
  return signature_valid;
}

// Phase 2 for one head, its tree: it covers no more entries than the log has, its root is the Merkle root
// of the first `size` entries, and it is consistent with `previous`, the last head that matched (an RFC
// 9162 consistency proof built from the log and checked against the two heads). Returns whether its root
// matches the log. A valid signature on a head whose root does not match puts the blame on the log.
bool check_head_tree(const Checkpoint& cp, const std::string& label, const LogEntries& log,
                     bool signature_valid, const std::optional<Checkpoint>& previous, VerifyReport& r) {
  const size_t n = log.leaves.size();
  if (cp.size > n) {
    r.problems.push_back(
        fmt::format("{}: covers {} entries but the log has {}: entries were removed from its "
                    "end",
                    label, cp.size, n));
    return false;
  }
  std::span<const Hash> prefix(log.leaves.data(), cp.size);
  if (merkle_root(prefix) != cp.root) {
    bool chain_ok =
        std::all_of(log.entry_ok.begin(), log.entry_ok.begin() + static_cast<std::ptrdiff_t>(cp.size),
                    [](bool ok) { return ok; });
    std::string who =
        !chain_ok      ? "see the entry problems above"
        : cp.size == 0 ? "the head was altered"
        : signature_valid
            ? fmt::format("the head's signature is valid, so entry {} (log.jsonl line {}) was altered",
                          cp.size - 1, cp.size)
            : fmt::format("entry {} (log.jsonl line {}) or the head itself was altered", cp.size - 1,
                          cp.size);
    r.problems.push_back(fmt::format("{}: its root hash does not match entries 0..{}: {}", label,
                                     static_cast<int64_t>(cp.size) - 1, who));
    return false;
  }
  if (previous) {
    std::vector<Hash> proof = merkle_consistency_proof(prefix, std::min(previous->size, cp.size));
    if (cp.size < previous->size ||
        !merkle_verify_consistency(previous->size, cp.size, proof, previous->root, cp.root)) {
      r.problems.push_back(fmt::format("{}: not consistent with the head before it (size {} after {})", label,
                                       cp.size, previous->size));
    }
  }
  return true;
}

// Phases 2 and 3, the heads: numbered 1, 2, ... without a gap, each a checkpoint (a note) with the log's
// origin, then its signatures (first: a valid signature tells an altered log from an altered head) and
// its tree.
HeadsSummary check_heads(const std::string& run_dir, const LogEntries& log, const LoggedKeys& logged,
                         const NoteVerifier* trusted_key, VerifyReport& r) {
  std::vector<std::pair<uint64_t, std::string>> heads = list_audit_heads(run_dir);
  r.heads = heads.size();
  HeadsSummary s;
  s.keyed = trusted_key || !logged.keys.empty();
  uint64_t expected = 1;
  std::optional<Checkpoint> previous;
  for (const auto& [number, path] : heads) {
    std::string label = head_label(number, path);
    if (number != expected) {
      r.problems.push_back(
          fmt::format("head {} is missing before {}: heads are numbered 1, 2, 3, ... (was one "
                      "deleted?)",
                      expected, label));
    }
    expected = number + 1;
    Note note;
    Checkpoint cp;
    try {
      note = parse_note(read_file(path));
      cp = parse_checkpoint(note.text);
    } catch (const Error& e) {
      r.problems.push_back(fmt::format("{}: {}", label, e.what()));
      continue;
    }
    if (!log.origin.empty() && cp.origin != log.origin)
      r.problems.push_back(
          fmt::format("{}: origin '{}' is not this log's ('{}')", label, cp.origin, log.origin));

    bool signature_valid = check_head_signatures(note, cp, label, logged, trusted_key, s, r);
    if (signature_valid) ++r.signed_heads;
    if (!check_head_tree(cp, label, log, signature_valid, previous, r)) continue;
    previous = cp;
    s.covered = std::max(s.covered, cp.size);
    if (signature_valid || !s.keyed) s.sealed = std::max(s.sealed, cp.size);
  }
  return s;
}

// Phase 4, the files: every "files" record of every entry against the file as it is now (check_entry_files).
LoggedFiles check_logged_files(const std::string& run_dir, const LogEntries& log, VerifyReport& r) {
  const Removals removals = collect_removals(log.entries);
  LoggedFiles out;
  for (size_t i = 0; i < log.entries.size(); ++i) {
    if (log.entries[i].is_object()) check_entry_files(run_dir, i, log.entries[i], removals, out, r);
  }
  return out;
}

// Phase 5, the checkpoints: each RUN/checkpoints/step_N/ must be one the log recorded (its manifest.json in a
// "files" record): one it never did was written by a run that died before logging it (train --resume sets
// such a checkpoint aside), or put there by hand.
void check_unlogged_checkpoints(const std::string& run_dir, const std::set<std::string>& logged,
                                VerifyReport& r) {
  std::vector<std::string> unlogged;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator(fs::path(run_dir) / "checkpoints", ec)) {
    const std::string name = d.path().filename().string();
    const bool step_dir = name.starts_with("step_") && all_digits(std::string_view(name).substr(5));
    if (step_dir && d.is_directory() &&
        !logged.contains(logged_path(run_dir, (d.path() / "manifest.json").string())))
      unlogged.push_back(logged_path(run_dir, d.path().string()));
  }
  std::sort(unlogged.begin(), unlogged.end());
  for (const std::string& dir : unlogged) {
    r.problems.push_back(fmt::format(
        "{}: a checkpoint the log never recorded (the run stopped between writing and logging it, "
        "or it was put there by hand; 'triad train --resume' sets it aside)",
        dir));
  }
}

// What an unsealed entry is open to, for the verdict.
constexpr const char* kUnsealed =
    "anyone who can write log.jsonl can rewrite them, or append entries after them, and verify would not "
    "notice";

std::string sealing_head(const HeadsSummary& s) {
  return s.keyed ? "head with a valid signature" : "head";
}

// Phase 6, the seal. A signing_key entry is written just before the first head its key signs, so a log
// that records one while no head covers it has lost its heads (or a run was killed between the two). With
// --require-sealed every entry must be covered by a head (with a valid signature when a key is known).
void check_sealed(const LoggedKeys& logged, const HeadsSummary& s, bool require_sealed, VerifyReport& r) {
  if (logged.last_entry != UINT64_MAX && s.covered <= logged.last_entry) {
    r.problems.push_back(fmt::format(
        "entry {} signing_key (log.jsonl line {}): records the key of a head written right after it, but no "
        "head covers this entry: heads were deleted (or a run was killed while writing one; 'triad audit "
        "seal RUN --key KEY' writes a new one)",
        logged.last_entry, logged.last_entry + 1));
  }
  if (require_sealed && s.sealed < r.entries) {
    r.problems.push_back(fmt::format("entries {}..{} are not sealed by a {} (--require-sealed): {}", s.sealed,
                                     r.entries - 1, sealing_head(s), kUnsealed));
  }
}

// The verdict is the problems the phases found; this adds the notes on what they could not check, or
// checked only in part: pruned files, entries no head seals (unless --require-sealed made them problems),
// unsigned heads, signatures checked only against the log's own keys or not at all.
void add_verdict_notes(uint64_t removed, const HeadsSummary& s, const NoteVerifier* trusted_key,
                       bool require_sealed, VerifyReport& r) {
  if (removed > 0) {
    r.notes.push_back(fmt::format(
        "{} logged files were not re-hashed: later files_removed entries record their removal (pruned "
        "checkpoints)",
        removed));
  }
  const bool unsealed = !require_sealed && s.sealed < r.entries;  // with the flag they are problems
  if (unsealed && r.heads == 0) {
    r.notes.push_back(fmt::format(
        "no tree heads: only the entry chain was checked, and no entry is sealed: {} (the trainer writes a "
        "head at each checkpoint and at the end, so a finished run without heads has lost them; "
        "--require-sealed fails on this)",
        kUnsealed));
  } else if (unsealed) {
    r.notes.push_back(
        fmt::format("entries {}..{} come after the last {} and are not sealed by one: {} (--require-sealed "
                    "fails on this)",
                    s.sealed, r.entries - 1, sealing_head(s), kUnsealed));
  }
  if (s.unsigned_heads > 0 && !trusted_key) {
    r.notes.push_back(
        fmt::format("{} of {} heads are unsigned: they catch accidental change, but whoever can "
                    "rewrite the log can rewrite them too (sign with an audit key)",
                    s.unsigned_heads, r.heads));
  }
  if (s.self_checked) {
    r.notes.push_back(
        "signatures were checked against the key recorded in the log, which shows the heads are "
        "intact but not who signed them; pass --pubkey to check them against a key you trust");
  }
  if (s.foreign_heads > 0) {
    r.notes.push_back(fmt::format(
        "{} heads are signed by keys the log does not record; pass --pubkey to check them", s.foreign_heads));
  }
  if (trusted_key && r.signed_heads == r.heads && r.heads > 0) {
    r.notes.push_back(fmt::format("every head is signed by the trusted key {}+{:08x}", trusted_key->name,
                                  trusted_key->key_id));
  }
}

}  // namespace

nlohmann::json VerifyReport::to_json() const {
  return {{"ok", ok()},     {"entries", entries},   {"heads", heads}, {"signed_heads", signed_heads},
          {"files", files}, {"problems", problems}, {"notes", notes}};
}

VerifyReport verify_audit(const std::string& run_dir, const NoteVerifier* trusted_key, bool require_sealed) {
  VerifyReport r;
  std::string log_path = audit_log_path(run_dir);
  if (!fs::is_regular_file(log_path)) {
    r.problems.push_back(fmt::format("{}: no audit log", log_path));
    return r;
  }
  const LogEntries log = check_entries(log_path, r);
  const LoggedKeys logged = collect_logged_keys(log, r);
  const HeadsSummary heads = check_heads(run_dir, log, logged, trusted_key, r);
  const LoggedFiles files = check_logged_files(run_dir, log, r);
  check_unlogged_checkpoints(run_dir, files.recorded, r);
  check_sealed(logged, heads, require_sealed, r);
  add_verdict_notes(files.removed, heads, trusted_key, require_sealed, r);
  return r;
}

}  // namespace triad
