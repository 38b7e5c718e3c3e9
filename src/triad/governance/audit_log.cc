#include "triad/governance/audit_log.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <regex>

#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/log.h"
#include "triad/core/memory.h"

namespace triad {

namespace fs = std::filesystem;

namespace {

constexpr int kFormat = 1;
constexpr size_t kMaxEntryBytes = 1 << 20;

std::string utc_now_ms() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm;
  gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buffer, static_cast<int>(ms % 1000));
}

std::string random_origin() {
  uint8_t bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) fail("OpenSSL: the random number generator failed");
  std::string hex;
  for (uint8_t b : bytes) hex += fmt::format("{:02x}", b);
  return "triad.audit/" + hex;
}

bool valid_kind(std::string_view kind) {
  return !kind.empty() && std::all_of(kind.begin(), kind.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Names the first non-finite number in `value` (canonical JSON has no spelling for it).
void check_finite(const nlohmann::json& value, const std::string& where, std::string_view what) {
  if (value.is_number_float() && !std::isfinite(value.get<double>()))
    fail("{}: '{}' is {} (only finite numbers can be logged)", what, where.empty() ? "(value)" : where,
         value.get<double>());
  if (value.is_object()) {
    for (const auto& [key, child] : value.items())
      check_finite(child, where.empty() ? key : where + "." + key, what);
  } else if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) check_finite(value[i], fmt::format("{}[{}]", where, i), what);
  }
}

// A lock held for the life of the AuditLog, so two writers cannot interleave.
void lock_log(int fd, const std::string& path) {
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) fail("{} is being appended to by another process", path);
    fail("cannot lock {}: {}", path, errno_text());
  }
}

}  // namespace

std::string audit_dir(const std::string& run_dir) {
  return (fs::path(run_dir) / "audit").string();
}
std::string audit_log_path(const std::string& run_dir) {
  return (fs::path(run_dir) / "audit" / "log.jsonl").string();
}
std::string audit_heads_dir(const std::string& run_dir) {
  return (fs::path(run_dir) / "audit" / "heads").string();
}

std::string canonical_json(const nlohmann::json& value, std::string_view what) {
  check_finite(value, "", what);
  try {
    return value.dump();
  } catch (const nlohmann::json::type_error&) {
    fail("{}: a string is not valid UTF-8", what);
  }
}

std::string resolve_logged_path(const std::string& run_dir, const std::string& stored) {
  fs::path p(stored);
  return p.is_absolute() ? stored : (fs::path(run_dir) / p).string();
}

std::string logged_path(const std::string& run_dir, const std::string& path) {
  fs::path base = fs::absolute(run_dir).lexically_normal();
  fs::path full = fs::absolute(path).lexically_normal();
  fs::path relative = full.lexically_relative(base);
  bool inside = !relative.empty() && *relative.begin() != "..";
  return inside ? relative.string() : full.string();
}

RawAuditLog read_audit_lines(const std::string& log_path) {
  std::string text = read_file(log_path);
  RawAuditLog out;
  size_t start = 0;
  for (size_t eol; (eol = text.find('\n', start)) != std::string::npos; start = eol + 1)
    out.lines.push_back(text.substr(start, eol - start));
  out.torn_tail = text.substr(start);
  return out;
}

std::map<std::string, LoggedFile> live_checkpoint_files(const std::string& run_dir) {
  const std::string path = audit_log_path(run_dir);
  std::map<std::string, LoggedFile> live;
  Hash prev{};
  const std::vector<std::string> lines = read_audit_lines(path).lines;
  for (size_t i = 0; i < lines.size(); ++i) {
    nlohmann::json e;
    try {
      e = parse_audit_entry(lines[i], i, i ? &prev : nullptr);
    } catch (const Error& error) {
      fail("{}:{}: {}", path, i + 1, error.what());
    }
    prev = merkle_leaf_hash(lines[i]);
    const nlohmann::json& p = e["payload"];
    try {
      if (e["kind"] == "checkpoint") {
        for (const auto& f : p.at("files"))
          live[f.at("path").get<std::string>()] = {f.at("sha256").get<std::string>(),
                                                   f.at("bytes").get<uint64_t>()};
      } else if (e["kind"] == "files_removed") {
        for (const auto& f : p.at("removed")) live.erase(f.at("path").get<std::string>());
      }
    } catch (const nlohmann::json::exception& error) {
      fail("{}:{}: bad {} entry: {}", path, i + 1, e["kind"].get<std::string>(), error.what());
    }
  }
  return live;
}

