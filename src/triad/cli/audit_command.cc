// `triad audit`: keys, verification, proofs and the model card of a run's audit log (docs/governance.md).

#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "triad/cli/cli.h"
#include "triad/cli/command_group.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/governance/audit_log.h"
#include "triad/governance/audit_proof.h"
#include "triad/governance/audit_verify.h"
#include "triad/governance/encoding.h"
#include "triad/governance/model_card.h"
#include "triad/governance/note.h"
#include "triad/train/records.h"

namespace triad::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kPubkeyHelp =
    "Trusted verifier key: a NAME.pub file from 'triad audit keygen', or the key text itself";

void require_log(const std::string& run) {
  if (run.empty()) fail_usage("give the run directory (the one holding audit/)");
  if (!fs::is_regular_file(audit_log_path(run)))
    fail_usage("{}: no audit log (expected {})", run, audit_log_path(run));
}

std::optional<NoteVerifier> optional_key(const std::string& pubkey) {
  if (pubkey.empty()) return std::nullopt;
  try {
    return load_verifier(pubkey);
  } catch (const Error& e) {
    fail_usage("--pubkey: {}", e.what());
  }
}

void add_run_argument(CLI::App* cmd, std::string& run) {
  cmd->add_option("RUN", run, "Run directory (the one holding audit/)")->type_name("")->default_str("");
}

