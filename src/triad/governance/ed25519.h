#pragma once
// Ed25519 signatures (RFC 8032) through OpenSSL's EVP interface; nothing here is hand-rolled. A private key
// is its 32-byte seed, as in RFC 8032 §5.1.5.

#include <array>
#include <cstdint>
#include <string_view>

namespace triad {

using Ed25519Seed = std::array<uint8_t, 32>;
using Ed25519PublicKey = std::array<uint8_t, 32>;
using Ed25519Signature = std::array<uint8_t, 64>;

// A fresh seed from OpenSSL's private CSPRNG.
Ed25519Seed ed25519_random_seed();
Ed25519PublicKey ed25519_public_key(const Ed25519Seed& seed);
Ed25519Signature ed25519_sign(const Ed25519Seed& seed, std::string_view message);
// False for a signature of the wrong length as well as for a wrong one.
bool ed25519_verify(const Ed25519PublicKey& key, std::string_view message, std::string_view signature);

// Overwrites secret bytes in a way the compiler will not optimise away.
void wipe_secret(void* data, size_t bytes);

}  // namespace triad