nlohmann::json parse_audit_entry(std::string_view line, uint64_t index, const Hash* prev_leaf) {
  nlohmann::json entry;
  try {
    entry = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 1e999999
    fail("not JSON ({})", e.what());
  }
  if (!entry.is_object()) fail("not a JSON object");
  static const std::set<std::string> kKeys = {"host", "kind", "payload", "prev", "rank", "seq", "time"};
  for (const auto& [key, value] : entry.items()) {
    if (!kKeys.contains(key)) fail("unknown field '{}'", key);
  }
  const auto& seq = entry.value("seq", nlohmann::json());
  if (!seq.is_number_unsigned() || seq.get<uint64_t>() != index)
    fail("field 'seq' is {}, expected {}", seq.dump(), index);
  if (!entry.value("time", nlohmann::json()).is_string()) fail("field 'time' must be a string");
  if (!entry.value("host", nlohmann::json()).is_string()) fail("field 'host' must be a string");
  if (!entry.value("rank", nlohmann::json()).is_number_integer()) fail("field 'rank' must be an integer");
  const auto& kind = entry.value("kind", nlohmann::json());
  if (!kind.is_string() || !valid_kind(kind.get<std::string>())) fail("field 'kind' must match [a-z0-9_]+");
  if (!entry.value("payload", nlohmann::json()).is_object()) fail("field 'payload' must be an object");
  if (entry.dump() != line) fail("not in canonical form (re-serialised it differs)");
  if (prev_leaf) {
    if (!entry.contains("prev")) fail("field 'prev' is missing");
    if (entry["prev"] != hex(*prev_leaf))
      fail("field 'prev' does not match the hash of entry {}: entry {} or this field was altered", index - 1,
           index - 1);
  } else if (entry.contains("prev")) {
    fail("entry 0 must have no field 'prev'");
  }
  return entry;
}

std::vector<std::pair<uint64_t, std::string>> list_audit_heads(const std::string& run_dir) {
  std::vector<std::pair<uint64_t, std::string>> heads;
  std::string dir = audit_heads_dir(run_dir);
  if (!fs::is_directory(dir)) return heads;
  static const std::regex kName(R"(([0-9]{6,19})\.ckpt)");  // 19 digits fit in uint64_t; longer is not a head
  for (const auto& e : fs::directory_iterator(dir)) {
    std::smatch m;
    std::string name = e.path().filename().string();
    if (std::regex_match(name, m, kName)) heads.emplace_back(std::stoull(m[1].str()), e.path().string());
  }
  std::sort(heads.begin(), heads.end());
  return heads;
}

AuditLog AuditLog::open(const std::string& run_dir, const AuditOptions& options) {
  AuditLog log;
  log.run_dir_ = run_dir;
  log.log_path_ = audit_log_path(run_dir);
  log.host_ = options.host.empty() ? host_name() : options.host;
  log.rank_ = options.rank;
  make_dirs(audit_heads_dir(run_dir));
  bool created = !path_exists(log.log_path_);
  log.fd_ = ::open(log.log_path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (log.fd_ < 0) fail("cannot open {}: {}", log.log_path_, errno_text());
  lock_log(log.fd_, log.log_path_);
  if (created) fsync_dir(audit_dir(run_dir));

  RawAuditLog raw = read_audit_lines(log.log_path_);
  for (size_t i = 0; i < raw.lines.size(); ++i) {
    nlohmann::json entry;
    try {
      entry = parse_audit_entry(raw.lines[i], i, i ? &log.leaves_.back() : nullptr);
    } catch (const Error& e) {
      fail("{}:{}: entry {}: {} (run 'triad audit verify {}')", log.log_path_, i + 1, i, e.what(), run_dir);
    }
    log.leaves_.push_back(merkle_leaf_hash(raw.lines[i]));
    log.bytes_ += raw.lines[i].size() + 1;
    const auto& payload = entry["payload"];
    if (i == 0) {
      if (entry["kind"] != "audit_open" || !payload.value("origin", nlohmann::json()).is_string())
        fail("{}:1: entry 0 must be an audit_open entry with an origin", log.log_path_);
      log.origin_ = payload["origin"];
    }
    if (entry["kind"] == "signing_key" && payload.value("verifier_key", nlohmann::json()).is_string())
      log.logged_keys_.insert(payload["verifier_key"].get<std::string>());
  }
  std::vector<std::pair<uint64_t, std::string>> heads = list_audit_heads(run_dir);
  log.heads_ = heads.empty() ? 0 : heads.back().first;

  if (!raw.torn_tail.empty()) {
    if (!options.recover_torn_tail) {
      fail(
          "{}:{}: the last line is torn ({} bytes without a newline; a crash during an append?). Resume with "
          "torn-tail recovery to cut it off and log its hash",
          log.log_path_, raw.lines.size() + 1, raw.torn_tail.size());
    }
    if (::ftruncate(log.fd_, static_cast<off_t>(log.bytes_)) != 0 || ::fsync(log.fd_) != 0)
      fail("cannot cut the torn tail of {}: {}", log.log_path_, errno_text());
    log_warn("{}: cut off a torn last line of {} bytes", log.log_path_, raw.torn_tail.size());
  }
  if (log.leaves_.empty()) {
    log.origin_ = random_origin();
    log.append("audit_open", {{"format", kFormat}, {"origin", log.origin_}});
  }
  if (!raw.torn_tail.empty()) {
    log.append("torn_tail_recovered", {{"bytes", raw.torn_tail.size()},
                                       {"sha256", sha256_hex(raw.torn_tail)},
                                       {"line", raw.lines.size() + 1}});
  }
  return log;
}

AuditLog::AuditLog(AuditLog&& other) noexcept
    : run_dir_(std::move(other.run_dir_)),
      log_path_(std::move(other.log_path_)),
      origin_(std::move(other.origin_)),
      host_(std::move(other.host_)),
      rank_(other.rank_),
      fd_(other.fd_),
      bytes_(other.bytes_),
      heads_(other.heads_),
      leaves_(std::move(other.leaves_)),
      logged_keys_(std::move(other.logged_keys_)) {
  other.fd_ = -1;
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);  // also releases the flock
}

