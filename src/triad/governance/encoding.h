#pragma once
// Text encodings of binary values used by the governance formats: standard base64 (RFC 4648 §4, padded, as
// signed notes and checkpoints use it) and lower-case hex (as triad writes every SHA-256). Decoders are
// strict: they accept only the canonical encoding and return nothing for anything else.

#include <optional>
#include <string>
#include <string_view>

#include "triad/core/sha256.h"

namespace triad {

std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);
std::optional<std::string> hex_decode(std::string_view text);

// A SHA-256 from 64 hex digits or 44 base64 characters; nothing when the text is not exactly that.
std::optional<Digest> digest_from_hex(std::string_view text);
std::optional<Digest> digest_from_base64(std::string_view text);
std::string_view digest_bytes(const Digest& digest);

}  // namespace triad
