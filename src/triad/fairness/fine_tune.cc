#include "triad/fairness/fine_tune.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>

#include "triad/core/clock.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/log.h"
#include "triad/core/parallel.h"
#include "triad/core/rng.h"
#include "triad/fairness/adversary.h"
#include "triad/fairness/classifier_run.h"
#include "triad/fairness/debias.h"
#include "triad/fairness/evaluation.h"
#include "triad/fairness/report.h"
#include "triad/governance/audit_events.h"
#include "triad/governance/policy.h"
#include "triad/kernels/adamw.h"
#include "triad/model/optimizer.h"
#include "triad/train/checkpoint.h"
#include "triad/train/governance_observer.h"
#include "triad/train/metrics.h"
#include "triad/train/tokenizer_agreement.h"

namespace fs = std::filesystem;
namespace triad::fairness {

void validate(const FineTuneOptions& o) {
  if (o.init.empty()) fail_usage("--init is required: the LM run or checkpoint whose trunk to fine-tune");
  if (o.train.empty()) fail_usage("--train is required: a labelled CSV, TSV or JSONL file");
  if (o.out.empty()) fail_usage("--out is required: the classifier run directory to write");
  parse_pooling(o.pool);
  const AdversaryGoal goal = parse_adversary_goal(o.adversary);
  parse_adversary_input(o.adversary_input);
  const DebiasUpdate update = parse_debias_update(o.debias_update);
  if (goal == AdversaryGoal::kNone && update == DebiasUpdate::kProjection) {
    fail_usage("--debias-update projection needs an adversary: add --adversary parity or --adversary odds");
  }
  if (o.batch < 2 || o.steps < 1 || o.seq_len < 0 || o.eval_every < 0 || o.warmup < 0) {
    fail_usage("--batch must be at least 2, --steps at least 1, --seq-len, --eval-every and --warmup >= 0");
  }
  if (!(o.lr > 0) || !(o.adversary_lr > 0) || !(o.lambda >= 0)) {
    fail_usage("--lr and --adversary-lr must be positive and --lambda non-negative");
  }
}

namespace {

// The labelled files, one after another; a subgroup any of them has is a subgroup of all (absent: 0).
LabelledSet read_training_sets(const std::vector<std::string>& paths, const LabelledFormat& format) {
  LabelledSet all;
  for (const std::string& path : paths) {
    LabelledSet part = read_labelled(path, format);
    for (int y : part.labels) {
      if (y < 0) fail("{}: has no labels; --train needs a label column (--label-field)", path);
    }
    const size_t before = all.texts.size(), added = part.texts.size();
    all.source += (all.source.empty() ? "" : ",") + part.source;
    all.ids.insert(all.ids.end(), part.ids.begin(), part.ids.end());
    all.texts.insert(all.texts.end(), part.texts.begin(), part.texts.end());
    all.labels.insert(all.labels.end(), part.labels.begin(), part.labels.end());
    for (Subgroup& g : all.subgroups) g.member.resize(before + added, 0);
    for (const Subgroup& g : part.subgroups) {
      auto it = std::find_if(all.subgroups.begin(), all.subgroups.end(), [&](const Subgroup& h) {
        return h.name == g.name && h.attribute == g.attribute;
      });
      if (it == all.subgroups.end()) {
        all.subgroups.push_back({g.name, g.attribute, std::vector<uint8_t>(before + added, 0)});
        it = all.subgroups.end() - 1;
      }
      std::copy(g.member.begin(), g.member.end(), it->member.begin() + static_cast<ptrdiff_t>(before));
    }
  }
  return all;
}

// An epoch at a time, each a fresh permutation of the examples from the run's generator.
class Shuffler {
 public:
  Shuffler(size_t n, uint64_t seed) : order_(n), rng_(seed) { reshuffle(); }
  size_t next() {
    if (at_ == order_.size()) reshuffle();
    return order_[at_++];
  }

