// Ed25519 against RFC 8032 §7.1, signed notes and keys against the published example of Go's
// golang.org/x/mod/sumdb/note (note_test.go: the PeterNeumann key pair and note), checkpoints, and
// `triad audit keygen`.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "test_util.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/governance/ed25519.h"
#include "triad/governance/encoding.h"
#include "triad/governance/note.h"

namespace triad {
namespace {

using testing::RefusedWith;

using ::testing::HasSubstr;
using ::testing::Not;

template <size_t N>
std::array<uint8_t, N> bytes_of(const std::string& hex_text) {
  std::string raw = *hex_decode(hex_text);
  std::array<uint8_t, N> out{};
  EXPECT_EQ(raw.size(), N);
  std::copy(raw.begin(), raw.end(), out.begin());
  return out;
}

struct Rfc8032Vector {
  const char* seed;
  const char* public_key;
  const char* message;
  const char* signature;
};

// RFC 8032 §7.1, TEST 1, TEST 2 and TEST 3.
const Rfc8032Vector kRfc8032[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f"
     "0595bbe2"
     "4655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2ea"
     "eb4302ae"
     "eb00d291612bb0c00"},
    {"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e"
     "9716ed28"
     "dc027beceea1ec40a"},
};

TEST(GovernanceNote, Ed25519MatchesRfc8032Section7_1) {
  for (const Rfc8032Vector& v : kRfc8032) {
    Ed25519Seed seed = bytes_of<32>(v.seed);
    Ed25519PublicKey pub = ed25519_public_key(seed);
    EXPECT_EQ(pub, bytes_of<32>(v.public_key));
    std::string message = *hex_decode(v.message);
    Ed25519Signature sig = ed25519_sign(seed, message);
    EXPECT_EQ(sig, bytes_of<64>(v.signature));
    std::string sig_bytes(sig.begin(), sig.end());
    EXPECT_TRUE(ed25519_verify(pub, message, sig_bytes));
    EXPECT_FALSE(ed25519_verify(pub, message + "x", sig_bytes));
    sig_bytes[10] ^= 1;
    EXPECT_FALSE(ed25519_verify(pub, message, sig_bytes));
    EXPECT_FALSE(ed25519_verify(pub, message, sig_bytes.substr(0, 63)));
  }
}

// golang.org/x/mod/sumdb/note note_test.go.
const std::string kGoVerifier = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const std::string kGoSigner =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const std::string kGoText =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const std::string kGoSignature =
    "\xE2\x80\x94 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

TEST(GovernanceNote, KeysAndSignatureMatchTheGoExampleByteForByte) {
  NoteSigner signer = parse_signer(kGoSigner);
  EXPECT_EQ(signer.name, "PeterNeumann");
  EXPECT_EQ(signer.key_id, 0xc74f20a3u);
  EXPECT_EQ(signer.to_string(), kGoSigner);
  EXPECT_EQ(signer.verifier().to_string(), kGoVerifier);
  NoteVerifier verifier = parse_verifier(kGoVerifier);
  EXPECT_EQ(verifier.key, signer.public_key);
  EXPECT_EQ(note_key_id(verifier.name, verifier.key), 0xc74f20a3u);

  std::string note = sign_note(kGoText, signer);
  EXPECT_EQ(note, kGoText + "\n" + kGoSignature);
  Note parsed = parse_note(note);
  EXPECT_EQ(parsed.text, kGoText);
  ASSERT_EQ(parsed.signatures.size(), 1u);
  EXPECT_EQ(check_note(parsed, verifier), NoteCheck::kVerified);

  std::string altered = note;
  altered.replace(altered.find("cryptography"), 12, "cryptographY");
  EXPECT_EQ(check_note(parse_note(altered), verifier), NoteCheck::kBadSignature);
  NoteSigner other = make_signer("PeterNeumann", Ed25519Seed{7});
  EXPECT_EQ(check_note(parsed, other.verifier()), NoteCheck::kNotSignedByKey);  // same name, other id
}

TEST(GovernanceNote, EveryManglingOfAVerifierKeyIsRefused) {
  // As in Go's TestNewVerifier: every proper substring and every single-byte change is rejected.
  for (size_t i = 0; i <= kGoVerifier.size(); ++i) {
    for (size_t j = i + 1; j <= kGoVerifier.size(); ++j) {
      if (i == 0 && j == kGoVerifier.size()) continue;
      EXPECT_THROW(parse_verifier(kGoVerifier.substr(i, j - i)), Error) << kGoVerifier.substr(i, j - i);
    }
  }
  for (size_t i = 0; i < kGoVerifier.size(); ++i) {
    std::string k = kGoVerifier;
    ++k[i];
    EXPECT_THROW(parse_verifier(k), Error) << k;
  }
}

TEST(GovernanceNote, SignerKeyErrorsDoNotEchoTheSecret) {
  std::string bad = kGoSigner;
  bad[bad.size() - 3] = '*';  // not base64
  try {
    parse_signer(bad);
    FAIL() << "accepted a malformed signer key";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), Not(HasSubstr("AYEKFALV")));
    EXPECT_THAT(e.what(), HasSubstr("signer key"));
  }
  std::string wrong_id = kGoSigner;
  wrong_id.replace(wrong_id.find("c74f20a3"), 8, "c74f20a4");
  EXPECT_THROW(parse_signer(wrong_id), Error);
}