void AuditLog::write_line(const std::string& line) {
  if (fd_ < 0) fail("{}: the log is closed after an earlier write error", log_path_);
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  if (done == line.size() && ::fdatasync(fd_) == 0) {
    bytes_ += line.size();
    return;
  }
  std::string why = errno_text();
  // Take back a partial line so the file still ends at an entry boundary; if even that fails, stop appending.
  if (::ftruncate(fd_, static_cast<off_t>(bytes_)) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
  fail("cannot append to {}: {}", log_path_, why);
}

uint64_t AuditLog::append(std::string_view kind, nlohmann::json payload) {
  if (!valid_kind(kind)) fail("audit entry kind '{}' must match [a-z0-9_]+", kind);
  if (!payload.is_object()) fail("audit entry '{}': the payload must be a JSON object", kind);
  uint64_t seq = leaves_.size();
  nlohmann::json entry = {{"seq", seq},    {"time", utc_now_ms()}, {"host", host_},
                          {"rank", rank_}, {"kind", kind},         {"payload", std::move(payload)}};
  if (seq > 0) entry["prev"] = hex(leaves_.back());
  std::string line = canonical_json(entry, fmt::format("audit entry '{}'", kind));
  if (line.size() > kMaxEntryBytes)
    fail("audit entry '{}' is {} bytes; entries hold hashes and small facts (at most {} bytes)", kind,
         line.size(), kMaxEntryBytes);
  write_line(line + "\n");
  leaves_.push_back(merkle_leaf_hash(line));
  return seq;
}

uint64_t AuditLog::append_files(std::string_view kind, const std::vector<std::string>& paths,
                                nlohmann::json extra) {
  if (!extra.is_object()) fail("audit entry '{}': the payload must be a JSON object", kind);
  nlohmann::json files = nlohmann::json::array();
  for (const std::string& path : paths) {
    files.push_back({{"path", logged_path(run_dir_, path)},
                     {"sha256", sha256_file_hex(path)},
                     {"bytes", file_size(path)}});
  }
  extra["files"] = std::move(files);
  return append(kind, std::move(extra));
}

TreeHead AuditLog::write_head(const NoteSigner* signer) {
  // verify_audit requires every head after a logged key to be signed (or stripping a signature would pass).
  if (!signer && !logged_keys_.empty())
    fail("{}: this log's heads are signed by the key it records; sign this head too", log_path_);
  if (signer) {
    std::string key = signer->verifier().to_string();
    if (!logged_keys_.contains(key)) {
      append("signing_key", {{"verifier_key", key}});
      logged_keys_.insert(key);
    }
  }
  TreeHead head;
  head.number = heads_ + 1;
  head.path = (fs::path(audit_heads_dir(run_dir_)) / fmt::format("{:06d}.ckpt", head.number)).string();
  head.checkpoint = Checkpoint{origin_, size(), root(), {}};
  head.is_signed = signer != nullptr;
  std::string text = head.checkpoint.text();
  write_file_atomic(head.path, signer ? sign_note(text, *signer) : text);
  heads_ = head.number;
  return head;
}

}  // namespace triad
