// The audit log: appends, crash safety, tamper detection by `verify` (every entry, every byte of a head,
// logged files), inclusion proofs, the model card and the `triad audit` commands.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "test_util.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/sha256.h"
#include "triad/governance/audit_events.h"
#include "triad/governance/audit_log.h"
#include "triad/governance/audit_proof.h"
#include "triad/governance/audit_verify.h"
#include "triad/governance/model_card.h"

namespace triad {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::RefusedWith;
using testing::run_triad;
using testing::TempDir;
using testing::write_text;

std::string joined(const VerifyReport& r) {
  std::string s;
  for (const std::string& p : r.problems) s += p + "\n";
  return s;
}

// True when some problem names entry `i` (and not just an entry whose number starts with i's digits).
bool names_entry(const VerifyReport& r, size_t i) {
  std::regex pattern("entry " + std::to_string(i) + "([^0-9]|$)");
  return std::any_of(r.problems.begin(), r.problems.end(),
                     [&](const std::string& p) { return std::regex_search(p, pattern); });
}

void append_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::app) << bytes;
}

// A small complete run: start, policy, evals, a checkpoint, a decision, the privacy ledger, the end; two
// signed heads.
struct SampleRun {
  TempDir dir;
  std::string run = dir / "run";
  NoteSigner key = make_signer("triad-test", Ed25519Seed{42});
  NoteVerifier pub = key.verifier();

  SampleRun() {
    make_dirs(run + "/ckpt");
    write_text(dir / "manifest.json", R"({"inputs":[{"path":"corpus.jsonl","sha256":"ab"}],"counts":{}})");
    write_text(run + "/ckpt/model.safetensors", "weights v1");
    write_text(run + "/ckpt/optimizer.bin", "adam state");
    write_text(dir / "policy.toml",
               "[[rule]]\nname = \"dp-budget\"\nwhen = \"dp_epsilon > 8\"\naction = \"review\"\n");
    PolicySet policies = PolicySet::load(dir / "policy.toml");
    AuditOptions options;
    options.host = "node1";
    AuditLog log = AuditLog::open(run, options);
    log_run_start(log, {{"lr", 0.001}, {"model", {{"layers", 2}}}}, dir / "manifest.json",
                  {"triad", "train"});
    log_policies(log, dir / "policy.toml", policies);
    log_eval(log, 100, {{"val_loss", 3.25}});
    log_checkpoint(log, 100, {run + "/ckpt/model.safetensors", run + "/ckpt/optimizer.bin"});
    log.write_head(&key);
    RdpAccountant accountant;
    accountant.add_steps(0.01, 1.1, 200);
    log_privacy(log, 200, accountant, 1e-5);
    for (const Decision& d : policies.evaluate({{"step", 200}, {"dp_epsilon", 9.5}})) log_decision(log, d);
    log_eval(log, 200, {{"val_loss", 2.75}});
    log_run_end(log, "completed", {{"steps", 200}});
    log.write_head(&key);
  }
  std::string log_path() const { return audit_log_path(run); }
  std::string head(int n) const { return fmt::format("{}/audit/heads/{:06d}.ckpt", run, n); }
};

