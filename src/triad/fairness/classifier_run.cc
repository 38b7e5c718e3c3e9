#include "triad/fairness/classifier_run.h"

#include <cmath>
#include <filesystem>

#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/safetensors.h"
#include "triad/train/tokenizer_agreement.h"

namespace fs = std::filesystem;

namespace triad::fairness {

EncodedTexts encode_texts(const Tokenizer& tokenizer, const std::vector<std::string>& texts, int T) {
  EncodedTexts out;
  out.T = T;
  out.tokens.assign(texts.size() * static_cast<size_t>(T), 0);
  out.lengths.resize(texts.size());
  std::vector<int> ids;
  for (size_t i = 0; i < texts.size(); ++i) {
    ids.clear();
    tokenizer.encode(texts[i], &ids);
    if (ids.empty()) ids.push_back(tokenizer.eos_id());
    if (ids.size() > static_cast<size_t>(T)) {
      ++out.truncated;
      ids.resize(T);
    }
    std::copy(ids.begin(), ids.end(), out.tokens.begin() + static_cast<ptrdiff_t>(i * T));
    out.lengths[i] = static_cast<int>(ids.size());
  }
  return out;
}

void save_classifier(const std::string& run_dir, const Classifier<float>& model, int seq_len,
                     nlohmann::json info) {
  std::vector<SafeTensor> tensors;
  const Gpt<float>& trunk = model.trunk();
  for (const TensorSpec& t : trunk.layout().tensors()) {
    tensors.push_back({t.name, t.shape, trunk.params() + t.offset});
  }
  const std::vector<float>& head = model.head_params();
  for (const HeadLayout::Tensor& t : model.head_layout().tensors()) {
    tensors.push_back({t.name, t.shape, head.data() + t.offset});
  }
  write_safetensors((fs::path(run_dir) / kClassifierWeights).string(), tensors);
  info["format"] = "triad-classifier";
  info["model"] = trunk.config().to_json();
  info["pool"] = pooling_name(model.pooling());
  info["seq_len"] = seq_len;
  write_file_atomic((fs::path(run_dir) / kClassifierInfo).string(), info.dump(2) + "\n");
}

namespace {

void load_tensors(const SafetensorsFile& file, Classifier<float>* model, bool with_head) {
  Gpt<float>& trunk = model->trunk();
  for (const TensorSpec& t : trunk.layout().tensors()) {
    const SafeTensor& s = file.get(t.name, t.shape);
    std::copy(s.data, s.data + t.count, trunk.params() + t.offset);
  }
  for (const HeadLayout::Tensor& t : model->head_layout().tensors()) {
    if (!with_head && !t.name.starts_with("ln_f.")) continue;
    const SafeTensor& s = file.get(t.name, t.shape);
    std::copy(s.data, s.data + t.count, model->head_params().begin() + static_cast<ptrdiff_t>(t.offset));
  }
}

}  // namespace

LoadedClassifier load_classifier(const std::string& run_dir, bool embedding) {
  const std::string info_path = (fs::path(run_dir) / kClassifierInfo).string();
  if (!path_exists(info_path)) {
    fail("{} is not a classifier run: it has no {} (train one with `triad classify --out {}`)", run_dir,
         kClassifierInfo, run_dir);
  }
  LoadedClassifier out;
  out.info = read_json_file(info_path);
  if (out.info.value("format", "") != "triad-classifier")
    fail("{}: \"format\" is not triad-classifier", info_path);
  const GptConfig config = GptConfig::from_json(out.info.at("model"), info_path);
  out.seq_len = out.info.value("seq_len", config.seq_len);
  out.model =
      std::make_unique<Classifier<float>>(config, parse_pooling(out.info.value("pool", "mean")), embedding);
  load_tensors(SafetensorsFile((fs::path(run_dir) / kClassifierWeights).string()), out.model.get(), true);
  const std::string tokenizer_path = (fs::path(run_dir) / "tokenizer.model").string();
  const std::string recorded = out.info.value("tokenizer_sha256", "");
  require_same_tokenizer(tokenizer_file_hash(tokenizer_path), {recorded, info_path + " (tokenizer_sha256)"});
  out.tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(tokenizer_path));
  if (out.tokenizer->vocab_size() != config.vocab) {
    fail("{}: tokenizer has {} pieces, the model {}", tokenizer_path, out.tokenizer->vocab_size(),
         config.vocab);
  }
  return out;
}

void load_lm_into(const std::string& checkpoint_dir, Classifier<float>* model) {
  load_tensors(SafetensorsFile((fs::path(checkpoint_dir) / "model.safetensors").string()), model, false);
}

std::vector<float> predict_probabilities(Classifier<float>& model, const EncodedTexts& texts, int batch) {
  std::vector<float> out(texts.size());
  for (size_t begin = 0; begin < texts.size(); begin += batch) {
    const int B = static_cast<int>(std::min<size_t>(batch, texts.size() - begin));
    const std::vector<float>& z =
        model.forward(texts.tokens.data() + begin * texts.T, texts.lengths.data() + begin, B, texts.T,
                      Gpt<float>::Pass::kInference);
    for (int i = 0; i < B; ++i) out[begin + i] = 1.0f / (1.0f + std::exp(-z[i]));
  }
  return out;
}

}  // namespace triad::fairness
