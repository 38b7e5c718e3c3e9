#include "triad/train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <filesystem>

#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/format.h"
#include "triad/core/safetensors.h"
#include "triad/core/sha256.h"
#include "triad/core/version.h"
#include "triad/model/quantized_state.h"

namespace triad {

namespace fs = std::filesystem;

namespace {

constexpr const char* kModelFile = "model.safetensors";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kGradSyncFile = "grad_sync.safetensors";

std::string sync_tensor_name(size_t rank, size_t bucket) {
  return fmt::format("rank{}.bucket{}", rank, bucket);
}

std::vector<SafeTensor> named_tensors(const ParameterLayout& layout, const float* base,
                                      const std::string& prefix) {
  std::vector<SafeTensor> out;
  for (const TensorSpec& t : layout.tensors()) out.push_back({prefix + t.name, t.shape, base + t.offset});
  return out;
}

// 8-bit optimizer state as it is held, by tensor: "m8.<name>" its codes (U8, the tensor's shape) and
// "m8_absmax.<name>" the scale of each of its blocks of kQuantBlock (F32), the same for v8; the tensors
// that keep fp32 moments also as "m.<name>" and "v.<name>" (F32). The F32 tensors first: they start 4-byte
// aligned.
std::vector<SafeTensor> quantized_tensors(const ParameterLayout& layout, const parallel::OptimizerState& s) {
  const std::vector<size_t> blocks = quantization_boundaries(layout, 0, layout.count());
  auto block_of = [&](size_t at) {
    return std::lower_bound(blocks.begin(), blocks.end(), at) - blocks.begin();
  };
  std::vector<SafeTensor> scales, codes;
  for (auto [name, moment] : {std::pair{"m8", &s.m8}, std::pair{"v8", &s.v8}}) {
    for (const TensorSpec& t : layout.tensors()) {
      const auto first = block_of(t.offset), end = block_of(t.offset + t.count);
      scales.push_back(
          {fmt::format("{}_absmax.{}", name, t.name), {end - first}, moment->absmax.data() + first});
      codes.push_back(
          {fmt::format("{}.{}", name, t.name), t.shape, nullptr, moment->codes.data() + t.offset});
    }
  }
  // The tensors that keep fp32 moments (keeps_fp32_state()): "m.<name>" and "v.<name>" as under fp32.
  for (auto [name, moment] : {std::pair{"m.", &s.m}, std::pair{"v.", &s.v}}) {
    size_t at = 0;
    for (const TensorSpec& t : layout.tensors()) {
      if (!keeps_fp32_state(t)) continue;
      scales.push_back({name + t.name, t.shape, moment->data() + at});
      at += t.count;
    }
  }
  scales.insert(scales.end(), codes.begin(), codes.end());
  return scales;
}

// What triad writes in a run directory, and nothing else: --force replaces a directory only when it holds
// no other entry, so that it never deletes what someone else put there. Each file may also appear as an
// AtomicFile temporary, "<name>.tmp-<pid>", left by a process killed while writing it.
constexpr const char* kRunFiles[] = {"run.json", "tokenizer.model", "metrics.jsonl", "remat_plan.jsonl",
                                     "REVIEW_REQUIRED", "model_card.md",
                                     // a classifier run (fairness/classifier_run.h)
                                     "classifier.json", "classifier.safetensors",
                                     // triad report's default output (report/html_report.h)
                                     "report.html"};
// Directories, with the entries triad writes in each.
struct RunDir {
  const char* name;
  bool (*holds)(const std::string& entry);
};

// "<name>" or its AtomicFile temporary "<name>.tmp-<pid>".
bool is_file_or_temporary(const std::string& entry, std::string_view name) {
  if (entry == name) return true;
  const std::string prefix = std::string(name) + ".tmp-";
  return entry.rfind(prefix, 0) == 0 && all_digits(std::string_view(entry).substr(prefix.size()));
}

bool checkpoints_entry(const std::string& entry) {
  return entry == "rejected" || checkpoint_step(entry) >= 0 || checkpoint_temp_pid(entry) >= 0;
}

bool audit_entry(const std::string& entry) {
  return entry == "heads" || is_file_or_temporary(entry, "log.jsonl");
}

constexpr RunDir kRunDirs[] = {{"checkpoints", checkpoints_entry}, {"audit", audit_entry}};

// The entries of a run directory that triad does not write, as paths relative to it ("thesis.tex",
// "checkpoints/notes/"): its top level, and what is directly inside checkpoints/ and audit/.
std::vector<std::string> foreign_entries(const fs::path& dir) {
  std::vector<std::string> out;
  auto name_of = [](const fs::directory_entry& e, const std::string& prefix) {
    return prefix + e.path().filename().string() + (e.is_directory() ? "/" : "");
  };
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const RunDir* sub = nullptr;
    for (const RunDir& d : kRunDirs) {
      if (name == d.name) sub = &d;
    }
    if (sub && e.is_directory() && !e.is_symlink()) {
      for (const auto& inner : fs::directory_iterator(e.path())) {
        if (!sub->holds(inner.path().filename().string())) out.push_back(name_of(inner, name + "/"));
      }
      continue;
    }
    const bool ours = std::any_of(std::begin(kRunFiles), std::end(kRunFiles),
                                  [&](const char* file) { return is_file_or_temporary(name, file); });
    if (!ours || e.is_directory()) out.push_back(name_of(e, ""));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The complete checkpoints (with a manifest), oldest first.
std::vector<std::pair<int, std::string>> checkpoints_of(const std::string& run_dir) {
  std::vector<std::pair<int, std::string>> out = checkpoint_dirs(run_dir);
  std::erase_if(out, [](const auto& c) { return !fs::exists(fs::path(c.second) / "manifest.json"); });
  return out;
}

}  // namespace

CheckpointInfo save_checkpoint(const std::string& run_dir, const ParameterLayout& layout, const float* params,
                               const TrainOptions& options, const TrainState& state,
                               const parallel::OptimizerState& optimizer, const nlohmann::json& extra) {
  CheckpointInfo info;
  info.step = state.step;
  fs::path parent = fs::path(run_dir) / "checkpoints";
  make_dirs(parent.string());
  fs::path final_dir = checkpoint_dir(run_dir, state.step);
  fs::path temp_dir = parent / fmt::format("step_{:06}.tmp-{}", state.step, getpid());
  std::error_code ec;
  fs::remove_all(temp_dir, ec);
  make_dirs(temp_dir.string());

  std::map<std::string, std::string> meta = {{"format", "triad"}, {"step", std::to_string(state.step)}};
  write_safetensors((temp_dir / kModelFile).string(), named_tensors(layout, params, ""), meta);
  {
    std::vector<SafeTensor> tensors;
    if (optimizer.states == StatePrecision::k8Bit) {
      tensors = quantized_tensors(layout, optimizer);
      meta["optimizer_states"] = state_precision_name(optimizer.states);
      meta["quant_block"] = std::to_string(kQuantBlock);
    } else {
      tensors = named_tensors(layout, optimizer.m.data(), "m.");
      auto v = named_tensors(layout, optimizer.v.data(), "v.");
      tensors.insert(tensors.end(), v.begin(), v.end());
    }
    meta["adam_steps"] = std::to_string(optimizer.adam_steps);
    write_safetensors((temp_dir / kOptimizerFile).string(), tensors, meta);
    meta.erase("optimizer_states");
    meta.erase("quant_block");
  }
  std::vector<SafeTensor> sync;
  for (size_t r = 0; r < optimizer.residuals.size(); ++r) {
    for (size_t b = 0; b < optimizer.residuals[r].size(); ++b) {
      const std::vector<float>& state_floats = optimizer.residuals[r][b];
      if (state_floats.empty()) continue;
      sync.push_back(
          {sync_tensor_name(r, b), {static_cast<int64_t>(state_floats.size())}, state_floats.data()});
    }
  }
  if (!sync.empty()) write_safetensors((temp_dir / kGradSyncFile).string(), sync, meta);
  for (const char* f : {kModelFile, kOptimizerFile, kGradSyncFile}) {
    if (fs::exists(temp_dir / f)) info.sha256[f] = sha256_file_hex((temp_dir / f).string());
  }
  nlohmann::json manifest = extra;
  if (optimizer.world > 1) {
    manifest["grad_sync"] = {{"world", optimizer.world},
                             {"steps", optimizer.sync_steps},
                             {"buckets", optimizer.residuals.empty() ? 0 : optimizer.residuals[0].size()},
                             {"codec", optimizer.codec}};
  }
  manifest["format"] = "triad-checkpoint";
  manifest["format_version"] = 1;
  manifest["triad_version"] = kVersion;
  manifest["step"] = state.step;
  manifest["model"] = options.model.to_json();
  manifest["options"] = options.to_json();
  manifest["sampler"] = {{"epoch", state.sampler.epoch}, {"cursor", state.sampler.cursor}};
  manifest["rng"] = state.rng;
  manifest["loss"] = state.loss;
  if (!state.dp.is_null()) manifest["dp"] = state.dp;
  manifest["files"] = info.sha256;
  write_file_atomic((temp_dir / "manifest.json").string(), manifest.dump(2) + "\n");
  fsync_dir(temp_dir.string());
  if (fs::exists(final_dir))
    fail("checkpoint {} already exists; refusing to overwrite it", final_dir.string());
  fs::rename(temp_dir, final_dir, ec);
  if (ec) fail("cannot rename {} to {}: {}", temp_dir.string(), final_dir.string(), ec.message());
  fsync_dir(parent.string());
  info.dir = final_dir.string();
  return info;
}

int checkpoint_step(const std::string& name) {
  constexpr size_t kMaxDigits = 9;  // fits an int
  if (name.rfind("step_", 0) != 0 || name.size() > 5 + kMaxDigits) return -1;
  return all_digits(std::string_view(name).substr(5)) ? std::stoi(name.substr(5)) : -1;
}

std::vector<std::pair<int, std::string>> checkpoint_dirs(const std::string& run_dir) {
  std::vector<std::pair<int, std::string>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(run_dir) / "checkpoints", ec)) {
    const int step = checkpoint_step(e.path().filename().string());
    if (step >= 0 && e.is_directory()) out.emplace_back(step, e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

long checkpoint_temp_pid(const std::string& name) {
  constexpr size_t kMaxDigits = 9;
  const size_t dot = name.find(".tmp-");
  if (dot == std::string::npos || checkpoint_step(name.substr(0, dot)) < 0) return -1;
  const std::string pid = name.substr(dot + 5);
  return pid.size() <= kMaxDigits && all_digits(pid) ? std::stol(pid) : -1;
}

std::string checkpoint_dir(const std::string& run_dir, int step) {
  return (fs::path(run_dir) / "checkpoints" / fmt::format("step_{:06}", step)).string();
}

void check_run_dir(const std::string& dir, bool force) {
  std::error_code ec;
  const fs::file_status status = fs::status(dir, ec);
  if (fs::exists(status) && !fs::is_directory(status)) {
    fail_usage("--out {} is a file, not a run directory; choose another --out (nothing was changed)", dir);
  }
  if (!fs::exists(status) || fs::is_empty(dir, ec)) return;
  const std::vector<std::string> all = directory_listing(dir);
  if (!has_json_format((fs::path(dir) / "run.json").string(), "triad-run") &&
      !has_json_format((fs::path(dir) / "classifier.json").string(), "triad-classifier")) {
    fail_usage(
        "--out {} already exists and is not a triad run (no run.json of format \"triad-run\" or "
        "classifier.json of \"triad-classifier\"; it holds {}); "
        "choose another --out{}",
        dir, some_of(all), force ? " (--force replaces only a triad run; nothing was deleted)" : "");
  }
  if (!force) {
    fail_usage("run directory {} already exists; continue it with --resume {}, or pass --force to start over",
               dir, dir);
  }
  const std::vector<std::string> foreign = foreign_entries(dir);
  if (!foreign.empty()) {
    fail_usage(
        "--force replaces only what triad wrote, and {} also holds {}; move them away or choose "
        "another --out (nothing was deleted)",
        dir, some_of(foreign));
  }
}

void create_run_dir(const std::string& dir, bool force) {
  check_run_dir(dir, force);
  std::error_code ec;
  if (!fs::exists(dir, ec) || fs::is_empty(dir, ec)) {
    make_dirs(dir);
    return;
  }
  // The entries, not the directory: it may be "." or a mount point.
  for (std::string name : directory_listing(dir)) {
    if (name.ends_with('/')) name.pop_back();
    fs::remove_all(fs::path(dir) / name, ec);
    if (ec) fail("cannot remove {}: {}", (fs::path(dir) / name).string(), ec.message());
  }
  fsync_dir(dir);
}

void prune_checkpoints(const std::string& run_dir, int keep) {
  auto all = checkpoints_of(run_dir);
  for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) {
    std::error_code ec;
    fs::remove_all(all[i].second, ec);
  }
}

std::string latest_checkpoint(const std::string& run_dir) {
  auto all = checkpoints_of(run_dir);
  return all.empty() ? "" : all.back().second;
}

std::string resolve_checkpoint(const std::string& path) {
  if (fs::exists(fs::path(path) / "manifest.json") && fs::exists(fs::path(path) / kModelFile)) return path;
  if (fs::is_directory(path)) {
    std::string latest = latest_checkpoint(path);
    if (!latest.empty()) return latest;
    fail_usage("{} holds no checkpoint (expected {}/checkpoints/step_N/ or a step_N/ directory)", path, path);
  }
  fail_usage("checkpoint {} does not exist", path);
}

CheckpointManifest read_checkpoint_manifest(const std::string& dir) {
  std::string path = (fs::path(dir) / "manifest.json").string();
  CheckpointManifest out;
  try {
    out.json = nlohmann::json::parse(read_file(path));
    out.model = GptConfig::from_json(out.json.at("model"), path);
    out.options = TrainOptions::from_json(out.json.at("options"), path);
    // nlohmann converts any number without a check (a float out of the type's range is undefined
    // behaviour), so each count is checked to be a whole number in range first.
    auto count = [&](const nlohmann::json& value, const char* key, uint64_t max) {
      if (!value.is_number_unsigned() || value.get<uint64_t>() > max)
        fail("{}: \"{}\" must be a whole number from 0 to {}, not {}", path, key, max, value.dump());
      return value.get<uint64_t>();
    };
    out.state.step = static_cast<int>(count(out.json.at("step"), "step", INT_MAX));
    // Resume trusts the step, so a manifest moved or edited to another one must not pass.
    fs::path normal = fs::path(dir).lexically_normal();
    if (normal.filename().empty()) normal = normal.parent_path();  // "step_N/"
    const int named = checkpoint_step(normal.filename().string());
    if (named >= 0 && out.state.step != named) {
      fail("{}: \"step\" is {}, but the directory is step {}", path, out.state.step, named);
    }
    out.state.sampler.epoch = count(out.json.at("sampler").at("epoch"), "sampler.epoch", UINT64_MAX);
    out.state.sampler.cursor = count(out.json.at("sampler").at("cursor"), "sampler.cursor", UINT64_MAX);
    const nlohmann::json& rng = out.json.at("rng");
    if (!rng.is_array() || rng.size() != out.state.rng.size())
      fail("{}: \"rng\" must be an array of {} whole numbers", path, out.state.rng.size());
    for (size_t i = 0; i < out.state.rng.size(); ++i) out.state.rng[i] = count(rng[i], "rng", UINT64_MAX);
    out.state.loss = out.json.at("loss");
    if (out.json.contains("dp")) out.state.dp = out.json["dp"];
    for (const auto& [file, digest] : out.json.at("files").items()) {
      std::string file_path = (fs::path(dir) / file).string();
      if (!path_exists(file_path)) fail("{}: missing (listed in {})", file_path, path);
      if (sha256_file_hex(file_path) != digest.get<std::string>()) {
        fail("{}: SHA-256 does not match the checkpoint manifest: the file is corrupt", file_path);
      }
    }
  } catch (const nlohmann::json::exception& e) {
    fail("{}: bad checkpoint manifest: {}", path, e.what());
  }
  return out;
}

void load_checkpoint_weights(const std::string& dir, Gpt<float>* model) {
  SafetensorsFile weights((fs::path(dir) / kModelFile).string());
  for (const TensorSpec& t : model->layout().tensors()) {
    copy_slice(t, weights.get(t.name, t.full_shape).data, model->params() + t.offset);
  }
}

parallel::OptimizerState load_optimizer_state(const std::string& dir, const CheckpointManifest& manifest,
                                              const ParameterLayout& layout, int rank) {
  parallel::OptimizerState out;
  SafetensorsFile state((fs::path(dir) / kOptimizerFile).string());
  auto states = state.metadata().find("optimizer_states");
  if (states != state.metadata().end()) {
    out.states = parse_state_precision(states->second, fmt::format("{}: \"optimizer_states\"", dir));
  }
  if (out.states == StatePrecision::k8Bit) {
    auto block = state.metadata().find("quant_block");
    if (block == state.metadata().end() || block->second != std::to_string(kQuantBlock)) {
      fail("{}/{}: 8-bit optimizer state in blocks of {}; triad quantizes in blocks of {}", dir,
           kOptimizerFile, block == state.metadata().end() ? "?" : block->second, kQuantBlock);
    }
    const std::vector<size_t> blocks = quantization_boundaries(layout, 0, layout.count());
    for (auto [name, moment] : {std::pair{"m8", &out.m8}, std::pair{"v8", &out.v8}}) {
      moment->codes.resize(layout.count());
      moment->absmax.resize(blocks.size() - 1);
      for (const TensorSpec& t : layout.tensors()) {
        if (t.shape != t.full_shape) fail("{}: 8-bit optimizer state loads into whole tensors only", dir);
        const auto first = std::lower_bound(blocks.begin(), blocks.end(), t.offset) - blocks.begin();
        const auto end = std::lower_bound(blocks.begin(), blocks.end(), t.offset + t.count) - blocks.begin();
        const SafeTensor& codes = state.get_u8(fmt::format("{}.{}", name, t.name), t.full_shape);
        const SafeTensor& scales = state.get(fmt::format("{}_absmax.{}", name, t.name), {end - first});
        std::copy_n(codes.u8, t.count, moment->codes.begin() + static_cast<ptrdiff_t>(t.offset));
        std::copy_n(scales.data, end - first, moment->absmax.begin() + first);
      }
    }
    for (auto [name, moment] : {std::pair{"m.", &out.m}, std::pair{"v.", &out.v}}) {
      for (const TensorSpec& t : layout.tensors()) {
        if (!keeps_fp32_state(t)) continue;
        const SafeTensor& values = state.get(name + t.name, t.full_shape);
        moment->insert(moment->end(), values.data, values.data + t.count);
      }
    }
  } else {
    out.m.resize(layout.count());
    out.v.resize(layout.count());
    for (const TensorSpec& t : layout.tensors()) {  // whole tensors in the file, this rank's slices kept
      copy_slice(t, state.get("m." + t.name, t.full_shape).data, out.m.data() + t.offset);
      copy_slice(t, state.get("v." + t.name, t.full_shape).data, out.v.data() + t.offset);
    }
  }
  auto it = state.metadata().find("adam_steps");
  out.adam_steps = it == state.metadata().end() ? 0 : std::stoi(it->second);
  // "grad_sync" is there when more than one rank saved the run.
  const nlohmann::json& j = manifest.json;
  out.world = j.value("/grad_sync/world"_json_pointer, 1);
  out.sync_steps = j.value("/grad_sync/steps"_json_pointer, int64_t{0});
  out.codec = j.value("/grad_sync/codec"_json_pointer, std::string("none"));
  const size_t buckets = j.value("/grad_sync/buckets"_json_pointer, size_t{0});
  const std::string path = (fs::path(dir) / kGradSyncFile).string();
  if (buckets == 0) return out;
  out.residuals.assign(static_cast<size_t>(std::max(out.world, rank + 1)), {});
  std::vector<std::vector<float>>& mine = out.residuals[static_cast<size_t>(rank)];
  mine.assign(buckets, {});
  if (!path_exists(path)) return out;
  SafetensorsFile file(path);
  for (size_t b = 0; b < buckets; ++b) {
    if (const SafeTensor* t = file.find(sync_tensor_name(static_cast<size_t>(rank), b))) {
      mine[b].assign(t->data, t->data + t->count());
    }
  }
  return out;
}

}  // namespace triad