 private:
  void reshuffle() {
    for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
    for (size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[rng_.next() % i]);
    at_ = 0;
  }
  std::vector<size_t> order_;
  Rng rng_;
  size_t at_ = 0;
};

struct AttributeAdversary {
  AttributeTargets targets;
  Adversary<float> model;
  std::vector<float> m, v;  // AdamW moments
};

double learning_rate(const FineTuneOptions& o, int step) {
  if (step <= o.warmup) return o.lr * step / std::max(1, o.warmup);
  return o.lr * std::max(0.0, static_cast<double>(o.steps - step) / std::max(1, o.steps - o.warmup));
}

// Scales every gradient so that their joint L2 norm is at most `max_norm`; returns the norm before.
double clip(std::vector<std::pair<float*, size_t>> grads, double max_norm) {
  double sum = 0;
  for (auto [g, n] : grads)
    for (size_t i = 0; i < n; ++i) sum += static_cast<double>(g[i]) * g[i];
  const double norm = std::sqrt(sum);
  if (norm > max_norm) {
    const float scale = static_cast<float>(max_norm / norm);
    for (auto [g, n] : grads)
      for (size_t i = 0; i < n; ++i) g[i] *= scale;
  }
  return norm;
}

// Every metric a classifier run can report (each step, each evaluation), for --policy: a rule that reads
// another name is refused before training instead of never firing.
std::map<std::string, std::string> classify_policy_metrics(
    const std::vector<std::string>& adversary_attributes, DebiasUpdate update, const LabelledSet& val) {
  std::map<std::string, std::string> known = {
      {"step", "optimizer step"},
      {"loss", "task loss (weighted binary cross-entropy) of the batch"},
      {"grad_norm", "gradient norm before clipping"},
      {"lr", "learning rate"},
      {"step_ms", "milliseconds of the step"},
      {"examples_per_s", "training examples per second"}};
  if (!adversary_attributes.empty()) {
    known["lambda"] = "weight of the adversaries' reversed gradient";
    for (const std::string& a : adversary_attributes) known["adv_loss_" + a] = "adversary loss of " + a;
    if (update == DebiasUpdate::kProjection)
      known["task_adv_cosine"] = "cosine of task and adversary gradients";
  }
  if (val.size() == 0) return known;
  known["val_loss"] = "binary cross-entropy on --val";
  known["val_accuracy"] = "accuracy on --val at threshold 0.5";
  std::vector<std::string> attributes;  // those the evaluation reports: the held-out set's
  for (const Subgroup& g : val.subgroups) {
    if (std::find(attributes.begin(), attributes.end(), g.attribute) == attributes.end())
      attributes.push_back(g.attribute);
  }
  for (auto& [name, description] : flat_metric_names(attributes)) known[name] = description;
  return known;
}

// Per identity group, the evaluation's values without intervals, for the eval entry of the audit log (the
// model card's per-group table reads them there): [{attribute, group, rows, subgroup_auc, bpsn_auc,
// bnsp_auc, tpr, fpr, ece[, note: why some are null]}], as the fairness report's JSON has them.
nlohmann::json classify_group_values(const std::vector<float>& probabilities, const LabelledSet& val) {
  const std::vector<double> scores(probabilities.begin(), probabilities.end());
  const nlohmann::json report =
      to_json(fairness_report(scores, label_bytes(val.labels), val.subgroups, MetricOptions{.bootstrap = 0}));
  nlohmann::json groups = nlohmann::json::array();
  for (const nlohmann::json& g : report["groups"]) {
    nlohmann::json j = {{"attribute", g["attribute"]}, {"group", g["group"]}, {"rows", g["n"]}};
    for (const char* key : {"subgroup_auc", "bpsn_auc", "bnsp_auc", "tpr", "fpr", "ece"})
      j[key] = g[key]["value"];  // null where undefined
    if (!g["note"].get<std::string>().empty()) j["note"] = g["note"];
    groups.push_back(std::move(j));
  }
  return groups;
}

}  // namespace

int fine_tune(const FineTuneOptions& o) {
  validate(o);
  if (o.threads > 0) set_threads(o.threads);
  // The LM: its checkpoint, shape and tokenizer.
  const std::string lm = resolve_checkpoint(o.init);
  const CheckpointManifest manifest = read_checkpoint_manifest(lm);
  const std::string tokenizer_path = checkpoint_tokenizer_path(lm);
  const Tokenizer tokenizer = load_checkpoint_tokenizer(lm, manifest.json, manifest.model.vocab);
  if (o.seq_len > manifest.model.seq_len) {
    fail_usage("--seq-len {} is longer than the model's context of {} tokens ({})", o.seq_len,
               manifest.model.seq_len, lm);
  }
  const int T = o.seq_len > 0 ? o.seq_len : std::min(64, manifest.model.seq_len), B = o.batch,
            C = manifest.model.d_model;
  // The data, before any file is written: a bad file fails with nothing created.
  const LabelledSet train = read_training_sets(o.train, o.format);
  const LabelledSet val = o.val.empty() ? LabelledSet{} : read_labelled(o.val, o.format);
  const std::vector<std::string> attributes = protected_attributes(train.subgroups, o.protect);
  const AdversaryGoal goal = parse_adversary_goal(o.adversary);
  const AdversaryInput input = parse_adversary_input(o.adversary_input);
  const DebiasUpdate update = parse_debias_update(o.debias_update);
  const EncodedTexts train_tokens = encode_texts(tokenizer, train.texts, T);
  const EncodedTexts val_tokens = encode_texts(tokenizer, val.texts, T);
  log_info("classify: {} training examples from {} ({} truncated to {} tokens), {} held out; {}",
           train.size(), train.source, train_tokens.truncated, T, val.size(), manifest.model.describe());

  // The policy before any file is written: a bad rule fails with nothing created.
  std::unique_ptr<PolicySet> policies;
  if (!o.policy.empty()) {
    const std::map<std::string, std::string> known = classify_policy_metrics(
        goal == AdversaryGoal::kNone ? std::vector<std::string>() : attributes, update, val);
    policies = std::make_unique<PolicySet>(PolicySet::load(o.policy, &known));
  }

  create_run_dir(o.out, o.force);
  std::filesystem::copy_file(tokenizer_path, fs::path(o.out) / "tokenizer.model",
                             fs::copy_options::overwrite_existing);
  Classifier<float> model(manifest.model, parse_pooling(o.pool));
  model.init_head(o.seed);
  if (o.reinit) {
    model.trunk().init_weights(o.seed);
  } else {
    load_lm_into(lm, &model);
  }
  AdamW trunk_optimizer(model.trunk().layout());
  std::vector<float> head_m(model.head_params().size()), head_v(head_m.size());
  const std::vector<double> weights = o.reweigh
                                          ? reweighing_weights(train.labels, train.subgroups, attributes)
                                          : std::vector<double>(train.size(), 1.0);
  std::vector<std::unique_ptr<AttributeAdversary>> adversaries;
  if (goal != AdversaryGoal::kNone) {
    for (size_t a = 0; a < attributes.size(); ++a) {
      AttributeTargets t = attribute_targets(train.subgroups, attributes[a], train.size());
      const int classes = t.classes();
      auto adv = std::make_unique<AttributeAdversary>(AttributeAdversary{
          std::move(t), Adversary<float>(adversary_inputs(goal, input, C), classes, o.seed + 1 + a), {}, {}});
      adv->m.assign(adv->model.params().size(), 0);
      adv->v.assign(adv->model.params().size(), 0);
      adversaries.push_back(std::move(adv));
    }
  }

  // Governance: the audit log, the policy rules, metrics.jsonl.
  AuditLog audit = AuditLog::open(o.out);
  nlohmann::json config = {{"command", "classify"},
                           {"init", lm},
                           {"train", o.train},
                           {"val", o.val},
                           {"steps", o.steps},
                           {"batch", B},
                           {"seq_len", T},
                           {"lr", o.lr},
                           {"pool", o.pool},
                           {"reweigh", o.reweigh},
                           {"adversary", o.adversary},
                           {"adversary_input", o.adversary_input},
                           {"debias_update", o.debias_update},
                           {"lambda", o.lambda},
                           {"lambda_warmup", o.lambda_warmup},
                           {"adversary_lr", o.adversary_lr},
                           {"protect", attributes},
                           {"seed", o.seed},
                           {"threads", threads()},  // the bits depend on it (kernels' partial sums)
                           {"reinit", o.reinit},
                           {"model", manifest.model.to_json()}};
  log_run_start(audit, config, "", process_command_line());
  if (policies) log_policies(audit, o.policy, *policies);
  MetricsLog metrics(o.out, 0);
  bool halted = false;
  // RUN/REVIEW_REQUIRED as `triad train` writes it (train/governance_observer.h); a classifier run is never
  // resumed, so its reasons are this run's.
  nlohmann::json review_reasons = nlohmann::json::array();
  auto govern = [&](const nlohmann::json& record) {
    metrics.write(record);
    if (!policies) return;
    for (const Decision& d : policies->evaluate(record)) {
      log_decision(audit, d);
      log_warn("policy {} ({}): {}", d.rule, policy_action_name(d.action), d.message);
      halted |= d.action == PolicyAction::kHalt;
      if (d.action == PolicyAction::kReview) {
        review_reasons.push_back(
            {{"rule", d.rule}, {"message", d.message}, {"step", record.value("step", 0)}});
        write_file_atomic(
            review_marker_path(o.out),
            nlohmann::json{{"review_required", true}, {"reasons", review_reasons}}.dump(2) + "\n");
      }
    }
  };
  nlohmann::json last_eval;
  int evaluated_at = -1;  // a halt on an evaluation ends the loop at a step already evaluated
  auto evaluate_now = [&](int step) {
    if (val.size() == 0 || step == evaluated_at) return;
    evaluated_at = step;
    const std::vector<float> p = predict_probabilities(model, val_tokens, 64);
    nlohmann::json measured = nlohmann::json::object();
    for (auto& [name, value] : evaluation_metrics(p, val.labels, val.subgroups)) measured[name] = value;
    // With the per-group values: the model card reads them from the hash-chained log.
    log_eval(audit, step, measured, val.subgroups.empty() ? nlohmann::json() : classify_group_values(p, val));
    nlohmann::json record = measured;
    record["step"] = step;
    govern(record);
    last_eval = record;
    log_info("step {:>5} | val_loss {:.4f} | val_accuracy {:.3f}{}", step, record.value("val_loss", 0.0),
             record.value("val_accuracy", 0.0),
             record.contains("fair_overall_auc")
                 ? fmt::format(" | auc {:.3f}", record["fair_overall_auc"].get<double>())
                 : std::string());
  };

  // Training.
  Shuffler shuffler(train.size(), o.seed);
  std::vector<size_t> rows(B);
  std::vector<int32_t> tokens(static_cast<size_t>(B) * T);
  std::vector<int> lengths(B), labels(B);
  std::vector<float> s(B), dz_task(B), dz_adv(B), dpool_adv(static_cast<size_t>(B) * C), task_grads;
  const size_t trunk_n = model.trunk().num_params(), head_n = model.head_params().size();
  int step = 0;
  while (step < o.steps && !halted) {
    const auto started = Clock::now();
    ++step;
    double weight_sum = 0;
    for (int i = 0; i < B; ++i) {
      rows[i] = shuffler.next();
      std::copy_n(train_tokens.tokens.begin() + static_cast<ptrdiff_t>(rows[i] * T), T,
                  tokens.begin() + i * T);
      lengths[i] = train_tokens.lengths[rows[i]];
      labels[i] = train.labels[rows[i]];
      weight_sum += weights[rows[i]];
    }
    model.zero_grads();
    const std::vector<float>& z = model.forward(tokens.data(), lengths.data(), B, T);
    // 1. The task: Σ w BCE / Σ w; d/dz = w (σ(z) − y) / Σ w.
    double loss = 0;
    for (int i = 0; i < B; ++i) {
      s[i] = 1.0f / (1.0f + std::exp(-z[i]));
      const double w = weights[rows[i]] / weight_sum;
      // BCE from the logit, stably: log(1 + e^z) − y z.
      loss += w * (std::max(z[i], 0.0f) + std::log1p(std::exp(-std::fabs(z[i]))) - labels[i] * z[i]);
      dz_task[i] = static_cast<float>(w * (s[i] - labels[i]));
    }
    // 2. The adversaries: their gradient toward the classifier (dz_adv, dpool_adv), then their update.
    std::fill(dz_adv.begin(), dz_adv.end(), 0.0f);
    std::fill(dpool_adv.begin(), dpool_adv.end(), 0.0f);
    nlohmann::json record = {{"step", step}, {"loss", loss}};
    // Every adversary reads the same features of this batch.
    const std::vector<float> x = adversaries.empty()
                                     ? std::vector<float>()
                                     : adversary_features(goal, input, s, labels, model.pooled().data(), C);
    for (auto& adv : adversaries) {
      std::vector<int> target(B);
      for (int i = 0; i < B; ++i) target[i] = adv->targets.target[rows[i]];
      record["adv_loss_" + adv->targets.attribute] = adv->model.forward(x.data(), target.data(), B);
      std::fill(adv->model.grads().begin(), adv->model.grads().end(), 0.0f);
      std::vector<float> dx(x.size());
      adv->model.backward(dx.data());
      adversary_feature_backward(goal, input, dx, s, labels, C, &dz_adv, &dpool_adv);
      adamw_update(adv->model.params().data(), adv->model.grads().data(), adv->m.data(), adv->v.data(),
                   adv->m.size(), {.lr = static_cast<float>(o.adversary_lr), .beta2 = 0.999f}, step);
    }
    // 3. The classifier's gradient.
    const double lambda = adversaries.empty() ? 0 : lambda_at(step, o.lambda, o.lambda_warmup);
    const bool pooled = input != AdversaryInput::kOutput && !adversaries.empty();
    if (update == DebiasUpdate::kReversal || adversaries.empty()) {
      std::vector<float> dz(B), dpool(pooled ? dpool_adv.size() : 0);
      for (int i = 0; i < B; ++i) dz[i] = dz_task[i] - static_cast<float>(lambda) * dz_adv[i];
      for (size_t j = 0; j < dpool.size(); ++j) dpool[j] = -static_cast<float>(lambda) * dpool_adv[j];
      model.backward(dz.data(), pooled ? dpool.data() : nullptr);
    } else {
      // Projection: the task's gradient and the adversaries' in parameter space, from two backwards.
      model.backward(dz_task.data());
      task_grads.assign(model.trunk().grads(), model.trunk().grads() + trunk_n);
      task_grads.insert(task_grads.end(), model.head_grads().begin(), model.head_grads().end());
      model.zero_grads();
      model.forward(tokens.data(), lengths.data(), B, T);
      model.backward(dz_adv.data(), pooled ? dpool_adv.data() : nullptr);
      std::vector<float> adv_grads(model.trunk().grads(), model.trunk().grads() + trunk_n);
      adv_grads.insert(adv_grads.end(), model.head_grads().begin(), model.head_grads().end());
      record["task_adv_cosine"] = project_out(&task_grads, adv_grads, lambda);
      std::copy_n(task_grads.begin(), trunk_n, model.trunk().grads());
      std::copy(task_grads.begin() + static_cast<ptrdiff_t>(trunk_n), task_grads.end(),
                model.head_grads().begin());
    }
    // 4. The update.
    record["grad_norm"] = clip({{model.trunk().grads(), trunk_n}, {model.head_grads().data(), head_n}}, 1.0);
    const double lr = learning_rate(o, step);
    trunk_optimizer.update(
        model.trunk().params(), model.trunk().grads(), static_cast<float>(lr),
        {.beta1 = 0.9f, .beta2 = 0.999f, .weight_decay = static_cast<float>(o.weight_decay)});
    adamw_update(model.head_params().data(), model.head_grads().data(), head_m.data(), head_v.data(), head_n,
                 {.lr = static_cast<float>(lr), .beta2 = 0.999f}, step);
    const double seconds = seconds_since(started);
    record["lr"] = lr;
    if (!adversaries.empty()) record["lambda"] = lambda;
    record["step_ms"] = 1e3 * seconds;
    record["examples_per_s"] = B / seconds;
    if (!std::isfinite(loss)) fail("the loss is not finite at step {} (lower --lr?)", step);
    govern(record);
    if (step % 10 == 0 || step == 1) {
      log_info("step {:>5}/{} | loss {:.4f} | {:.0f} examples/s", step, o.steps, loss, B / seconds);
    }
    if (o.eval_every > 0 && step % o.eval_every == 0 && step < o.steps) evaluate_now(step);
  }
  evaluate_now(step);

  // The classifier run.
  nlohmann::json info = {{"init", lm},
                         {"tokenizer_sha256", tokenizer_file_hash(tokenizer_path).sha256},
                         {"options", config},
                         {"steps", step},
                         {"result", last_eval}};
  save_classifier(o.out, model, T, info);
  log_checkpoint(
      audit, step,
      {(fs::path(o.out) / kClassifierWeights).string(), (fs::path(o.out) / kClassifierInfo).string()});
  nlohmann::json summary = {{"steps", step}, {"result", last_eval}};
  if (!review_reasons.empty()) summary["review"] = true;
  log_run_end(audit, halted ? "halted" : "completed", summary);
  audit.write_head();
  log_info("classify: wrote {} ({} steps{})", o.out, step, halted ? ", halted by a policy" : "");
  return halted ? 3 : 0;
}

}  // namespace triad::fairness
