#include "triad/train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/safetensors.h"
#include "triad/core/sha256.h"
#include "triad/core/version.h"

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

// Step number of a "step_N" directory name, or -1.
int step_of(const std::string& name) {
  if (name.rfind("step_", 0) != 0 || name.size() == 5) return -1;
  for (size_t i = 5; i < name.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  }
  return std::stoi(name.substr(5));
}

std::vector<std::pair<int, std::string>> checkpoints_of(const std::string& run_dir) {
  std::vector<std::pair<int, std::string>> out;
  std::error_code ec;
  fs::path dir = fs::path(run_dir) / "checkpoints";
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    int step = step_of(e.path().filename().string());
    if (step >= 0 && fs::exists(e.path() / "manifest.json")) out.emplace_back(step, e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

CheckpointInfo save_checkpoint(const std::string& run_dir, const Gpt<float>& model,
                               const TrainOptions& options, const TrainState& state,
                               const CheckpointExtras& extras) {
  CheckpointInfo info;
  info.step = state.step;
  fs::path parent = fs::path(run_dir) / "checkpoints";
  make_dirs(parent.string());
  fs::path final_dir = parent / fmt::format("step_{:06}", state.step);
  fs::path temp_dir = parent / fmt::format("step_{:06}.tmp-{}", state.step, getpid());
  std::error_code ec;
  fs::remove_all(temp_dir, ec);
  make_dirs(temp_dir.string());

  const ParameterLayout& layout = model.layout();
  std::map<std::string, std::string> meta = {{"format", "triad"}, {"step", std::to_string(state.step)}};
  write_safetensors((temp_dir / kModelFile).string(), named_tensors(layout, model.params(), ""), meta);
  if (const OptimizerMoments* optimizer = extras.optimizer) {
    auto tensors = named_tensors(layout, optimizer->m, "m.");
    auto v = named_tensors(layout, optimizer->v, "v.");
    tensors.insert(tensors.end(), v.begin(), v.end());
    meta["adam_steps"] = std::to_string(optimizer->steps);
    write_safetensors((temp_dir / kOptimizerFile).string(), tensors, meta);
  }
  std::vector<SafeTensor> sync;
  for (size_t r = 0; r < extras.grad_sync.size(); ++r) {
    for (size_t b = 0; b < extras.grad_sync[r].size(); ++b) {
      const std::vector<float>& state_floats = extras.grad_sync[r][b];
      if (state_floats.empty()) continue;
      sync.push_back(
          {sync_tensor_name(r, b), {static_cast<int64_t>(state_floats.size())}, state_floats.data()});
    }
  }
  if (!sync.empty()) write_safetensors((temp_dir / kGradSyncFile).string(), sync, meta);
  for (const char* f : {kModelFile, kOptimizerFile, kGradSyncFile}) {
    if (fs::exists(temp_dir / f)) info.sha256[f] = sha256_file_hex((temp_dir / f).string());
  }
  nlohmann::json manifest = extras.manifest;
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
    out.state.step = out.json.at("step");
    out.state.sampler.epoch = out.json.at("sampler").at("epoch");
    out.state.sampler.cursor = out.json.at("sampler").at("cursor");
    out.state.rng = out.json.at("rng").get<std::array<uint64_t, 4>>();
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

void load_checkpoint_weights(const std::string& dir, Gpt<float>* model, AdamW* optimizer) {
  const ParameterLayout& layout = model->layout();
  SafetensorsFile weights((fs::path(dir) / kModelFile).string());
  for (const TensorSpec& t : layout.tensors()) {
    std::memcpy(model->params() + t.offset, weights.get(t.name, t.shape).data, t.count * sizeof(float));
  }
  if (!optimizer) return;
  SafetensorsFile state((fs::path(dir) / kOptimizerFile).string());
  const size_t begin = optimizer->offset(), end = begin + optimizer->count();
  for (const TensorSpec& t : layout.tensors()) {
    // The part of tensor t inside the optimizer's range (all of it without ZeRO-1).
    const size_t lo = std::max(t.offset, begin), hi = std::min(t.offset + t.count, end);
    if (lo >= hi) continue;
    const float* m = state.get("m." + t.name, t.shape).data + (lo - t.offset);
    const float* v = state.get("v." + t.name, t.shape).data + (lo - t.offset);
    std::memcpy(optimizer->m().data() + (lo - begin), m, (hi - lo) * sizeof(float));
    std::memcpy(optimizer->v().data() + (lo - begin), v, (hi - lo) * sizeof(float));
  }
  auto it = state.metadata().find("adam_steps");
  optimizer->set_steps(it == state.metadata().end() ? 0 : std::stoi(it->second));
}

std::vector<std::vector<float>> load_grad_sync_state(const std::string& dir, int rank, size_t buckets) {
  std::vector<std::vector<float>> out(buckets);
  const std::string path = (fs::path(dir) / kGradSyncFile).string();
  if (!path_exists(path)) return out;
  SafetensorsFile file(path);
  for (size_t b = 0; b < buckets; ++b) {
    if (const SafeTensor* t = file.find(sync_tensor_name(static_cast<size_t>(rank), b))) {
      out[b].assign(t->data, t->data + t->count());
    }
  }
  return out;
}

}  // namespace triad
