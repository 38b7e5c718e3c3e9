#pragma once
// Checking an audit log (audit_log.h) after the fact (proofs about single entries: audit_proof.h).
//
// verify_audit recomputes everything from the files and trusts none of them:
//  1. log.jsonl: every line complete (no torn tail), a canonical entry with seq = its index and prev = the
//     leaf hash of the line before; entry 0 declares the origin.
//  2. heads: numbered 1, 2, ... without a gap; each a checkpoint with the log's origin whose root is the
//     Merkle root of the first `size` entries, and consistent with the head before it (an RFC 9162
//     consistency proof built from the log and checked against the two heads).
//  3. signatures: with a trusted key, every head must carry a valid signature by it; without one, the
//     signatures are checked against the keys the log itself recorded (kind signing_key), which shows
//     integrity but not authorship. Unsigned heads are reported as such.
//  4. files: every "files" record still matches its file's size and SHA-256, unless a later
//     "files_removed" entry records that file (same path and SHA-256) as removed (a pruned checkpoint);
//     and every checkpoint directory RUN/checkpoints/step_N/ is one the log recorded.
//  5. the seal: a log that records a signing key (written just before the head it signs) has a head
//     covering that entry. With require_sealed, every entry is covered by a head that matches the log
//     (with a valid signature, when a key is known): entries after the last head are not protected against
//     being rewritten, or followed by forged ones, by anyone who can write the file; otherwise a note.
// Every problem names the entry (seq and line), the head (number and file) or the file at fault.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "triad/governance/note.h"

namespace triad {

struct VerifyReport {
  std::vector<std::string> problems;  // any one fails verification
  std::vector<std::string> notes;     // what could not be checked, and why
  uint64_t entries = 0, heads = 0, signed_heads = 0, files = 0;

  bool ok() const { return problems.empty(); }
  nlohmann::json to_json() const;
};

VerifyReport verify_audit(const std::string& run_dir, const NoteVerifier* trusted_key = nullptr,
                          bool require_sealed = false);

}  // namespace triad