void add_keygen(CLI::App* audit, CommandGroup& group) {
  struct Args {
    std::string out, name;
    bool force = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd =
      audit->add_subcommand("keygen", "Create an Ed25519 key pair for signing the log's tree heads");
  cmd->footer(
      "Writes NAME.key, the private key (created with mode 0600; keep it secret, it is never printed or "
      "logged),\n"
      "and NAME.pub, the verifier key (signed-note format NAME+KEYID+BASE64). Train with --audit-key "
      "NAME.key;\n"
      "check with 'triad audit verify RUN --pubkey NAME.pub'.");
  cmd->add_option("--out", a->out, "Path prefix of the two key files (writes NAME.key and NAME.pub)")
      ->type_name("NAME");
  cmd->add_option("--name", a->name,
                  "Key name in signatures (default: the file name of --out); no spaces or '+'");
  cmd->add_flag("--force", a->force, "Replace key files that exist");
  group.add(cmd, [a]() {
    if (a->out.empty()) fail_usage("--out is required (e.g. --out keys/audit)");
    std::string name = a->name.empty() ? fs::path(a->out).filename().string() : a->name;
    if (!valid_key_name(name))
      fail_usage("key name '{}' must be non-empty, without spaces or '+' (set --name)", name);
    std::string key_path = a->out + ".key", pub_path = a->out + ".pub";
    for (const std::string& p : {key_path, pub_path}) {
      if (!a->force && path_exists(p)) fail_usage("{} exists (use --force to replace it)", p);
    }
    std::string dir = fs::path(a->out).parent_path().string();
    if (!dir.empty()) make_dirs(dir);
    NoteSigner signer = generate_signer(name);
    std::string secret = signer.to_string() + "\n";
    write_file_atomic(key_path, secret, 0600);
    wipe_secret(secret.data(), secret.size());
    std::string verifier = signer.verifier().to_string();
    write_file_atomic(pub_path, verifier + "\n");
    fmt::print("{}\n",
               json{{"private_key", key_path}, {"public_key", pub_path}, {"verifier_key", verifier}}.dump());
    return 0;
  });
}

void add_verify(CLI::App* audit, CommandGroup& group) {
  struct Args {
    std::string run, pubkey;
    bool json = false, require_sealed = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = audit->add_subcommand("verify", "Recompute and check everything in a run's audit log");
  cmd->footer(
      "Checks every entry (canonical JSON, sequence, hash chain), every tree head (its Merkle root against "
      "the\n"
      "entries, consistency with the head before it, its signature) and every logged file (size and "
      "SHA-256).\n"
      "Exit code 0 when all holds, 1 with each problem named (entry, head or file) when not.");
  add_run_argument(cmd, a->run);
  cmd->add_option(
         "--pubkey", a->pubkey,
         std::string(kPubkeyHelp) +
             ". Every head must then carry a valid signature by it. Without it, signatures are checked "
             "against the key the log records")
      ->type_name("KEY");
  cmd->add_flag(
      "--require-sealed", a->require_sealed,
      "Fail when an entry comes after the last head (with a valid signature, when a key is known): "
      "unsealed entries can be rewritten, or forged ones appended, by anyone who can write the log");
  cmd->add_flag("--json", a->json, "Print the report as one JSON object");
  group.add(cmd, [a]() {
    require_log(a->run);
    std::optional<NoteVerifier> key = optional_key(a->pubkey);
    VerifyReport r = verify_audit(a->run, key ? &*key : nullptr, a->require_sealed);
    if (a->json) {
      // A problem may quote the log's bytes, which need not be UTF-8.
      fmt::print("{}\n", r.to_json().dump(-1, ' ', false, json::error_handler_t::replace));
    } else {
      fmt::print(
          "audit log {}: {} entries, {} heads ({} with a verified signature), {} logged files re-hashed\n",
          a->run, r.entries, r.heads, r.signed_heads, r.files);
      for (const std::string& p : r.problems) fmt::print("FAIL  {}\n", p);
      for (const std::string& n : r.notes) fmt::print("note  {}\n", n);
      fmt::print("{}\n", r.ok() ? "verified" : "FAILED");
    }
    if (!r.ok())
      fail("{}: audit verification failed with {} problem(s); the first: {}", a->run, r.problems.size(),
           r.problems.front());
    return 0;
  });
}

std::string summarize(const json& payload) {
  json shown = payload;
  if (shown.contains("files") && shown["files"].is_array()) {
    std::vector<std::string> paths;
    for (const auto& f : shown["files"]) paths.push_back(f.value("path", "?"));
    shown["files"] = fmt::format("{}", fmt::join(paths, ", "));
  }
  std::string s = shown.dump();
  return s.size() > 160 ? s.substr(0, 157) + "..." : s;
}

void add_show(CLI::App* audit, CommandGroup& group) {
  struct Args {
    std::string run, kind;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd =
      audit->add_subcommand("show", "List a run's audit entries and tree heads (nothing is checked)");
  add_run_argument(cmd, a->run);
  cmd->add_option("--kind", a->kind,
                  "Only entries of this kind (run_start, checkpoint, eval, policy_decision, ...)");
  cmd->add_flag("--json", a->json, "Print the entries' lines as they are in log.jsonl");
  group.add(cmd, [a]() {
    require_log(a->run);
    RawAuditLog raw = read_audit_lines(audit_log_path(a->run));
    for (size_t i = 0; i < raw.lines.size(); ++i) {
      json e = json::parse(raw.lines[i], nullptr, false);
      bool good = e.is_object() && e.value("kind", json()).is_string();
      if (!a->kind.empty() && (!good || e["kind"] != a->kind)) continue;
      if (a->json) {
        fmt::print("{}\n", raw.lines[i]);
      } else if (!good) {
        fmt::print("{:>6}  (line {} is not an audit entry)\n", i, i + 1);
      } else {
        fmt::print("{:>6}  {}  {:<16} {}\n", i, e.value("time", "?"), e["kind"].get<std::string>(),
                   summarize(e.value("payload", json::object())));
      }
    }
    if (!raw.torn_tail.empty()) fmt::print("(a torn last line of {} bytes)\n", raw.torn_tail.size());
    if (a->json || !a->kind.empty()) return 0;
    for (const auto& [number, path] : list_audit_heads(a->run)) {
      try {
        Note note = parse_note(read_file(path));
        Checkpoint cp = parse_checkpoint(note.text);
        std::vector<std::string> signers;
        for (const NoteSignature& s : note.signatures)
          signers.push_back(fmt::format("{}+{:08x}", s.name, s.key_id));
        fmt::print("head {}: {} entries, root {}, {}\n", number, cp.size,
                   base64_encode(digest_bytes(cp.root)),
                   signers.empty() ? "unsigned" : fmt::format("signed by {}", fmt::join(signers, ", ")));
      } catch (const Error& e) {
        fmt::print("head {}: unreadable ({})\n", number, e.what());
      }
    }
    return 0;
  });
}

void add_prove(CLI::App* audit, CommandGroup& group) {
  struct Args {
    std::string run, out;
    uint64_t entry = 0, head = 0;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd =
      audit->add_subcommand("prove", "Write an inclusion proof of one entry, checkable with the public key");
  cmd->footer(
      "The proof (JSON) holds the entry, its RFC 9162 audit path and the signed head it leads to;\n"
      "'triad audit check-proof --proof FILE --pubkey KEY' checks it without the log.");
  add_run_argument(cmd, a->run);
  auto* entry =
      cmd->add_option("--entry", a->entry, "Sequence number of the entry to prove (0 is the first); required")
          ->default_str("");
  cmd->add_option("--head", a->head,
                  "Tree head to prove against (default 0: the latest head covering the entry)");
  cmd->add_option("--out", a->out, "Write the proof to this file instead of stdout")->type_name("FILE");
  group.add(cmd, [a, entry]() {
    require_log(a->run);
    if (entry->count() == 0) fail_usage("--entry is required (the entry's sequence number)");
    json proof = make_inclusion_proof(a->run, a->entry, a->head);
    if (a->out.empty()) {
      fmt::print("{}\n", proof.dump(2));
    } else {
      write_file_atomic(a->out, proof.dump(2) + "\n");
    }
    return 0;
  });
}

void add_check_proof(CLI::App* audit, CommandGroup& group) {
  struct Args {
    std::string proof, pubkey;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = audit->add_subcommand(
      "check-proof", "Check an inclusion proof against a signed head, with only the public key");
  cmd->add_option("--proof", a->proof, "Proof file written by 'triad audit prove'")->type_name("FILE");
  cmd->add_option("--pubkey", a->pubkey, std::string(kPubkeyHelp) + " (the head must be signed by it)")
      ->type_name("KEY");
  group.add(cmd, [a]() {
    if (a->proof.empty()) fail_usage("--proof is required");
    if (a->pubkey.empty())
      fail_usage("--pubkey is required: a proof is only as good as the key that signed its head");
    if (!fs::is_regular_file(a->proof)) fail_usage("--proof {}: no such file", a->proof);
    NoteVerifier key = *optional_key(a->pubkey);
    json proof = json::parse(read_file(a->proof), nullptr, false);
    if (proof.is_discarded()) fail("{}: not JSON", a->proof);
    json entry;
    try {
      entry = check_inclusion_proof(proof, key);
    } catch (const Error& e) {
      fail("{}: proof rejected: {}", a->proof, e.what());
    }
    fmt::print("{}\n", json{{"ok", true},
                            {"origin", proof["origin"]},
                            {"index", proof["index"]},
                            {"tree_size", proof["tree_size"]},
                            {"signed_by", fmt::format("{}+{:08x}", key.name, key.key_id)},
                            {"entry", entry}}
                           .dump());
    return 0;
  });
}

void add_card(CLI::App* audit, CommandGroup& group) {
  struct Args {
    std::string run, out, pubkey;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd =
      audit->add_subcommand("card", "Write a Markdown model card (Mitchell et al.) from a run's audit log");
  add_run_argument(cmd, a->run);
  cmd->add_option("--out", a->out, "Output file, or - for stdout (default: RUN/model_card.md)")
      ->type_name("FILE");
  cmd->add_option("--pubkey", a->pubkey, std::string(kPubkeyHelp) + ", for the verification section")
      ->type_name("KEY");
  group.add(cmd, [a]() {
    require_log(a->run);
    std::optional<NoteVerifier> key = optional_key(a->pubkey);
    std::string md =
        model_card_markdown(a->run, verify_audit(a->run, key ? &*key : nullptr), metric_fields());
    if (a->out == "-") {
      fmt::print("{}", md);
      return 0;
    }
    std::string out = a->out.empty() ? (fs::path(a->run) / "model_card.md").string() : a->out;
    write_file_atomic(out, md);
    fmt::print("{}\n", json{{"card", out}}.dump());
    return 0;
  });
}

void add_append(CLI::App* audit, CommandGroup& group) {
  struct Args {
    std::string run, kind, payload = "{}";
    std::vector<std::string> files;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd =
      audit->add_subcommand("append", "Append one entry to a run's audit log (created if absent)");
  cmd->footer(
      "For steps outside triad (an external evaluation, a data review) that belong in the run's trail.");
  add_run_argument(cmd, a->run);
  cmd->add_option("--kind", a->kind, "Entry kind: lower-case letters, digits and _")->type_name("KIND");
  cmd->add_option("--payload", a->payload, "The payload: a JSON object of hashes and small facts")
      ->type_name("JSON");
  cmd->add_option("--file", a->files, "Files to hash into the payload's \"files\" (verify re-hashes them)")
      ->type_name("PATH...");
  group.add(cmd, [a]() {
    if (a->run.empty()) fail_usage("give the run directory");
    if (a->kind.empty()) fail_usage("--kind is required");
    json payload = json::parse(a->payload, nullptr, false);
    if (!payload.is_object()) fail_usage("--payload must be a JSON object, e.g. '{{\"score\": 0.9}}'");
    for (const std::string& f : a->files) {
      if (!fs::is_regular_file(f)) fail_usage("--file {}: no such file", f);
    }
    AuditLog log = AuditLog::open(a->run);
    uint64_t seq =
        a->files.empty() ? log.append(a->kind, payload) : log.append_files(a->kind, a->files, payload);
    fmt::print("{}\n", json{{"seq", seq}, {"entries", log.size()}}.dump());
    return 0;
  });
}

void add_seal(CLI::App* audit, CommandGroup& group) {
  struct Args {
    std::string run, key;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd =
      audit->add_subcommand("seal", "Write a tree head over all entries so far (signed with --key)");
  add_run_argument(cmd, a->run);
  cmd->add_option("--key", a->key,
                  "Private key (NAME.key from 'triad audit keygen'); without it the head is unsigned")
      ->type_name("FILE");
  group.add(cmd, [a]() {
    require_log(a->run);
    std::optional<NoteSigner> signer;
    if (!a->key.empty()) signer = load_signer(a->key);
    AuditLog log = AuditLog::open(a->run);
    TreeHead head = log.write_head(signer ? &*signer : nullptr);
    fmt::print("{}\n", json{{"head", head.number},
                            {"size", head.checkpoint.size},
                            {"root", base64_encode(digest_bytes(head.checkpoint.root))},
                            {"signed", head.is_signed},
                            {"path", head.path}}
                           .dump());
    return 0;
  });
}

}  // namespace

Runner add_audit_command(CLI::App& root) {
  CommandGroup group(
      root, "audit", "The run's tamper-evident audit log: keys, verification, inclusion proofs, model card.",
      "Each run keeps RUN/audit/log.jsonl (canonical JSON entries in an RFC 9162 Merkle tree) and\n"
      "RUN/audit/heads/ (C2SP checkpoints, signed with an Ed25519 key). See docs/governance.md.");
  for (auto add :
       {add_keygen, add_verify, add_show, add_prove, add_check_proof, add_card, add_append, add_seal})
    add(group.app(), group);
  return group.runner();
}

}  // namespace triad::cli
