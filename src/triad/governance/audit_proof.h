#pragma once
// Inclusion proofs: that one entry is in a run's audit log, checkable by someone who holds only the public
// key (RFC 9162 audit path to a signed tree head).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "triad/governance/note.h"

namespace triad {

// An inclusion proof of entry `index`, self-contained:
//   {"format":"triad-audit-inclusion/1","origin":..,"index":..,"entry":"<the line>","tree_size":..,
//    "proof":["<hex>",...],"head":N,"checkpoint":"<the head file: a signed note>"}
// It uses head number `head`, or when 0 the latest head that covers the entry.
nlohmann::json make_inclusion_proof(const std::string& run_dir, uint64_t index, uint64_t head = 0);

// Checks such a proof with nothing but a public key: the checkpoint's signature, then the entry's audit
// path to the checkpoint's root. Returns the proven entry, parsed; throws an Error naming what failed.
nlohmann::json check_inclusion_proof(const nlohmann::json& proof, const NoteVerifier& key);

}  // namespace triad
