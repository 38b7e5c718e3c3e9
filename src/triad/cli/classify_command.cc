// `triad classify` (fine-tune a classifier on an LM's trunk, with fairness mitigations) and `triad predict`
// (score labelled or unlabelled text with it). docs/fairness.md.
#include <fmt/format.h>

#include <memory>

#include "triad/cli/cli.h"
#include "triad/core/error.h"
#include "triad/core/log.h"
#include "triad/core/parallel.h"
#include "triad/fairness/classifier_run.h"
#include "triad/fairness/evaluation.h"
#include "triad/fairness/fine_tune.h"
#include "triad/fairness/predictions.h"

namespace triad::cli {

namespace {

void add_format_options(CLI::App& cmd, fairness::LabelledFormat& f) {
  const char* group = "Input format (CSV, TSV or JSONL; see docs/fairness.md)";
  cmd.add_option("--text-field", f.text_field,
                 "Column or key of the text (default: text, comment, comment_text or Text)")
      ->group(group);
  cmd.add_option("--label-field", f.label_field,
                 "Column or key of the label (default: label, toxic, is_toxic, target or Label); 'none' for "
                 "unlabelled input")
      ->group(group);
  cmd.add_option("--positive", f.positive_values,
                 "Label strings meaning positive (default: 1 true True BAD toxic)")
      ->group(group);
  cmd.add_option("--negative", f.negative_values,
                 "Label strings meaning negative (default: 0 false False NOT_BAD non-toxic)")
      ->group(group);
  cmd.add_option("--threshold", f.threshold,
                 "A numeric label >= this is positive (Jigsaw's fractional target)")
      ->group(group);
  cmd.add_option("--id-field", f.id_field, "Column or key of an example id (default: FILE:LINE)")
      ->group(group);
  cmd.add_option(
         "--identity-columns", f.identity_columns,
         "Columns with one identity group each, fractional, >= 0.5 present (the Civil Comments schema)")
      ->delimiter(',')
      ->group(group);
  cmd.add_option("--identity-terms", f.identity_terms,
                 "TOML list of identity terms per group per attribute, to tag the text with (e.g. "
                 "data/identity_terms.toml)")
      ->group(group);
}

}  // namespace

Runner add_classify_command(CLI::App& root) {
  auto o = std::make_shared<fairness::FineTuneOptions>();
  o->threads = default_threads();
  CLI::App* cmd = root.add_subcommand(
      "classify", "Fine-tune a binary text classifier on a trained LM's trunk, optionally debiased.");
  cmd->footer(
      "Mitigations compose: --reweigh (Kamiran & Calders weights per identity and label), --adversary "
      "parity|odds "
      "(one adversary per protected attribute, an MLP 128-64-K, through gradient reversal with weight "
      "--lambda, or --debias-update projection as Zhang et al. 2018), and extra --train files (e.g. "
      "non-toxic sentences mentioning identities). Each evaluation on --val writes accuracy and the fairness "
      "metrics to RUN/metrics.jsonl and the audit log, where --policy rules can alert, halt or ask for "
      "review.\n"
      "Example: triad classify --init runs/lm --train train.csv --val val.csv --identity-terms "
      "data/identity_terms.toml --adversary odds --reweigh --out runs/toxicity");
  add_config_option(*cmd);
  cmd->add_option("--init", o->init, "The LM run or checkpoint whose trunk and tokenizer to start from")
      ->type_name("RUN|CKPT");
  cmd->add_flag("--reinit", o->reinit, "Random trunk weights (train from scratch; the checkpoint's shape)");
  cmd->add_option("--train", o->train, "Labelled training file(s); several are concatenated")
      ->type_name("FILE");
  cmd->add_option("--val", o->val, "Held-out labelled file evaluated every --eval-every steps")
      ->type_name("FILE");
  cmd->add_option("--out", o->out, "The classifier run directory to create")->type_name("DIR");
  cmd->add_flag("--force", o->force, "Replace an existing classifier run in --out");
  cmd->add_option("--steps", o->steps, "Optimizer steps")->check(positive());
  cmd->add_option("--batch", o->batch, "Examples per step")->check(positive());
  cmd->add_option("--seq-len", o->seq_len,
                  "Tokens kept per text, longer texts truncated (0: 64, or the model's context if shorter)")
      ->check(non_negative());
  cmd->add_option("--lr", o->lr, "Peak learning rate (linear warm-up, then linear decay to 0)");
  cmd->add_option("--warmup", o->warmup, "Warm-up steps")->check(non_negative());
  cmd->add_option("--weight-decay", o->weight_decay, "AdamW weight decay of the trunk's linear weights");
  cmd->add_option("--pool", o->pool, "Pooling of the final hidden states: mean or last")
      ->check(CLI::IsMember({"mean", "last"}));
  cmd->add_option("--eval-every", o->eval_every, "Steps between evaluations on --val (0: at the end only)")
      ->check(non_negative());
  cmd->add_option("--seed", o->seed, "Seed of the head, the adversaries and the example order");
  cmd->add_option("--threads", o->threads, "Threads")->check(positive());
  add_format_options(*cmd, o->format);
  const char* mitigation = "Mitigations";
  cmd->add_flag("--reweigh", o->reweigh,
                "Kamiran & Calders reweighing over the protected identities and label")
      ->group(mitigation);
  cmd->add_option("--adversary", o->adversary,
                  "none, parity (the adversary sees the score: demographic parity) or odds (score and label: "
                  "equalized odds)")
      ->check(CLI::IsMember({"none", "parity", "odds"}))
      ->group(mitigation);
  cmd->add_option("--adversary-input", o->adversary_input,
                  "What the adversary reads: output (the score; with the label for odds), pooled (the pooled "
                  "representation) or both")
      ->check(CLI::IsMember({"output", "pooled", "both"}))
      ->group(mitigation);
  cmd->add_option("--debias-update", o->debias_update,
                  "reversal (gradient reversal) or projection (also remove the task gradient's component "
                  "that helps the adversary; a second backward per step)")
      ->check(CLI::IsMember({"reversal", "projection"}))
      ->group(mitigation);
  cmd->add_option("--lambda", o->lambda, "Weight of the adversaries' reversed gradient")->group(mitigation);
  cmd->add_option("--lambda-warmup", o->lambda_warmup, "Steps over which lambda rises linearly from 0")
      ->check(non_negative())
      ->group(mitigation);
  cmd->add_option("--adversary-lr", o->adversary_lr, "The adversaries' learning rate")->group(mitigation);
  cmd->add_option(
         "--protect", o->protect,
         "Protected attributes, comma-separated (default: every attribute the data's identities have)")
      ->delimiter(',')
      ->group(mitigation);
  cmd->add_option("--policy", o->policy, "Policy rules over the metrics (docs/governance.md)")
      ->type_name("FILE");
  return [o]() { return fairness::fine_tune(*o); };
}

Runner add_predict_command(CLI::App& root) {
  struct ClassifyFlags {
    std::string model, data, out;
    int batch = 64, threads = default_threads();
    fairness::LabelledFormat format;
  };
  auto f = std::make_shared<ClassifyFlags>();
  CLI::App* cmd =
      root.add_subcommand("predict", "Score texts with a classifier run; writes JSONL predictions.");
  cmd->footer(
      "Each line: {\"id\", \"label\" (when the input has one), \"score\" (the positive class's probability), "
      "\"identities\"}. Evaluate them with `triad fairness PREDICTIONS.jsonl`.");
  add_config_option(*cmd);
  cmd->add_option("--model", f->model, "A classifier run (triad classify --out)")->type_name("RUN");
  cmd->add_option("--data", f->data, "CSV, TSV or JSONL file of texts")->type_name("FILE");
  cmd->add_option("--out", f->out, "Where to write the predictions (JSONL)")->type_name("FILE");
  cmd->add_option("--batch", f->batch, "Texts per forward pass")->check(positive());
  cmd->add_option("--threads", f->threads, "Threads")->check(positive());
  add_format_options(*cmd, f->format);
  return [f]() {
    if (f->model.empty() || f->data.empty() || f->out.empty())
      fail_usage("--model, --data and --out are required");
    set_threads(f->threads);
    fairness::LoadedClassifier c = fairness::load_classifier(f->model);
    const fairness::LabelledSet data = fairness::read_labelled(f->data, f->format);
    const fairness::EncodedTexts texts = fairness::encode_texts(*c.tokenizer, data.texts, c.seq_len);
    const std::vector<float> p = fairness::predict_probabilities(*c.model, texts, f->batch);
    const std::vector<double> scores(p.begin(), p.end());
    fairness::write_predictions(f->out, data.ids, fairness::label_bytes(data.labels), scores, data.subgroups);
    log_info("predict: {} texts from {} ({} truncated to {} tokens) -> {}", data.texts.size(), f->data,
             texts.truncated, c.seq_len, f->out);
    return 0;
  };
}

}  // namespace triad::cli
