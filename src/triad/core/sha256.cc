#include "triad/core/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "triad/core/error.h"

namespace triad {

struct Sha256::State {
  EVP_MD_CTX* ctx;
};

Sha256::Sha256() : state_(new State{EVP_MD_CTX_new()}) {
  if (!state_->ctx || EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr) != 1)
    fail("OpenSSL: SHA-256 init");
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(state_->ctx);
  delete state_;
}

void Sha256::update(const void* data, size_t bytes) {
  if (EVP_DigestUpdate(state_->ctx, data, bytes) != 1) fail("OpenSSL: SHA-256 update");
}

Digest Sha256::finish() {
  Digest out;
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(state_->ctx, out.data(), &n) != 1 || n != out.size()) fail("OpenSSL: SHA-256 final");
  return out;
}

Digest sha256(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

std::string hex(const Digest& digest) {
  static const char* kDigits = "0123456789abcdef";
  std::string out(digest.size() * 2, '0');
  for (size_t i = 0; i < digest.size(); ++i) {
    out[2 * i] = kDigits[digest[i] >> 4];
    out[2 * i + 1] = kDigits[digest[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  return hex(sha256(data));
}

// Read in chunks, not mapped: a mapped checkpoint of 16 GB would count in the process's RSS and address
// space while it is hashed, beside the training state it was saved from.
std::string sha256_file_hex(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) fail("cannot open {}: {}", path, errno_text());
  Sha256 h;
  std::vector<char> chunk(size_t{1} << 20);
  while (size_t n = std::fread(chunk.data(), 1, chunk.size(), file.get())) h.update(chunk.data(), n);
  if (std::ferror(file.get())) fail("cannot read {}: {}", path, errno_text());
  return hex(h.finish());
}

}  // namespace triad
