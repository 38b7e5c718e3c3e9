#pragma once
// Signed notes (c2sp.org/signed-note) with Ed25519 keys, and transparency-log checkpoints
// (c2sp.org/tlog-checkpoint). Keys use the text forms of Go's golang.org/x/mod/sumdb/note, so triad's keys,
// heads and signatures interoperate with the Go tooling (and are tested against its published example):
//
//   verifier key (NAME.pub)  <name>+<key id: 8 hex>+<base64(0x01 || 32-byte public key)>
//   signer key   (NAME.key)  PRIVATE+KEY+<name>+<key id>+<base64(0x01 || 32-byte seed)>
//   key id                   first 4 bytes, big-endian, of SHA-256(name || 0x0A || 0x01 || public key)
//
//   note                     text (ends in "\n") + "\n" + one line per signature:
//                            "— <name> " + base64(key id || Ed25519 signature of the text) + "\n"
//   checkpoint text          <origin>\n<tree size>\n<base64 root hash>\n[extension lines]
//
// Parsing is strict (canonical base64, no leading zeros, no control characters) and errors never echo
// secret material.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "triad/governance/ed25519.h"
#include "triad/governance/merkle.h"

namespace triad {

struct NoteVerifier {
  std::string name;
  uint32_t key_id = 0;
  Ed25519PublicKey key{};

  std::string to_string() const;  // the verifier-key text
};

// Holds a private key; the seed is wiped when the object dies.
struct NoteSigner {
  std::string name;
  uint32_t key_id = 0;
  Ed25519Seed seed{};
  Ed25519PublicKey public_key{};

  NoteSigner() = default;
  NoteSigner(const NoteSigner&) = default;
  NoteSigner& operator=(const NoteSigner&) = default;
  ~NoteSigner() { wipe_secret(seed.data(), seed.size()); }

  NoteVerifier verifier() const { return {name, key_id, public_key}; }
  std::string to_string() const;  // the signer-key text: secret
};

uint32_t note_key_id(std::string_view name, const Ed25519PublicKey& key);
// Names must be non-empty, without spaces, '+' or control characters.
bool valid_key_name(std::string_view name);

NoteSigner make_signer(std::string name, const Ed25519Seed& seed);
NoteSigner generate_signer(std::string name);
NoteSigner parse_signer(std::string_view text);
NoteVerifier parse_verifier(std::string_view text);
// Reads a signer key file (one line); warns when others may read it.
NoteSigner load_signer(const std::string& path);
// A verifier key given as a file holding it, or as the key text itself.
NoteVerifier load_verifier(const std::string& path_or_key);

struct NoteSignature {
  std::string name;
  uint32_t key_id = 0;
  std::string signature;  // the bytes after the key id
};

struct Note {
  std::string text;                       // includes its final newline
  std::vector<NoteSignature> signatures;  // empty for an unsigned checkpoint
};

// `text` must end in a newline and hold no blank line at its end.
std::string sign_note(std::string_view text, const NoteSigner& signer);
// A note, or bare text ending in a newline (returned without signatures).
Note parse_note(std::string_view note);

enum class NoteCheck { kVerified, kNotSignedByKey, kBadSignature };
// Looks for a signature with the verifier's name and key id (others are ignored, as the spec says).
NoteCheck check_note(const Note& note, const NoteVerifier& verifier);

struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  Hash root{};
  std::vector<std::string> extensions;

  std::string text() const;
};

Checkpoint parse_checkpoint(std::string_view text);

}  // namespace triad
