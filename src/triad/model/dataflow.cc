#include "triad/model/dataflow.h"

#include <algorithm>

#include "triad/core/error.h"
#include "triad/kernels/lm_head.h"

namespace triad {

namespace {

const UnitInput kIn{.block_input = true};  // the block's input
UnitInput of(Act kind) {
  return {.block_input = false, .kind = kind};
}

// One row per Act, in enum order; per-block rows in forward order.
// clang-format off
const UnitInfo kUnits[] = {
  // kind             name            per_block inputs                     backward reads  elements
  {Act::kLn1,         "ln1",          true,  {kIn},                        true,  [](const UnitDims& d) { return d.BTC() + 2 * d.BT(); }},
  {Act::kQkv,         "qkv",          true,  {of(Act::kLn1)},              true,  [](const UnitDims& d) { return 3 * d.BT() * d.A / d.TP; }},
  {Act::kAttProbs,    "att_probs",    true,  {of(Act::kQkv)},              true,  [](const UnitDims& d) { return d.B * d.NH / d.TP * d.T * d.T; }},
  {Act::kAttOut,      "att_out",      true,  {of(Act::kAttProbs), of(Act::kQkv)}, true, [](const UnitDims& d) { return d.BT() * d.A / d.TP; }},
  {Act::kRes2,        "res2",         true,  {of(Act::kAttOut), kIn},      true,  [](const UnitDims& d) { return d.BTC(); }},
  {Act::kLn2,         "ln2",          true,  {of(Act::kRes2)},             true,  [](const UnitDims& d) { return d.BTC() + 2 * d.BT(); }},
  {Act::kFc,          "fc",           true,  {of(Act::kLn2)},              true,  [](const UnitDims& d) { return d.BT() * d.F / d.TP; }},
  {Act::kGelu,        "gelu",         true,  {of(Act::kFc)},               true,  [](const UnitDims& d) { return d.BT() * d.F / d.TP; }},
  // read by the next block's backward as its input, not by its own
  {Act::kBlockOut,    "block_out",    true,  {of(Act::kGelu), of(Act::kRes2)}, false, [](const UnitDims& d) { return d.BTC(); }},
  {Act::kEmbed,       "embed",        false, {},                           false, [](const UnitDims& d) { return d.BTC(); }},
  {Act::kLnf,         "lnf",          false, {},                           false, [](const UnitDims& d) { return d.BTC() + 2 * d.BT(); }},
  {Act::kLogits,      "logits",       false, {},                           false, [](const UnitDims& d) { return d.BT() * (d.V / d.TP); }},
  {Act::kLogitsSlice, "logits_slice", false, {},                           false, [](const UnitDims& d) {
                                                                             return d.BT() * static_cast<size_t>(vocab_slice_width(static_cast<int>(d.V / d.TP))); }},
  {Act::kLoss,        "loss",         false, {},                           false, [](const UnitDims& d) { return 2 * d.BT(); }},
  // [dC | d4C_a | d4C_b | dres]: dC max(C, A / TP) wide, the middle two max(F, 3A) / TP (MLP units, or q|k|v)
  {Act::kScratch,     "scratch",      false, {},                           false, [](const UnitDims& d) {
                                                                             return d.BT() * std::max(d.C, d.A / d.TP) + d.BTC() + 2 * d.BT() * std::max(d.F, 3 * d.A) / d.TP; }},
};
// clang-format on
static_assert(std::size(kUnits) == static_cast<size_t>(Act::kCount));

std::vector<Act> units_where(bool (*keep)(const UnitInfo&)) {
  std::vector<Act> out;
  for (const UnitInfo& u : kUnits) {
    if (u.kind != static_cast<Act>(&u - kUnits)) fail("internal: dataflow row {} is out of order", u.name);
    if (keep(u)) out.push_back(u.kind);
  }
  return out;
}

}  // namespace

const UnitInfo& unit_info(Act kind) {
  if (kind >= Act::kCount) fail("internal: activation unit {} does not exist", static_cast<int>(kind));
  return kUnits[static_cast<size_t>(kind)];
}

const char* act_name(Act kind) {
  return kind < Act::kCount ? kUnits[static_cast<size_t>(kind)].name : "?";
}

std::span<const Act> block_units() {
  static const std::vector<Act> units = [] {
    std::vector<Act> v = units_where([](const UnitInfo& u) { return u.per_block; });
    if (static_cast<int>(v.size()) != kBlockUnitCount) fail("internal: kBlockUnitCount is not {}", v.size());
    return v;
  }();
  return units;
}

std::span<const Act> backward_reads() {
  static const std::vector<Act> units =
      units_where([](const UnitInfo& u) { return u.per_block && u.read_by_backward; });
  return units;
}

std::vector<Unit> inputs_of(int block, Act kind) {
  const UnitInfo& u = unit_info(kind);
  if (!u.per_block) fail("internal: {} is not a per-block unit", u.name);
  std::vector<Unit> out;
  for (const UnitInput& in : u.inputs)
    out.push_back(in.block_input ? block_input(block) : Unit{block, in.kind});
  return out;
}

bool is_last_forward_use(Unit input, int block, Act kind) {
  // The readers of `input` in forward order: units of its own block, or (for a block output) units of the
  // next block that read their block input. The last of them is the last use.
  const auto [input_block, input_kind] = input;
  const bool as_block_input = input_kind == Act::kBlockOut && block == input_block + 1;
  if (!as_block_input && block != input_block) return false;
  Act last = Act::kCount;
  for (Act reader : block_units()) {
    for (const UnitInput& in : unit_info(reader).inputs) {
      if (as_block_input ? in.block_input : (!in.block_input && in.kind == input_kind)) last = reader;
    }
  }
  return kind == last;
}

UnitDims unit_dims(const GptConfig& c, int B, int T, int tensor) {
  return {static_cast<size_t>(B),         static_cast<size_t>(T),
          static_cast<size_t>(c.d_model), static_cast<size_t>(c.heads),
          static_cast<size_t>(c.vocab),   static_cast<size_t>(tensor),
          static_cast<size_t>(c.mlp()),   static_cast<size_t>(c.attention_width())};
}

size_t unit_elements(const GptConfig& config, int B, int T, Act kind, int tensor) {
  return unit_info(kind).elements(unit_dims(config, B, T, tensor));
}

}  // namespace triad
