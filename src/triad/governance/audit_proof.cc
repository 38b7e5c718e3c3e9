#include "triad/governance/audit_proof.h"

#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/governance/audit_log.h"
#include "triad/governance/encoding.h"

namespace triad {

namespace {
constexpr const char* kProofFormat = "triad-audit-inclusion/1";
}  // namespace

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
  if (!proof.is_object() || proof.value("format", nlohmann::json()) != kProofFormat)
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