TEST(GovernanceAudit, EntriesAreCanonicalChainedAndSealedByHeads) {
  SampleRun s;
  RawAuditLog raw = read_audit_lines(s.log_path());
  ASSERT_EQ(raw.lines.size(), 10u);  // audit_open .. run_end, with signing_key before the first head
  EXPECT_TRUE(raw.torn_tail.empty());
  std::vector<Hash> leaves;
  for (size_t i = 0; i < raw.lines.size(); ++i) {
    nlohmann::json e = parse_audit_entry(raw.lines[i], i, i ? &leaves.back() : nullptr);
    EXPECT_EQ(e["host"], "node1");
    leaves.push_back(merkle_leaf_hash(raw.lines[i]));
  }
  nlohmann::json first = nlohmann::json::parse(raw.lines[0]);
  EXPECT_EQ(first["kind"], "audit_open");
  EXPECT_THAT(first["payload"]["origin"].get<std::string>(), ::testing::StartsWith("triad.audit/"));
  EXPECT_EQ(nlohmann::json::parse(raw.lines[5])["kind"], "signing_key");
  nlohmann::json start = nlohmann::json::parse(raw.lines[1])["payload"];
  EXPECT_EQ(start["config_sha256"], sha256_hex(R"({"lr":0.001,"model":{"layers":2}})"));
  EXPECT_EQ(start["files"][0]["sha256"], sha256_file_hex(s.dir / "manifest.json"));
  nlohmann::json checkpoint = nlohmann::json::parse(raw.lines[4])["payload"];
  EXPECT_EQ(checkpoint["files"][0]["path"], "ckpt/model.safetensors");  // relative to the run
  EXPECT_THAT(raw.lines[7], HasSubstr(R"("action":"review")"));

  Checkpoint head2 = parse_checkpoint(parse_note(read_file(s.head(2))).text);
  EXPECT_EQ(head2.size, 10u);
  EXPECT_EQ(head2.root, merkle_root(leaves));
  VerifyReport r = verify_audit(s.run, &s.pub);
  EXPECT_TRUE(r.ok()) << joined(r);
  EXPECT_EQ(r.heads, 2u);
  EXPECT_EQ(r.signed_heads, 2u);
  EXPECT_EQ(r.files, 4u);  // manifest, policy, two checkpoint files

  // Reopening continues the chain and the head numbering.
  AuditLog log = AuditLog::open(s.run);
  EXPECT_EQ(log.size(), 10u);
  EXPECT_EQ(log.append("note", {{"text", "caf\u00e9"}, {"b", 1}, {"a", 2}}), 10u);
  EXPECT_THROW(log.write_head(), Error);  // a signed log takes no unsigned head
  EXPECT_EQ(log.write_head(&s.key).number, 3u);
  std::string last = read_audit_lines(s.log_path()).lines.back();
  EXPECT_THAT(last, HasSubstr(R"("payload":{"a":2,"b":1,"text":"café"})"));
  r = verify_audit(s.run, nullptr);
  EXPECT_TRUE(r.ok()) << joined(r);
  EXPECT_THAT(r.notes.back(), HasSubstr("pass --pubkey"));
}

TEST(GovernanceAudit, AppendRefusesWhatCannotBeLoggedCanonically) {
  TempDir dir;
  AuditLog log = AuditLog::open(dir / "run");
  EXPECT_THROW(log.append("Bad-Kind", {}), Error);
  EXPECT_THROW(log.append("eval", nlohmann::json::array()), Error);
  try {
    log.append("eval", {{"metrics", {{"loss", std::nan("")}}}});
    FAIL() << "logged a NaN";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("metrics.loss"));
  }
  EXPECT_THROW(log.append("eval", {{"text", std::string("\xff\xfe")}}), Error);
  EXPECT_THROW(log.append("eval", {{"blob", std::string(2 << 20, 'x')}}), Error);
  EXPECT_EQ(log.size(), 1u);  // nothing but audit_open reached the file
  EXPECT_EQ(read_audit_lines(audit_log_path(dir / "run")).lines.size(), 1u);
  EXPECT_THROW(AuditLog::open(dir / "run"), Error);  // a second writer while this one holds the lock
}

TEST(GovernanceAudit, ATornLastLineIsDetectedAndOnlyRecoveredOnRequest) {
  SampleRun s;
  append_bytes(s.log_path(), R"({"host":"node1","kind":"ev)");
  try {
    AuditLog::open(s.run);
    FAIL() << "opened a log with a torn line";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("log.jsonl:11: the last line is torn"));
  }
  VerifyReport torn = verify_audit(s.run, &s.pub);
  EXPECT_FALSE(torn.ok());
  EXPECT_THAT(joined(torn), HasSubstr("line 11: the last line is torn"));

  AuditOptions recover;
  recover.recover_torn_tail = true;
  AuditLog log = AuditLog::open(s.run, recover);
  EXPECT_EQ(log.size(), 11u);
  nlohmann::json recovered = nlohmann::json::parse(read_audit_lines(s.log_path()).lines.back());
  EXPECT_EQ(recovered["kind"], "torn_tail_recovered");
  EXPECT_EQ(recovered["payload"]["sha256"], sha256_hex(R"({"host":"node1","kind":"ev)"));
  VerifyReport after = verify_audit(s.run, &s.pub);
  EXPECT_TRUE(after.ok()) << joined(after);
  EXPECT_THAT(after.notes.front(), HasSubstr("entries 10..10 come after the last head"));
}

