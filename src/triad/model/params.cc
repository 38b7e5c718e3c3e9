#include "triad/model/params.h"

#include <fmt/format.h>

#include <cstring>

#include "triad/core/error.h"

namespace triad {

void ModelShard::validate(const GptConfig& config) const {
  const int n = tensor_size;
  if (n <= 1) return;
  if (config.heads % n != 0) fail_usage("--tensor-parallel {} does not divide the {} heads", n, config.heads);
  if (config.mlp() % n != 0)
    fail_usage("--tensor-parallel {} does not divide the MLP's {} units", n, config.mlp());
  if (config.vocab % n != 0) {
    fail_usage(
        "--tensor-parallel {} does not divide the vocabulary of {} tokens (choose a vocabulary size "
        "divisible by it in 'triad prepare --vocab-size')",
        n, config.vocab);
  }
}

ParameterLayout::ParameterLayout(const GptConfig& config, const ModelShard& shard) : shard_(shard) {
  const int64_t C = config.d_model, V = config.vocab, T = config.seq_len, F = config.mlp();
  const int64_t A = config.attention_width();  // q, k, v each (A, C); a tensor rank holds whole heads
  const bool split = shard.tensor_size > 1;
  // split_dim -1: whole (replicated when the tensor group has more than one rank).
  auto add = [&](std::string name, std::vector<int64_t> full, bool decay, int split_dim = -1, int parts = 1,
                 bool tied_copy = false) {
    TensorSpec t;
    t.name = std::move(name);
    t.full_shape = full;
    t.shape = std::move(full);
    if (split_dim >= 0 && split) {
      t.split_dim = split_dim;
      t.split_parts = parts;
      t.split_rank = shard.tensor_rank;
      t.split_size = shard.tensor_size;
      t.shape[static_cast<size_t>(split_dim)] /= shard.tensor_size;
    }
    t.replicated = split && split_dim < 0;
    t.tied_copy = tied_copy;
    t.count = 1;
    for (int64_t d : t.shape) t.count *= static_cast<size_t>(d);
    t.offset = count_;
    t.block = static_cast<int>(blocks_.size()) - 1;
    t.decay = decay;
    count_ += t.count;
    blocks_.back().count += t.count;
    tensors_.push_back(std::move(t));
  };
  auto begin_block = [&](std::string name) { blocks_.push_back({std::move(name), count_, 0}); };

  if (shard.embedding) {
    begin_block("embed");
    add("wte.weight", {V, C}, false, 0);
    add("wpe.weight", {T, C}, false);
  }
  for (int l = shard.first_block; l < shard.first_block + shard.blocks; ++l) {
    begin_block(fmt::format("h.{}", l));
    std::string p = fmt::format("h.{}.", l);
    add(p + "ln_1.weight", {C}, false);
    add(p + "ln_1.bias", {C}, false);
    add(p + "attn.qkv.weight", {3 * A, C}, true, 0, 3);
    add(p + "attn.qkv.bias", {3 * A}, false, 0, 3);
    add(p + "attn.proj.weight", {C, A}, true, 1);
    add(p + "attn.proj.bias", {C}, false);
    add(p + "ln_2.weight", {C}, false);
    add(p + "ln_2.bias", {C}, false);
    add(p + "mlp.fc.weight", {F, C}, true, 0);
    add(p + "mlp.fc.bias", {F}, false, 0);
    add(p + "mlp.proj.weight", {C, F}, true, 1);
    add(p + "mlp.proj.bias", {C}, false);
  }
  if (shard.head) {
    begin_block("ln_f");
    add("ln_f.weight", {C}, false);
    add("ln_f.bias", {C}, false);
    if (!shard.embedding) add("wte.weight", {V, C}, false, 0, 1, true);
  }
}

const TensorSpec* ParameterLayout::find(const std::string& name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

namespace {

// Walks the slice as runs of contiguous elements: f(offset in the whole tensor, offset in the slice, count).
template <typename F>
void for_each_run(const TensorSpec& t, F&& f) {
  if (t.split_dim < 0) return f(size_t{0}, size_t{0}, t.count);
  size_t outer = 1, inner = 1;  // elements before and after the split dimension
  for (size_t d = 0; d < t.full_shape.size(); ++d) {
    if (static_cast<int>(d) < t.split_dim) outer *= static_cast<size_t>(t.full_shape[d]);
    if (static_cast<int>(d) > t.split_dim) inner *= static_cast<size_t>(t.full_shape[d]);
  }
  const size_t whole = static_cast<size_t>(t.full_shape[static_cast<size_t>(t.split_dim)]);
  const size_t part = whole / static_cast<size_t>(t.split_parts);
  const size_t piece = part / static_cast<size_t>(t.split_size);
  size_t at = 0;
  for (size_t o = 0; o < outer; ++o) {
    for (int p = 0; p < t.split_parts; ++p) {
      const size_t first = static_cast<size_t>(p) * part + static_cast<size_t>(t.split_rank) * piece;
      f((o * whole + first) * inner, at, piece * inner);
      at += piece * inner;
    }
  }
}

}  // namespace

template <typename Real>
void copy_slice(const TensorSpec& t, const Real* whole, Real* slice) {
  for_each_run(t, [&](size_t w, size_t s, size_t n) { std::memcpy(slice + s, whole + w, n * sizeof(Real)); });
}

template <typename Real>
void copy_from_slice(const TensorSpec& t, const Real* slice, Real* whole) {
  for_each_run(t, [&](size_t w, size_t s, size_t n) { std::memcpy(whole + w, slice + s, n * sizeof(Real)); });
}

template <typename Real>
GptTensors<Real> tensor_views(const ParameterLayout& layout, Real* base) {
  GptTensors<Real> v{};
  const ModelShard& shard = layout.shard();
  v.blocks.resize(static_cast<size_t>(shard.blocks));
  for (const TensorSpec& t : layout.tensors()) {
    Real* p = base + t.offset;
    const std::string& n = t.name;
    if (n == "wte.weight") v.wte = p;
    if (n == "wpe.weight") v.wpe = p;
    if (n == "ln_f.weight") v.lnf_w = p;
    if (n == "ln_f.bias") v.lnf_b = p;
    if (!n.starts_with("h.")) continue;
    const size_t dot = n.find('.', 2);
    BlockTensors<Real>& b =
        v.blocks[static_cast<size_t>(std::stoi(n.substr(2, dot - 2)) - shard.first_block)];
    const std::string field = n.substr(dot + 1);
    Real** slot = field == "ln_1.weight"        ? &b.ln1_w
                  : field == "ln_1.bias"        ? &b.ln1_b
                  : field == "attn.qkv.weight"  ? &b.qkv_w
                  : field == "attn.qkv.bias"    ? &b.qkv_b
                  : field == "attn.proj.weight" ? &b.proj_w
                  : field == "attn.proj.bias"   ? &b.proj_b
                  : field == "ln_2.weight"      ? &b.ln2_w
                  : field == "ln_2.bias"        ? &b.ln2_b
                  : field == "mlp.fc.weight"    ? &b.fc_w
                  : field == "mlp.fc.bias"      ? &b.fc_b
                  : field == "mlp.proj.weight"  ? &b.fcproj_w
                                                : &b.fcproj_b;
    *slot = p;
  }
  return v;
}

template void copy_slice<float>(const TensorSpec&, const float*, float*);
template void copy_slice<double>(const TensorSpec&, const double*, double*);
template void copy_from_slice<float>(const TensorSpec&, const float*, float*);
template void copy_from_slice<double>(const TensorSpec&, const double*, double*);
template GptTensors<float> tensor_views<float>(const ParameterLayout&, float*);
template GptTensors<double> tensor_views<double>(const ParameterLayout&, double*);
template GptTensors<const float> tensor_views<const float>(const ParameterLayout&, const float*);

}  // namespace triad
