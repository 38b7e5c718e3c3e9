// Inclusion proofs, notes and keys (governance/audit_proof.h check_inclusion_proof, note.h): the input as
// a proof file checked against a fixed verifier key (the one that signed the seeds' heads), and as text
// for the note, checkpoint and key parsers those proofs are built from.
#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "triad/governance/audit_proof.h"
#include "triad/governance/note.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const triad::NoteVerifier key =
      triad::parse_verifier("fuzz+17250437+AS5GMKX4j4Bp36Z60176cBNil+LpUV3TV4ClGYuw5zqP");
  const std::string_view text = triad::fuzz::as_text(data, size);
  // `audit check-proof` reads the file with nlohmann's parser; what that refuses never reaches triad.
  nlohmann::json proof = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!proof.is_discarded()) {
    triad::fuzz::expect_clean([&] { (void)triad::check_inclusion_proof(proof, key).dump(); });
  }
  triad::fuzz::expect_clean([&] {
    triad::Note note = triad::parse_note(text);
    (void)triad::check_note(note, key);
    (void)triad::parse_checkpoint(note.text).text();
  });
  triad::fuzz::expect_clean([&] { (void)triad::parse_verifier(text).to_string(); });
  triad::fuzz::expect_clean([&] { (void)triad::parse_signer(text).verifier(); });
  return 0;
}