TEST(GovernanceAudit, AChangedByteAnywhereInTheLogNamesItsEntry) {
  SampleRun s;
  const std::string original = read_file(s.log_path());
  RawAuditLog raw = read_audit_lines(s.log_path());
  size_t offset = 0;
  for (size_t i = 0; i < raw.lines.size(); ++i) {
    const size_t len = raw.lines[i].size();
    for (size_t at : {size_t{0}, len / 3, len / 2, len - 8, len - 1}) {
      std::string tampered = original;
      tampered[offset + at] ^= 0x01;
      write_text(s.log_path(), tampered);
      for (const NoteVerifier* key :
           {static_cast<const NoteVerifier*>(&s.pub), static_cast<const NoteVerifier*>(nullptr)}) {
        VerifyReport r = verify_audit(s.run, key);
        EXPECT_FALSE(r.ok()) << "entry " << i << " byte " << at;
        EXPECT_TRUE(names_entry(r, i)) << "entry " << i << " byte " << at << ":\n" << joined(r);
      }
    }
    offset += len + 1;
  }
  write_text(s.log_path(), original);
  EXPECT_TRUE(verify_audit(s.run, &s.pub).ok());
}

TEST(GovernanceAudit, AChangedByteAnywhereInAHeadIsCaught) {
  SampleRun s;
  for (int n : {1, 2}) {
    const std::string original = read_file(s.head(n));
    for (size_t at = 0; at < original.size(); ++at) {
      std::string tampered = original;
      tampered[at] ^= 0x01;
      write_text(s.head(n), tampered);
      for (const NoteVerifier* key :
           {static_cast<const NoteVerifier*>(&s.pub), static_cast<const NoteVerifier*>(nullptr)}) {
        VerifyReport r = verify_audit(s.run, key);
        EXPECT_FALSE(r.ok()) << "head " << n << " byte " << at;
        EXPECT_THAT(joined(r), HasSubstr(fmt::format("head {}", n))) << "byte " << at;
      }
    }
    write_text(s.head(n), original);
  }
  EXPECT_TRUE(verify_audit(s.run, &s.pub).ok());
}

TEST(GovernanceAudit, StrippedSignaturesDeletedHeadsAndCutEntriesFail) {
  SampleRun s;
  const std::string head2 = read_file(s.head(2));
  write_text(s.head(2), parse_note(head2).text);  // the signature stripped: an "unsigned" head
  EXPECT_THAT(joined(verify_audit(s.run, nullptr)),
              HasSubstr("head 2 (audit/heads/000002.ckpt): has no signature"));
  EXPECT_THAT(joined(verify_audit(s.run, &s.pub)), HasSubstr("head 2 (audit/heads/000002.ckpt): unsigned"));
  write_text(s.head(2), head2);

  NoteVerifier mallory = make_signer("triad-test", Ed25519Seed{43}).verifier();
  VerifyReport wrong_key = verify_audit(s.run, &mallory);
  EXPECT_THAT(joined(wrong_key), HasSubstr("not signed by the trusted key"));

  const std::string log = read_file(s.log_path());
  write_text(s.log_path(), log.substr(0, log.rfind('\n', log.size() - 2) + 1));  // last entry removed
  EXPECT_THAT(joined(verify_audit(s.run, &s.pub)), HasSubstr("covers 10 entries but the log has 9"));
  write_text(s.log_path(), log);

  fs::rename(s.head(1), s.dir / "head1");
  EXPECT_THAT(joined(verify_audit(s.run, &s.pub)), HasSubstr("head 1 is missing"));
  fs::rename(s.dir / "head1", s.head(1));
  EXPECT_TRUE(verify_audit(s.run, &s.pub).ok());
}

