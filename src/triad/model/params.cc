#include "triad/model/params.h"

#include <fmt/format.h>

namespace triad {

ParameterLayout::ParameterLayout(const GptConfig& config) {
  const int64_t C = config.d_model, V = config.vocab, T = config.seq_len;
  auto add = [&](std::string name, std::vector<int64_t> shape, bool decay) {
    TensorSpec t;
    t.name = std::move(name);
    t.shape = std::move(shape);
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

  begin_block("embed");
  add("wte.weight", {V, C}, false);
  add("wpe.weight", {T, C}, false);
  for (int l = 0; l < config.layers; ++l) {
    begin_block(fmt::format("h.{}", l));
    std::string p = fmt::format("h.{}.", l);
    add(p + "ln_1.weight", {C}, false);
    add(p + "ln_1.bias", {C}, false);
    add(p + "attn.qkv.weight", {3 * C, C}, true);
    add(p + "attn.qkv.bias", {3 * C}, false);
    add(p + "attn.proj.weight", {C, C}, true);
    add(p + "attn.proj.bias", {C}, false);
    add(p + "ln_2.weight", {C}, false);
    add(p + "ln_2.bias", {C}, false);
    add(p + "mlp.fc.weight", {4 * C, C}, true);
    add(p + "mlp.fc.bias", {4 * C}, false);
    add(p + "mlp.proj.weight", {C, 4 * C}, true);
    add(p + "mlp.proj.bias", {C}, false);
  }
  begin_block("ln_f");
  add("ln_f.weight", {C}, false);
  add("ln_f.bias", {C}, false);
}

const TensorSpec* ParameterLayout::find(const std::string& name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

template <typename Real>
GptTensors<Real> tensor_views(const ParameterLayout& layout, Real* base) {
  const auto& t = layout.tensors();
  GptTensors<Real> v;
  v.wte = base + t[0].offset;
  v.wpe = base + t[1].offset;
  const size_t layers = (t.size() - 4) / 12;
  for (size_t l = 0; l < layers; ++l) {
    const TensorSpec* b = &t[2 + 12 * l];
    Real* p[12];
    for (int i = 0; i < 12; ++i) p[i] = base + b[i].offset;
    v.blocks.push_back({p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11]});
  }
  v.lnf_w = base + t[t.size() - 2].offset;
  v.lnf_b = base + t[t.size() - 1].offset;
  return v;
}

template GptTensors<float> tensor_views<float>(const ParameterLayout&, float*);
template GptTensors<double> tensor_views<double>(const ParameterLayout&, double*);
template GptTensors<const float> tensor_views<const float>(const ParameterLayout&, const float*);

}  // namespace triad
