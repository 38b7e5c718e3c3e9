#include "triad/governance/audit_verify.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/governance/audit_log.h"
#include "triad/governance/encoding.h"

namespace triad {

namespace fs = std::filesystem;

namespace {

constexpr const char* kProofFormat = "triad-audit-inclusion/1";

std::string head_label(uint64_t number, const std::string& path) {
  return fmt::format("head {} (audit/heads/{})", number, fs::path(path).filename().string());
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
    if (!e.is_object() || e["kind"] != "files_removed") continue;
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

// Checks the "files" records of one entry against the files as they are now. A record that a later
// files_removed entry closes (same path and SHA-256) is not checked: the file's removal is itself on the
// record (a pruned checkpoint), and is counted in `removed`.
void check_files(const std::string& run_dir, uint64_t index, const nlohmann::json& entry,
                 const Removals& removals, uint64_t& removed, VerifyReport& r) {
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
    if (!f.is_object() || !f.value("path", nlohmann::json()).is_string() ||
        !f.value("sha256", nlohmann::json()).is_string() ||
        !f.value("bytes", nlohmann::json()).is_number_unsigned()) {
      r.problems.push_back(fmt::format("{}: files[{}] needs path, sha256 and bytes", label, j));
      continue;
    }
    std::string stored = f["path"];
    auto closed = removals.find({stored, f["sha256"].get<std::string>()});
    if (closed != removals.end() && closed->second.back() > index) {
      ++removed;
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

// Each RUN/checkpoints/step_N/ must be one the log recorded (its manifest.json in a "files" record): one it
// never did was written by a run that died before logging it (train --resume sets such a checkpoint aside),
// or put there by hand.
void check_unlogged_checkpoints(const std::string& run_dir, const std::vector<nlohmann::json>& entries,
                                VerifyReport& r) {
  std::set<std::string> logged;
  for (const nlohmann::json& e : entries) {
    if (!e.is_object() || !e["payload"].is_object()) continue;
    const nlohmann::json& files = e["payload"].value("files", nlohmann::json());
    if (!files.is_array()) continue;
    for (const auto& f : files) {
      if (f.is_object() && f.value("path", nlohmann::json()).is_string()) logged.insert(f["path"]);
    }
  }
  std::vector<std::string> unlogged;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator(fs::path(run_dir) / "checkpoints", ec)) {
    const std::string name = d.path().filename().string();
    const bool step_dir = name.size() > 5 && name.rfind("step_", 0) == 0 &&
                          name.find_first_not_of("0123456789", 5) == std::string::npos;
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

}  // namespace

nlohmann::json VerifyReport::to_json() const {
  return {{"ok", ok()},     {"entries", entries},   {"heads", heads}, {"signed_heads", signed_heads},
          {"files", files}, {"problems", problems}, {"notes", notes}};
}

VerifyReport verify_audit(const std::string& run_dir, const NoteVerifier* trusted_key) {
  VerifyReport r;
  std::string log_path = audit_log_path(run_dir);
  if (!fs::is_regular_file(log_path)) {
    r.problems.push_back(fmt::format("{}: no audit log", log_path));
    return r;
  }

  // 1. Entries: each line on its own, then the chain.
  RawAuditLog raw = read_audit_lines(log_path);
  const size_t n = raw.lines.size();
  r.entries = n;
  std::vector<Hash> leaves;
  std::vector<nlohmann::json> entries(n);
  std::vector<bool> entry_ok(n, false);
  for (size_t i = 0; i < n; ++i) {
    leaves.push_back(merkle_leaf_hash(raw.lines[i]));
    try {
      entries[i] = parse_audit_entry(raw.lines[i], i, i ? &leaves[i - 1] : nullptr);
      entry_ok[i] = true;
    } catch (const Error& e) {
      r.problems.push_back(fmt::format("entry {} (log.jsonl line {}): {}", i, i + 1, e.what()));
      entries[i] = nlohmann::json::parse(raw.lines[i], nullptr, false);  // still read it if it parses
      if (!entries[i].is_object() || !entries[i].value("payload", nlohmann::json()).is_object())
        entries[i] = nlohmann::json();
    }
  }
  if (!raw.torn_tail.empty()) {
    r.problems.push_back(
        fmt::format("log.jsonl line {}: the last line is torn ({} bytes without a newline): a "
                    "crash during an append, or the file was cut",
                    n + 1, raw.torn_tail.size()));
  }
  std::string origin;
  if (n > 0 && entries[0].is_object() && entries[0]["kind"] == "audit_open" &&
      entries[0]["payload"].value("origin", nlohmann::json()).is_string()) {
    origin = entries[0]["payload"]["origin"];
  } else {
    r.problems.push_back(
        "entry 0 (log.jsonl line 1): must be an audit_open entry declaring the log's origin");
  }

  std::map<std::pair<std::string, uint32_t>, LoggedKey> logged_keys;
  uint64_t first_key_entry = UINT64_MAX;
  for (size_t i = 0; i < n; ++i) {
    if (!entries[i].is_object() || entries[i]["kind"] != "signing_key") continue;
    try {
      NoteVerifier key = parse_verifier(entries[i]["payload"].value("verifier_key", std::string()));
      logged_keys[{key.name, key.key_id}] = {key, i};
      first_key_entry = std::min<uint64_t>(first_key_entry, i);
    } catch (const Error& e) {
      r.problems.push_back(fmt::format("{}: {}", entry_label(i, entries[i]), e.what()));
    }
  }

  // 2 and 3. Heads: numbering, origin, root, consistency with the previous good head, signatures.
  std::vector<std::pair<uint64_t, std::string>> heads = list_audit_heads(run_dir);
  r.heads = heads.size();
  uint64_t expected = 1, covered = 0, unsigned_heads = 0, foreign_heads = 0;
  bool self_checked = false;
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
    if (!origin.empty() && cp.origin != origin)
      r.problems.push_back(fmt::format("{}: origin '{}' is not this log's ('{}')", label, cp.origin, origin));

    // Signatures first: a valid signature tells an altered log from an altered head.
    bool signature_valid = false;
    if (note.signatures.empty()) {
      ++unsigned_heads;
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
        auto it = logged_keys.find({sig.name, sig.key_id});
        if (it == logged_keys.end()) continue;
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
      self_checked |= signature_valid;
      if (!known) ++foreign_heads;
    }
    // Once the log records a signing key, every later head must carry a valid signature by a recorded key:
    // otherwise stripping or renaming a signature line would pass unnoticed without --pubkey.
    if (!trusted_key && !signature_valid && first_key_entry < cp.size &&
        std::none_of(note.signatures.begin(), note.signatures.end(), [&](const NoteSignature& sig) {
          return logged_keys.contains({sig.name, sig.key_id});
        })) {
      r.problems.push_back(
          fmt::format("{}: has no signature by the key recorded in entry {}, though it was "
                      "written after it (a signature was removed or altered)",
                      label, first_key_entry));
    }
    if (signature_valid) ++r.signed_heads;

    if (cp.size > n) {
      r.problems.push_back(
          fmt::format("{}: covers {} entries but the log has {}: entries were removed from its "
                      "end",
                      label, cp.size, n));
      continue;
    }
    std::span<const Hash> prefix(leaves.data(), cp.size);
    if (merkle_root(prefix) != cp.root) {
      bool chain_ok = std::all_of(entry_ok.begin(), entry_ok.begin() + static_cast<std::ptrdiff_t>(cp.size),
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
      continue;
    }
    if (previous) {
      std::vector<Hash> proof = merkle_consistency_proof(prefix, std::min(previous->size, cp.size));
      if (cp.size < previous->size ||
          !merkle_verify_consistency(previous->size, cp.size, proof, previous->root, cp.root)) {
        r.problems.push_back(fmt::format("{}: not consistent with the head before it (size {} after {})",
                                         label, cp.size, previous->size));
      }
    }
    previous = cp;
    covered = std::max(covered, cp.size);
  }

  // 4. Files.
  const Removals removals = collect_removals(entries);
  uint64_t removed = 0;
  for (size_t i = 0; i < n; ++i) {
    if (entries[i].is_object()) check_files(run_dir, i, entries[i], removals, removed, r);
  }
  check_unlogged_checkpoints(run_dir, entries, r);
  if (removed > 0) {
    r.notes.push_back(fmt::format(
        "{} logged files were not re-hashed: later files_removed entries record their removal (pruned "
        "checkpoints)",
        removed));
  }

  if (heads.empty()) {
    r.notes.push_back(
        "no tree heads yet: only the entry chain was checked (the trainer writes a head at each "
        "checkpoint and at the end)");
  } else if (covered < n) {
    r.notes.push_back(
        fmt::format("entries {}..{} come after the last head and are not sealed by one", covered, n - 1));
  }
  if (unsigned_heads > 0 && !trusted_key) {
    r.notes.push_back(
        fmt::format("{} of {} heads are unsigned: they catch accidental change, but whoever can "
                    "rewrite the log can rewrite them too (sign with an audit key)",
                    unsigned_heads, heads.size()));
  }
  if (self_checked) {
    r.notes.push_back(
        "signatures were checked against the key recorded in the log, which shows the heads are "
        "intact but not who signed them; pass --pubkey to check them against a key you trust");
  }
  if (foreign_heads > 0) {
    r.notes.push_back(fmt::format(
        "{} heads are signed by keys the log does not record; pass --pubkey to check them", foreign_heads));
  }
  if (trusted_key && r.signed_heads == heads.size() && !heads.empty()) {
    r.notes.push_back(fmt::format("every head is signed by the trusted key {}+{:08x}", trusted_key->name,
                                  trusted_key->key_id));
  }
  return r;
}

nlohmann::json make_inclusion_proof(const std::string& run_dir, uint64_t index, uint64_t head) {
  RawAuditLog raw = read_audit_lines(audit_log_path(run_dir));
  if (index >= raw.lines.size())
    fail("{}: there is no entry {} (the log has {})", audit_log_path(run_dir), index, raw.lines.size());
  std::vector<std::pair<uint64_t, std::string>> heads = list_audit_heads(run_dir);
  std::string chosen_path;
  uint64_t chosen = 0;
  Note note;
  Checkpoint cp;
  for (auto it = heads.rbegin(); it != heads.rend(); ++it) {
    if (head != 0 && it->first != head) continue;
    Note n = parse_note(read_file(it->second));
    Checkpoint c = parse_checkpoint(n.text);
    if (c.size <= index) {
      if (head != 0)
        fail("head {} covers entries 0..{}, not entry {}", head, static_cast<int64_t>(c.size) - 1, index);
      break;  // earlier heads are no larger
    }
    chosen = it->first;
    chosen_path = it->second;
    note = std::move(n);
    cp = std::move(c);
    break;
  }
  if (chosen == 0) {
    if (head != 0) fail("{}: there is no head {}", audit_heads_dir(run_dir), head);
    fail("entry {} is not covered by any head yet (the trainer writes one at each checkpoint)", index);
  }
  std::vector<Hash> leaves;
  for (size_t i = 0; i < cp.size && i < raw.lines.size(); ++i)
    leaves.push_back(merkle_leaf_hash(raw.lines[i]));
  if (leaves.size() != cp.size || merkle_root(leaves) != cp.root)
    fail("head {} does not match the log; run 'triad audit verify {}'", chosen, run_dir);
  nlohmann::json path = nlohmann::json::array();
  for (const Hash& h : merkle_inclusion_proof(leaves, index)) path.push_back(hex(h));
  return {{"format", kProofFormat}, {"origin", cp.origin},
          {"index", index},         {"entry", raw.lines[index]},
          {"tree_size", cp.size},   {"proof", path},
          {"head", chosen},         {"checkpoint", read_file(chosen_path)}};
}

nlohmann::json check_inclusion_proof(const nlohmann::json& proof, const NoteVerifier& key) {
  if (!proof.is_object() || proof.value("format", "") != kProofFormat)
    fail("not a triad audit inclusion proof (expected \"format\": \"{}\")", kProofFormat);
  for (const char* field : {"entry", "checkpoint", "origin"}) {
    if (!proof.value(field, nlohmann::json()).is_string()) fail("proof field '{}' must be a string", field);
  }
  for (const char* field : {"index", "tree_size"}) {
    const nlohmann::json& v = proof.value(field, nlohmann::json());
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
      fail("proof field '{}' must be a whole number", field);
  }
  if (!proof.value("proof", nlohmann::json()).is_array())
    fail("proof field 'proof' must be an array of hashes");

  Note note = parse_note(proof["checkpoint"].get<std::string>());
  switch (check_note(note, key)) {
    case NoteCheck::kVerified:
      break;
    case NoteCheck::kNotSignedByKey:
      fail("the checkpoint is not signed by {}+{:08x}", key.name, key.key_id);
    case NoteCheck::kBadSignature:
      fail("the checkpoint's signature by {} does not verify: the checkpoint was altered", key.name);
  }
  Checkpoint cp = parse_checkpoint(note.text);
  uint64_t index = proof["index"], size = proof["tree_size"];
  if (cp.origin != proof["origin"])
    fail("the checkpoint's origin is '{}', the proof claims '{}'", cp.origin,
         proof["origin"].get<std::string>());
  if (cp.size != size) fail("the checkpoint covers {} entries, the proof claims {}", cp.size, size);
  std::vector<Hash> path;
  for (const auto& node : proof["proof"]) {
    std::optional<Digest> h = node.is_string() ? digest_from_hex(node.get<std::string>()) : std::nullopt;
    if (!h) fail("proof node {} is not 64 lower-case hex digits", path.size());
    path.push_back(*h);
  }
  const std::string& entry = proof["entry"].get_ref<const std::string&>();
  if (!merkle_verify_inclusion(index, size, merkle_leaf_hash(entry), path, cp.root))
    fail(
        "entry {} with this audit path does not lead to the checkpoint's root: the entry or the proof was "
        "altered",
        index);
  nlohmann::json parsed = nlohmann::json::parse(entry, nullptr, false);
  if (!parsed.is_object() || parsed.value("seq", nlohmann::json()) != index)
    fail("the proven entry is not an audit entry with seq {}", index);
  return parsed;
}

}  // namespace triad