TEST(GovernanceAudit, AChangedOrMissingLoggedFileIsNamed) {
  SampleRun s;
  std::string weights = s.run + "/ckpt/model.safetensors";
  write_text(weights, "weights v2");  // same size, other bytes
  VerifyReport r = verify_audit(s.run, &s.pub);
  EXPECT_EQ(r.problems.size(), 1u) << joined(r);
  EXPECT_THAT(joined(r),
              HasSubstr("entry 4 checkpoint (log.jsonl line 5): logged file ckpt/model.safetensors has "
                        "changed since it was logged"));
  fs::remove(weights);
  EXPECT_THAT(joined(verify_audit(s.run, &s.pub)),
              HasSubstr("logged file ckpt/model.safetensors is missing"));
  write_text(weights, "weights v1");
  write_text(s.dir / "manifest.json", "{}");
  EXPECT_TRUE(names_entry(verify_audit(s.run, &s.pub), 1));
}

TEST(GovernanceAudit, ARemovalIsExcusedOnlyWhenALaterEntryRecordsThatVeryFile) {
  SampleRun s;
  std::string weights = s.run + "/ckpt/model.safetensors";
  const nlohmann::json record = {
      {"path", "ckpt/model.safetensors"}, {"sha256", sha256_hex("weights v1")}, {"bytes", 10}};
  fs::remove(weights);
  {
    AuditLog log = AuditLog::open(s.run);
    nlohmann::json other = record;
    other["sha256"] = sha256_hex("weights v0");  // another version of the file: does not excuse this one
    log_files_removed(log, 300, "pruned", nlohmann::json::array({other}));
  }
  EXPECT_THAT(joined(verify_audit(s.run, &s.pub)),
              HasSubstr("logged file ckpt/model.safetensors is missing"));
  {
    AuditLog log = AuditLog::open(s.run);
    log_files_removed(log, 300, "pruned", nlohmann::json::array({record}));
    log.write_head(&s.key);
  }
  VerifyReport r = verify_audit(s.run, &s.pub);
  EXPECT_TRUE(r.ok()) << joined(r);
  EXPECT_EQ(r.files, 3u);  // data manifest, policy, optimizer state: the removed file is not counted
  EXPECT_THAT(r.to_json().dump(), HasSubstr("1 logged files were not re-hashed"));
  // A file logged again after its removal is checked again.
  write_text(weights, "weights v3");
  uint64_t seq;
  {
    AuditLog log = AuditLog::open(s.run);
    seq = log_checkpoint(log, 400, {weights});
    log.write_head(&s.key);
  }
  write_text(weights, "weights v4");
  r = verify_audit(s.run, &s.pub);
  EXPECT_EQ(r.problems.size(), 1u) << joined(r);
  EXPECT_TRUE(names_entry(r, seq)) << joined(r);
}

TEST(GovernanceAudit, InclusionProofsCheckWithOnlyThePublicKey) {
  SampleRun s;
  for (uint64_t i = 0; i < 10; ++i) {
    nlohmann::json proof = make_inclusion_proof(s.run, i);
    EXPECT_EQ(proof["head"], 2) << i;  // the latest head that covers the entry
    nlohmann::json entry = check_inclusion_proof(proof, s.pub);
    EXPECT_EQ(entry["seq"], i);
  }
  nlohmann::json proof = make_inclusion_proof(s.run, 3, 1);
  EXPECT_EQ(proof["tree_size"], 6);
  EXPECT_NO_THROW(check_inclusion_proof(proof, s.pub));

  auto rejected = [&](nlohmann::json p) {
    try {
      check_inclusion_proof(p, s.pub);
      return std::string("accepted");
    } catch (const Error& e) {
      return std::string(e.what());
    }
  };
  nlohmann::json p = proof;
  std::string entry = p["entry"];
  entry[entry.find("\"seq\"") + 2] ^= 1;
  p["entry"] = entry;
  EXPECT_THAT(rejected(p), HasSubstr("does not lead to the checkpoint's root"));
  p = proof;
  p["index"] = 2;
  EXPECT_THAT(rejected(p), HasSubstr("does not lead"));
  p = proof;
  std::string node = p["proof"][0];
  node[0] = node[0] == '0' ? '1' : '0';
  p["proof"][0] = node;
  EXPECT_THAT(rejected(p), HasSubstr("does not lead"));
  p = proof;
  p["tree_size"] = 7;
  EXPECT_THAT(rejected(p), HasSubstr("covers 6 entries"));
  p = proof;
  std::string cp = p["checkpoint"];
  cp[cp.find('\n') + 1] = '7';  // the size line
  p["checkpoint"] = cp;
  EXPECT_THAT(rejected(p), HasSubstr("does not verify"));
  NoteSigner other = make_signer("someone", Ed25519Seed{1});
  EXPECT_THROW(check_inclusion_proof(proof, other.verifier()), Error);
  EXPECT_THROW(make_inclusion_proof(s.run, 10), Error);
  EXPECT_THROW(make_inclusion_proof(s.run, 7, 1), Error);  // head 1 covers 0..5
}

