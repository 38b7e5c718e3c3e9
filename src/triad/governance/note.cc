#include "triad/governance/note.h"

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <span>

#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/log.h"
#include "triad/governance/encoding.h"

namespace triad {

namespace {

constexpr uint8_t kAlgEd25519 = 0x01;
constexpr std::string_view kEmDash = "\xE2\x80\x94";  // U+2014, which starts a signature line
constexpr std::string_view kSignerPrefix = "PRIVATE+KEY+";
constexpr size_t kMaxSignatures = 100;

std::string key_id_hex(uint32_t id) {
  return fmt::format("{:08x}", id);
}

std::string key_material(std::span<const uint8_t, 32> key) {
  std::string bytes(1, static_cast<char>(kAlgEd25519));
  bytes.append(reinterpret_cast<const char*>(key.data()), key.size());
  return base64_encode(bytes);
}

// "<name>+<id>+<base64>": splits at the first two '+' (base64 may hold more), checks the algorithm byte and
// the length. `what` names the key kind in errors; the text itself is never quoted (it may be secret).
struct KeyParts {
  std::string name;
  uint32_t key_id = 0;
  std::array<uint8_t, 32> key{};
};

KeyParts split_key(std::string_view text, const char* what) {
  size_t a = text.find('+');
  size_t b = a == std::string_view::npos ? a : text.find('+', a + 1);
  if (b == std::string_view::npos) fail("{}: expected NAME+KEYID+BASE64", what);
  KeyParts parts;
  parts.name = std::string(text.substr(0, a));
  std::string_view id = text.substr(a + 1, b - a - 1);
  if (!valid_key_name(parts.name))
    fail("{}: the key name is empty or holds a space, '+' or control character", what);
  auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), parts.key_id, 16);
  if (id.size() != 8 || ec != std::errc() || end != id.data() + id.size() || key_id_hex(parts.key_id) != id)
    fail("{}: the key id must be 8 lower-case hex digits", what);
  std::optional<std::string> bytes = base64_decode(text.substr(b + 1));
  if (!bytes) fail("{}: the key material is not canonical base64", what);
  if (bytes->size() != 33 || static_cast<uint8_t>((*bytes)[0]) != kAlgEd25519) {
    wipe_secret(bytes->data(), bytes->size());
    fail("{}: not an Ed25519 key (expected algorithm byte 0x01 and 32 key bytes)", what);
  }
  std::copy(bytes->begin() + 1, bytes->end(), parts.key.begin());
  wipe_secret(bytes->data(), bytes->size());
  return parts;
}

bool valid_note_text(std::string_view text) {
  // UTF-8 validity is left to the consumers of the text; control characters other than newline are refused.
  return std::none_of(text.begin(), text.end(),
                      [](char c) { return c != '\n' && static_cast<unsigned char>(c) < 0x20; });
}

std::string trim_one_newline(std::string text) {
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  return text;
}

}  // namespace

uint32_t note_key_id(std::string_view name, const Ed25519PublicKey& key) {
  Sha256 h;
  h.update(name);
  const uint8_t sep[2] = {'\n', kAlgEd25519};
  h.update(sep, 2);
  h.update(key.data(), key.size());
  Digest d = h.finish();
  return uint32_t{d[0]} << 24 | uint32_t{d[1]} << 16 | uint32_t{d[2]} << 8 | uint32_t{d[3]};
}

bool valid_key_name(std::string_view name) {
  return !name.empty() && std::none_of(name.begin(), name.end(), [](char c) {
    return c == '+' || c == ' ' || static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
  });
}

std::string NoteVerifier::to_string() const {
  return name + "+" + key_id_hex(key_id) + "+" + key_material(key);
}

std::string NoteSigner::to_string() const {
  return std::string(kSignerPrefix) + name + "+" + key_id_hex(key_id) + "+" + key_material(seed);
}

NoteSigner make_signer(std::string name, const Ed25519Seed& seed) {
  if (!valid_key_name(name)) fail("key name '{}' is empty or holds a space, '+' or control character", name);
  NoteSigner signer;
  signer.name = std::move(name);
  signer.seed = seed;
  signer.public_key = ed25519_public_key(seed);
  signer.key_id = note_key_id(signer.name, signer.public_key);
  return signer;
}

NoteSigner generate_signer(std::string name) {
  Ed25519Seed seed = ed25519_random_seed();
  NoteSigner signer = make_signer(std::move(name), seed);
  wipe_secret(seed.data(), seed.size());
  return signer;
}

NoteSigner parse_signer(std::string_view text) {
  if (!text.starts_with(kSignerPrefix)) fail("signer key: expected PRIVATE+KEY+NAME+KEYID+BASE64");
  KeyParts parts = split_key(text.substr(kSignerPrefix.size()), "signer key");
  NoteSigner signer = make_signer(parts.name, parts.key);
  wipe_secret(parts.key.data(), parts.key.size());
  if (signer.key_id != parts.key_id) fail("signer key: the key id does not match the key");
  return signer;
}

NoteVerifier parse_verifier(std::string_view text) {
  KeyParts parts = split_key(text, "verifier key");
  NoteVerifier verifier{parts.name, parts.key_id, parts.key};
  if (note_key_id(verifier.name, verifier.key) != verifier.key_id)
    fail("verifier key: the key id does not match the key");
  return verifier;
}

