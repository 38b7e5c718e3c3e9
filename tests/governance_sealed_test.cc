// What `triad audit verify` says about entries no head seals (governance/audit_verify.h, phase 5): a note
// saying what they are open to, a problem with --require-sealed, and a problem when the log records that a
// signed head was written but none is left. Before, a log whose heads were all deleted verified with exit 0,
// and a forged last entry with a correct `prev` passed with only "not sealed by one".

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "train_test_util.h"
#include "triad/governance/audit_log.h"
#include "triad/governance/audit_verify.h"
#include "triad/governance/note.h"

namespace triad {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::run_triad;
using testing::TempDir;
using testing::train_args;
using testing::write_text;

std::string notes(const VerifyReport& r) {
  std::string s;
  for (const std::string& n : r.notes) s += n + "\n";
  return s;
}

TEST(AuditSealed, EntriesAfterTheLastHeadAreANoteOrWithRequireSealedAProblem) {
  TempDir dir;
  {
    AuditLog log = AuditLog::open(dir.path(), {.host = "h"});
    log.append("note", {{"text", "sealed"}});
    log.write_head(nullptr);
    // Anyone who can write the file can append an entry whose prev is right.
    log.append("checkpoint", {{"step", 99}});
  }
  VerifyReport r = verify_audit(dir.path());
  EXPECT_TRUE(r.ok());
  EXPECT_THAT(notes(r),
              HasSubstr("entries 2..2 come after the last head and are not sealed by one: anyone who "
                        "can write log.jsonl can rewrite them, or append entries after them"));
  VerifyReport required = verify_audit(dir.path(), nullptr, /*require_sealed=*/true);
  ASSERT_FALSE(required.ok());
  EXPECT_THAT(required.problems.front(),
              HasSubstr("entries 2..2 are not sealed by a head (--require-sealed)"));

  AuditLog::open(dir.path(), {.host = "h"}).write_head(nullptr);
  EXPECT_TRUE(verify_audit(dir.path(), nullptr, true).ok());
}

TEST(AuditSealed, ARunWhoseHeadsWereDeletedFailsWithRequireSealedOrWhenItsHeadsWereSigned) {
  TempDir dir;
  const std::string run = dir / "run", key = dir / "k";
  ASSERT_EQ(run_triad(train_args(run, "--steps 2 --ckpt-every 1 --eval-every 0")).exit_code, 0);
  fs::remove_all(run + "/audit/heads");
  auto plain = run_triad("audit verify " + run);
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_THAT(plain.out,
              HasSubstr("no tree heads: only the entry chain was checked, and no entry is sealed"));
  auto required = run_triad("audit verify --require-sealed " + run);
  EXPECT_EQ(required.exit_code, 1);
  EXPECT_THAT(required.out, HasSubstr("are not sealed by a head (--require-sealed)"));

  // A signed run records its key in the entry before its first head: the log says a head was written.
  const std::string signed_run = dir / "signed";
  ASSERT_EQ(run_triad("audit keygen --out " + key).exit_code, 0);
  ASSERT_EQ(
      run_triad(train_args(signed_run, "--steps 2 --ckpt-every 1 --eval-every 0 --audit-key " + key + ".key"))
          .exit_code,
      0);
  ASSERT_EQ(run_triad("audit verify --require-sealed " + signed_run).exit_code, 0);
  fs::remove_all(signed_run + "/audit/heads");
  auto lost = run_triad("audit verify " + signed_run);
  EXPECT_EQ(lost.exit_code, 1);
  EXPECT_THAT(lost.out, HasSubstr("signing_key (log.jsonl line"));
  EXPECT_THAT(lost.out, HasSubstr("but no head covers this entry: heads were deleted"));
}

// When a key is known only a head with a valid signature seals: not an unsigned one, which whoever forged the
// entries before it could have written.
TEST(AuditSealed, WithAKeyOnlyAHeadWithAValidSignatureSeals) {
  TempDir dir;
  const NoteSigner key = make_signer("k", Ed25519Seed{7});
  const NoteVerifier pub = key.verifier();
  {
    AuditLog log = AuditLog::open(dir.path(), {.host = "h"});
    log.write_head(&key);  // entries 0 (audit_open) and 1 (signing_key)
    log.append("checkpoint", {{"step", 99}});
    write_text(audit_heads_dir(dir.path()) + "/000002.ckpt",
               Checkpoint{log.origin(), log.size(), log.root(), {}}.text());
  }
  EXPECT_THAT(verify_audit(dir.path(), &pub, true).problems,
              ::testing::Contains(HasSubstr("entries 2..2 are not sealed by a head with a valid signature")));
}

}  // namespace
}  // namespace triad