TEST(GovernanceNote, MalformedNotesAreRefused) {
  NoteSigner signer = parse_signer(kGoSigner);
  std::string note = sign_note(kGoText, signer);
  EXPECT_THROW(parse_note(note.substr(0, note.size() - 1)), Error);      // no final newline
  EXPECT_THROW(parse_note(kGoText + "\n"), Error);                       // blank line, no signature
  EXPECT_THROW(parse_note(kGoText + "\n- PeterNeumann abc=\n"), Error);  // not an em dash
  EXPECT_THROW(parse_note(kGoText + "\n\xE2\x80\x94 PeterNeumann !!!!\n"), Error);  // not base64
  EXPECT_THROW(parse_note("a\tb\n"), Error);                                        // control character
  EXPECT_THROW(sign_note("no newline", signer), Error);
  EXPECT_THROW(sign_note("ends in a blank line\n\n", signer), Error);
  EXPECT_TRUE(parse_note(kGoText).signatures.empty());  // bare text: an unsigned checkpoint
}

TEST(GovernanceNote, CheckpointsFollowC2spTlogCheckpoint) {
  Checkpoint cp{"example.com/behind-the-sofa",
                20852163,
                *digest_from_base64("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="),
                {}};
  EXPECT_EQ(cp.text(),
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n");
  Checkpoint back = parse_checkpoint(cp.text());
  EXPECT_EQ(back.origin, cp.origin);
  EXPECT_EQ(back.size, cp.size);
  EXPECT_EQ(back.root, cp.root);
  EXPECT_EQ(parse_checkpoint(cp.text() + "extension\n").extensions.size(), 1u);
  EXPECT_EQ(parse_checkpoint("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n").size, 0u);
  for (const char* bad : {"o\n12\n", "\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
                          "o\n012\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
                          "o\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
                          "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\n", "o\n1\nAAAA\n",
                          "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n",
                          "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}) {
    EXPECT_THROW(parse_checkpoint(bad), Error) << bad;
  }
}

TEST(GovernanceNote, Base64AndHexDecodersAreStrict) {
  EXPECT_EQ(base64_decode("aGk="), "hi");
  EXPECT_FALSE(base64_decode("aGk"));    // unpadded
  EXPECT_FALSE(base64_decode("aGl="));   // non-zero padding bits
  EXPECT_FALSE(base64_decode(" aGk="));  // whitespace
  EXPECT_FALSE(base64_decode("aGk=aGk="));
  EXPECT_EQ(hex_decode("00ff"), std::string("\0\xff", 2));
  EXPECT_FALSE(hex_decode("00FF"));
  EXPECT_FALSE(hex_decode("0"));
  EXPECT_FALSE(digest_from_hex(std::string(62, 'a')));
}

TEST(GovernanceNote, KeygenWritesAPrivateKeyReadableOnlyByItsOwner) {
  testing::TempDir dir;
  auto r = testing::run_triad("audit keygen --out " + dir / "keys/alice");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  struct stat st;
  ASSERT_EQ(::stat((dir / "keys/alice.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string secret = read_file(dir / "keys/alice.key");
  // PRIVATE+KEY+<name>+<hash>+<key>: the key (base64, which may itself hold a '+') is never printed.
  size_t key_at = 0;
  for (int field = 0; field < 4; ++field) key_at = secret.find('+', key_at) + 1;
  const std::string key = secret.substr(key_at, secret.find_last_not_of("\n") + 1 - key_at);
  ASSERT_GE(key.size(), 40u) << secret;
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(key)));
  NoteSigner signer = load_signer(dir / "keys/alice.key");
  NoteVerifier verifier = load_verifier(dir / "keys/alice.pub");
  EXPECT_EQ(signer.name, "alice");
  EXPECT_EQ(signer.verifier().to_string(), verifier.to_string());
  EXPECT_THAT(r.out, HasSubstr(verifier.to_string()));

  auto again = testing::run_triad("audit keygen --out " + dir / "keys/alice");
  EXPECT_THAT(again, RefusedWith("alice.key exists"));
  EXPECT_EQ(read_file(dir / "keys/alice.key"), secret);
  auto bad_name = testing::run_triad("audit keygen --out " + dir / "k --name 'a b'");
  EXPECT_THAT(bad_name, RefusedWith("key name"));
  EXPECT_THROW(load_verifier(dir / "keys/alice.key"), Error);  // a private key where a public one belongs
}

}  // namespace
}  // namespace triad