TEST(GovernanceAudit, ModelCardHasTheNineSectionsFilledFromTheLog) {
  SampleRun s;
  std::string md = model_card_markdown(s.run, verify_audit(s.run, &s.pub));
  for (const char* section : {"## Model details", "## Intended use", "## Factors", "## Metrics",
                              "## Evaluation data", "## Training data", "## Quantitative analyses",
                              "## Ethical considerations", "## Caveats and recommendations"}) {
    EXPECT_THAT(md, HasSubstr(section));
  }
  EXPECT_THAT(md, HasSubstr("host `node1`"));
  EXPECT_THAT(md, HasSubstr("| `model.layers` | 2 |"));
  EXPECT_THAT(md, HasSubstr(sha256_file_hex(s.run + "/ckpt/model.safetensors")));
  EXPECT_THAT(md, HasSubstr("| 200 | 2.75 |"));
  EXPECT_THAT(md, HasSubstr("Input `corpus.jsonl`"));
  EXPECT_THAT(md, HasSubstr("**ε = "));
  EXPECT_THAT(md, HasSubstr("| dp-budget | `dp_epsilon > 8` | review |"));
  EXPECT_THAT(md, HasSubstr("marked as needing review"));
  EXPECT_THAT(md, HasSubstr("status **completed**"));
  EXPECT_THAT(md, HasSubstr("verification: **passed**"));

  write_text(s.run + "/ckpt/optimizer.bin", "tampered");
  std::string failed = model_card_markdown(s.run, verify_audit(s.run, &s.pub));
  EXPECT_THAT(failed, HasSubstr("verification: **FAILED**"));
  EXPECT_THAT(failed, HasSubstr("ckpt/optimizer.bin"));
}

TEST(GovernanceAudit, CommandsVerifyProveCheckAndWriteTheCard) {
  SampleRun s;
  std::string key = s.dir / "alice";
  ASSERT_EQ(run_triad("audit keygen --out " + key).exit_code, 0);
  auto sealed = run_triad("audit seal " + s.run + " --key " + key + ".key");
  ASSERT_EQ(sealed.exit_code, 0) << sealed.err;
  EXPECT_EQ(nlohmann::json::parse(sealed.out)["head"], 3);

  // Heads 1 and 2 were signed by another key: with alice's key as the trusted one they fail.
  auto strict = run_triad("audit verify " + s.run + " --pubkey " + key + ".pub");
  EXPECT_EQ(strict.exit_code, 1);
  EXPECT_THAT(strict.out,
              HasSubstr("FAIL  head 1 (audit/heads/000001.ckpt): not signed by the trusted key alice+"));
  EXPECT_THAT(strict.err, HasSubstr("triad: error: " + s.run + ": audit verification failed"));

  auto mixed = run_triad("audit verify " + s.run + " --pubkey '" + s.pub.to_string() + "' --json");
  EXPECT_EQ(mixed.exit_code, 1);  // head 3 is signed by alice only
  EXPECT_THAT(mixed.out, HasSubstr("head 3"));
  auto self = run_triad("audit verify " + s.run);
  EXPECT_EQ(self.exit_code, 0) << self.out;
  EXPECT_THAT(self.out, HasSubstr("verified"));

  auto proof = run_triad("audit prove " + s.run + " --entry 4 --out " + s.dir / "proof.json");
  ASSERT_EQ(proof.exit_code, 0) << proof.err;
  auto checked = run_triad("audit check-proof --proof " + s.dir / "proof.json" + " --pubkey " + key + ".pub");
  ASSERT_EQ(checked.exit_code, 0) << checked.err;
  EXPECT_EQ(nlohmann::json::parse(checked.out)["entry"]["kind"], "checkpoint");
  auto wrong = run_triad("audit check-proof --proof " + s.dir / "proof.json" + " --pubkey '" +
                         s.pub.to_string() + "'");
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_THAT(wrong.err, HasSubstr("proof rejected: the checkpoint is not signed by triad-test+"));

  auto card = run_triad("audit card " + s.run);
  ASSERT_EQ(card.exit_code, 0) << card.err;
  EXPECT_THAT(read_file(s.run + "/model_card.md"), HasSubstr("## Caveats and recommendations"));
  auto shown = run_triad("audit show " + s.run + " --kind policy_decision");
  EXPECT_THAT(shown.out, HasSubstr("dp-budget"));

  write_text(s.run + "/ckpt/model.safetensors", "weights v2");
  auto tampered = run_triad("audit verify " + s.run);
  EXPECT_EQ(tampered.exit_code, 1);
  EXPECT_THAT(tampered.err,
              HasSubstr("entry 4 checkpoint (log.jsonl line 5): logged file ckpt/model.safetensors"));

  EXPECT_THAT(run_triad("audit verify " + s.dir / "nothing"), RefusedWith("no audit log"));
  EXPECT_EQ(run_triad("audit prove " + s.run).exit_code, 2);  // --entry is required
  EXPECT_EQ(run_triad("audit append " + s.run + " --kind x --payload '[1]'").exit_code, 2);
}