NoteSigner load_signer(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) fail("cannot read signing key {}: {}", path, errno_text());
  if (st.st_mode & (S_IRWXG | S_IRWXO))
    log_warn("signing key {} can be read by other users (mode {:o}); chmod 600 it", path, st.st_mode & 0777);
  std::string text = trim_one_newline(read_file(path));
  try {
    NoteSigner signer = parse_signer(text);
    wipe_secret(text.data(), text.size());
    return signer;
  } catch (const Error& e) {
    wipe_secret(text.data(), text.size());
    fail("{}: {}", path, e.what());
  }
}

NoteVerifier load_verifier(const std::string& path_or_key) {
  if (!std::filesystem::is_regular_file(path_or_key)) {
    if (path_or_key.find('+') == std::string::npos) fail("public key {}: no such file", path_or_key);
    return parse_verifier(path_or_key);
  }
  std::string text = trim_one_newline(read_file(path_or_key));
  if (text.starts_with(kSignerPrefix)) fail("{}: this is a private key; give the .pub file", path_or_key);
  try {
    return parse_verifier(text);
  } catch (const Error& e) {
    fail("{}: {}", path_or_key, e.what());
  }
}

std::string sign_note(std::string_view text, const NoteSigner& signer) {
  if (text.empty() || text.back() != '\n' || text.ends_with("\n\n") || !valid_note_text(text))
    fail("note text must end in one newline and hold no control characters");
  Ed25519Signature sig = ed25519_sign(signer.seed, text);
  std::string blob(4, '\0');
  for (int i = 0; i < 4; ++i) blob[i] = static_cast<char>(signer.key_id >> (24 - 8 * i));
  blob.append(reinterpret_cast<const char*>(sig.data()), sig.size());
  return std::string(text) + "\n" + std::string(kEmDash) + " " + signer.name + " " + base64_encode(blob) +
         "\n";
}

Note parse_note(std::string_view note) {
  if (note.empty() || note.back() != '\n') fail("a note must end in a newline");
  if (!valid_note_text(note)) fail("a note must hold no control characters other than newline");
  Note out;
  size_t split = note.rfind("\n\n");
  if (split == std::string_view::npos) {
    out.text = std::string(note);
    return out;
  }
  out.text = std::string(note.substr(0, split + 1));
  std::string_view rest = note.substr(split + 2);
  while (!rest.empty()) {
    size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol + 1);
    if (!line.starts_with(kEmDash) || line.substr(kEmDash.size(), 1) != " ")
      fail("signature line {} does not start with an em dash and a space", out.signatures.size() + 1);
    line.remove_prefix(kEmDash.size() + 1);
    size_t space = line.find(' ');
    if (space == std::string_view::npos)
      fail("signature line {}: expected NAME SIGNATURE", out.signatures.size() + 1);
    NoteSignature sig;
    sig.name = std::string(line.substr(0, space));
    std::optional<std::string> blob = base64_decode(line.substr(space + 1));
    if (!valid_key_name(sig.name) || !blob || blob->size() < 5)
      fail("signature line {}: bad key name or signature encoding", out.signatures.size() + 1);
    for (int i = 0; i < 4; ++i) sig.key_id = sig.key_id << 8 | static_cast<uint8_t>((*blob)[i]);
    sig.signature = blob->substr(4);
    out.signatures.push_back(std::move(sig));
    if (out.signatures.size() > kMaxSignatures) fail("more than {} signatures", kMaxSignatures);
  }
  if (out.signatures.empty()) fail("a blank line ends the note but no signature follows");
  return out;
}

NoteCheck check_note(const Note& note, const NoteVerifier& verifier) {
  bool seen = false;
  for (const NoteSignature& sig : note.signatures) {
    if (sig.name != verifier.name || sig.key_id != verifier.key_id) continue;
    if (!ed25519_verify(verifier.key, note.text, sig.signature)) return NoteCheck::kBadSignature;
    seen = true;
  }
  return seen ? NoteCheck::kVerified : NoteCheck::kNotSignedByKey;
}

std::string Checkpoint::text() const {
  std::string out = fmt::format("{}\n{}\n{}\n", origin, size, base64_encode(digest_bytes(root)));
  for (const std::string& line : extensions) out += line + "\n";
  return out;
}

Checkpoint parse_checkpoint(std::string_view text) {
  if (text.empty() || text.back() != '\n') fail("checkpoint text must end in a newline");
  std::vector<std::string_view> lines;
  for (size_t start = 0; start < text.size();) {
    size_t eol = text.find('\n', start);
    lines.push_back(text.substr(start, eol - start));
    start = eol + 1;
  }
  if (lines.size() < 3) fail("a checkpoint has at least 3 lines (origin, tree size, root hash)");
  Checkpoint cp;
  cp.origin = std::string(lines[0]);
  if (cp.origin.empty()) fail("checkpoint line 1: empty origin");
  std::string_view size = lines[1];
  auto [end, ec] = std::from_chars(size.data(), size.data() + size.size(), cp.size);
  if (size.empty() || ec != std::errc() || end != size.data() + size.size() ||
      (size.size() > 1 && size[0] == '0'))
    fail("checkpoint line 2: the tree size must be a decimal number without leading zeros");
  std::optional<Digest> root = digest_from_base64(lines[2]);
  if (!root) fail("checkpoint line 3: the root hash must be 32 bytes in canonical base64");
  cp.root = *root;
  for (size_t i = 3; i < lines.size(); ++i) {
    if (lines[i].empty()) fail("checkpoint line {}: extension lines must not be empty", i + 1);
    cp.extensions.emplace_back(lines[i]);
  }
  return cp;
}

}  // namespace triad
