#include "triad/governance/ed25519.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>

#include "triad/core/error.h"

namespace triad {

namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

Pkey private_key(const Ed25519Seed& seed) {
  Pkey key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
  if (!key) fail("OpenSSL: cannot load an Ed25519 private key");
  return key;
}

}  // namespace

Ed25519Seed ed25519_random_seed() {
  Ed25519Seed seed;
  if (RAND_priv_bytes(seed.data(), static_cast<int>(seed.size())) != 1)
    fail("OpenSSL: the random number generator failed");
  return seed;
}

Ed25519PublicKey ed25519_public_key(const Ed25519Seed& seed) {
  Pkey key = private_key(seed);
  Ed25519PublicKey out;
  size_t n = out.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), out.data(), &n) != 1 || n != out.size())
    fail("OpenSSL: cannot derive an Ed25519 public key");
  return out;
}

Ed25519Signature ed25519_sign(const Ed25519Seed& seed, std::string_view message) {
  Pkey key = private_key(seed);
  MdCtx ctx(EVP_MD_CTX_new());
  Ed25519Signature out;
  size_t n = out.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), out.data(), &n, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1 ||
      n != out.size()) {
    fail("OpenSSL: Ed25519 signing failed");
  }
  return out;
}

bool ed25519_verify(const Ed25519PublicKey& key, std::string_view message, std::string_view signature) {
  if (signature.size() != Ed25519Signature().size()) return false;
  Pkey pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.data(), key.size()));
  MdCtx ctx(EVP_MD_CTX_new());
  if (!pkey || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1)
    return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

void wipe_secret(void* data, size_t bytes) {
  OPENSSL_cleanse(data, bytes);
}

}  // namespace triad