// tests/fuzz/corpus/audit_log/number_overflow.txt: a number too large for a double escaped as nlohmann's
// out_of_range.406; a head file named with more digits than uint64_t holds threw from std::stoull.
TEST(GovernanceAudit, ANumberOrAHeadNumberTooLargeIsACleanProblem) {
  try {
    parse_audit_entry(R"({"seq":1e999999})", 0, nullptr);
    FAIL() << "parsed";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("not JSON"));
  }
  TempDir dir;
  std::filesystem::create_directories(audit_heads_dir(dir.path()));
  write_text(audit_heads_dir(dir.path()) + "/123456789012345678901234.ckpt", "x\n");
  write_text(audit_heads_dir(dir.path()) + "/000001.ckpt", "x\n");
  auto heads = list_audit_heads(dir.path());
  ASSERT_EQ(heads.size(), 1u);
  EXPECT_EQ(heads[0].first, 1u);
}

// tests/fuzz/corpus/audit_proof/format_not_a_string.json: a "format" that was not a string escaped as
// nlohmann's type_error.302 instead of saying what the file is not.
TEST(GovernanceAudit, AProofWhoseFieldsHaveTheWrongTypesIsRejectedCleanly) {
  const NoteVerifier key = make_signer("someone", Ed25519Seed{1}).verifier();
  for (const char* text : {R"({"format": ["triad-audit-inclusion/1"]})", R"({"format": 1})", R"([])"}) {
    try {
      check_inclusion_proof(nlohmann::json::parse(text), key);
      ADD_FAILURE() << text << " was accepted";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("not a triad audit inclusion proof")) << text;
    }
  }
}

// tests/fuzz/corpus/audit_log/invalid_utf8_key.jsonl: a problem quoting the log's invalid UTF-8 made
// `verify --json` fail in the JSON serialiser ("type_error.316") instead of printing the report.
TEST(GovernanceAudit, VerifyJsonReportsALogHoldingInvalidUtf8) {
  TempDir dir;
  std::filesystem::create_directories(dir / "run/audit");
  write_text(dir / "run/audit/log.jsonl", "{\"kind\": \"audit_open\", \"seq\xa5\": 0}\n");
  auto r = run_triad("audit verify --json " + dir / "run");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  nlohmann::json report = nlohmann::json::parse(r.out);
  EXPECT_EQ(report["ok"], false);
  ASSERT_FALSE(report["problems"].empty());
  EXPECT_THAT(report["problems"][0].get<std::string>(), HasSubstr("entry 0 (log.jsonl line 1): not JSON"));
}

}  // namespace
}  // namespace triad
