// `triad explain`: why a classifier run predicts what it does (or a language model the token it generates
// next), by several methods side by side, the rule engine's clauses, and a rule set mined over a dataset
// (docs/explain.md).

#include <fmt/format.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "triad/cli/cli.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/log.h"
#include "triad/explain/page.h"
#include "triad/fairness/labelled_data.h"
#include "triad/governance/audit_events.h"
#include "triad/governance/audit_log.h"

namespace triad::cli {

namespace {

constexpr const char* kExplainFooter =
    R"(Methods (each scores every word toward the predicted label, or a language model's next token;
higher = more for it):
  attention   the last block's attention (head mean) paid to the word by the positions the pooling reads
  rollout     attention rollout through every layer        flow   attention flow (max-flow) to the last token
  grad_attention  gradient-weighted attention rollout (Chefer et al. 2021)
  grad_input  gradient x token embedding                     ig     integrated gradients from a zero embedding
  occlusion   drop in p(label) when the word is left out    lime   LIME's weighted ridge on word dropouts
  shap        KernelSHAP (exact Shapley values for short texts)
  rules       the rule engine: mined rule importance + last-block attention, as IF word THEN label clauses
Examples:
  triad explain --model RUN --text "you are a wonderful person"
  triad explain --model RUN --mine train.csv --rules-out rules.json
  triad explain --model RUN --input test.csv --limit 20 --rules rules.json --methods all --html page.html
  triad explain --model runs/lm --text "The capital of France is" --methods all
See docs/explain.md.)";

struct ExplainFlags {
  std::string model, input, mine, rules_in, rules_out, json_out, html_out, methods = "default";
  std::vector<std::string> texts;
  fairness::LabelledFormat format;
  explain::ExplainOptions options;
  explain::MiningOptions mining;
  double held_out = 0.2;
  size_t limit = 0;
  int batch = 32;
  bool audit = false;
};

std::vector<std::string> method_list(const std::string& list) {
  if (list == "default") return explain::ExplainOptions().methods;
  if (list == "all") {
    std::vector<std::string> out;
    for (explain::Method m : explain::all_methods()) out.push_back(explain::method_name(m));
    out.push_back(explain::kRuleMethod);
    return out;
  }
  const std::vector<std::string> out = split_list("--methods", list);
  explain::check_methods(out);
  return out;
}

fairness::LabelledSet read_texts(const std::string& path, fairness::LabelledFormat format) {
  format.label_field = "none";
  return fairness::read_labelled(path, format);
}

int mine(const ExplainFlags& f, explain::Probe& probe) {
  if (std::string(probe.kind()) != "classifier")
    fail_usage("--mine: rules are mined for a classifier's labels; {} is a {}", f.model, probe.kind());
  if (f.rules_out.empty()) fail_usage("--mine needs --rules-out FILE for the rule set");
  const fairness::LabelledSet set = read_texts(f.mine, f.format);
  log_info("explain: mining rules over {} texts of {} ({} % held out)", set.size(), f.mine, 100 * f.held_out);
  const explain::RuleSet rules =
      explain::mine_from_texts(probe, set.texts, f.held_out, f.mining, f.options.method.seed);
  write_file_atomic(f.rules_out, rules.to_json().dump(2) + "\n");
  fmt::print("{} rules (support >= {}, precision >= {}) from {} texts", rules.rules.size(),
             f.mining.min_support, f.mining.min_precision, rules.texts);
  if (rules.fidelity >= 0)
    fmt::print("; fidelity to the classifier on held-out texts {:.3f}", rules.fidelity);
  fmt::print("\n");
  for (size_t i = 0; i < std::min<size_t>(rules.rules.size(), 10); ++i) {
    const explain::Rule& r = rules.rules[i];
    fmt::print("  IF {} THEN {}   precision {:.3f} on {}\n", r.condition(), r.label, r.precision(),
               r.support);
  }
  fmt::print("written to {}\n", f.rules_out);
  return 0;
}

}  // namespace

Runner add_explain_command(CLI::App& root) {
  auto f = std::make_shared<ExplainFlags>();
  CLI::App* cmd = root.add_subcommand(
      "explain",
      "Explain a classifier's predictions, or a language model's next token: per-word relevance by "
      "attention, rollout, flow, gradients, "
      "integrated gradients, occlusion, LIME and KernelSHAP side by side; IF-THEN clauses from the rule "
      "engine; a rule set mined over a dataset with its fidelity; JSON and a self-contained HTML page.");
  cmd->footer(kExplainFooter);
  add_config_option(*cmd);
  cmd->add_option("--model", f->model,
                  "Classifier run (triad classify --out RUN), or a language model's run or checkpoint")
      ->type_name("RUN")
      ->required();
  cmd->add_option("--text", f->texts, "A text to explain (repeatable)")->type_name("TEXT");
  cmd->add_option("--input", f->input, "Texts to explain: JSONL, CSV or TSV (see --text-field)")
      ->type_name("FILE");
  cmd->add_option("--text-field", f->format.text_field,
                  "Column or key of the text (default: text, comment, ...)");
  cmd->add_option("--id-field", f->format.id_field, "Column or key of an id (default: FILE:LINE)");
  cmd->add_option("--limit", f->limit, "Explain only the first N texts of --input (0: all)")->type_name("N");
  cmd->add_option("--methods", f->methods,
                  "Comma-separated methods, 'all', or 'default' (" +
                      std::string("attention,rollout,grad_input,ig,occlusion,rules)"))
      ->type_name("LIST");
  cmd->add_option("--rules", f->rules_in, "Rule set mined earlier (--mine) for the rule engine")
      ->type_name("RULES.json");
  cmd->add_option("--top", f->options.top, "Words per method shown, and clauses")->check(positive());
  cmd->add_flag("--faithfulness", f->options.faithfulness,
                "Also measure ERASER's comprehensiveness and sufficiency (AOPC over 1, 5, 10, 20, 50 %)");
  cmd->add_option("--json", f->json_out, "Write the explanations as JSON lines to FILE")->type_name("FILE");
  cmd->add_option("--html", f->html_out, "Write one self-contained HTML page to FILE")->type_name("FILE");
  cmd->add_flag("--audit", f->audit, "Log each explanation's hash in the model run's audit log");
  cmd->add_option("--ig-steps", f->options.method.ig_steps, "Integrated gradients: points on the path")
      ->check(positive());
  cmd->add_flag(
      "--ig-gauss", f->options.method.ig_gauss_legendre,
      "Integrated gradients: Gauss-Legendre points (4, 8, 16, 32 or 64) instead of the midpoint rule");
  cmd->add_option("--ig-batch", f->options.method.ig_batch,
                  "Integrated gradients: points per forward (memory)")
      ->check(positive());
  cmd->add_option("--lime-samples", f->options.method.lime_samples, "LIME: perturbed inputs")
      ->check(positive());
  cmd->add_option("--shap-samples", f->options.method.shap_samples,
                  "KernelSHAP: coalitions (every one when there are at most this many)")
      ->check(positive());
  cmd->add_option("--seed", f->options.method.seed, "Seed of LIME, KernelSHAP and the mining split");
  cmd->add_option("--batch", f->batch, "Texts per forward")->check(positive());
  cmd->add_option("--mine", f->mine, "Mine IF word THEN label rules over these texts (JSONL, CSV, TSV)")
      ->type_name("FILE");
  cmd->add_option("--rules-out", f->rules_out, "Where --mine writes the rule set")->type_name("FILE");
  cmd->add_option("--held-out", f->held_out, "--mine: share of texts kept to measure the rules");
  cmd->add_option("--min-support", f->mining.min_support, "--mine: texts a rule fires on at least")
      ->check(positive());
  cmd->add_option("--min-precision", f->mining.min_precision,
                  "--mine: the rule's label on at least this share");
  cmd->add_flag("--conjunctions", f->mining.conjunctions,
                "--mine: also IF w AND v rules, kept when more precise than each word alone by --min-gain");
  cmd->add_option("--min-gain", f->mining.min_gain, "--mine --conjunctions: precision gain over each word");
  return [f]() {
    f->options.methods = method_list(f->methods);
    const std::unique_ptr<explain::Probe> probe = explain::open_probe(f->model, f->batch);
    if (!f->mine.empty()) {
      if (!f->texts.empty() || !f->input.empty())
        fail_usage("--mine mines rules; explain texts in another call");
      return mine(*f, *probe);
    }
    std::vector<std::string> ids, texts;
    for (size_t i = 0; i < f->texts.size(); ++i) {
      ids.push_back(fmt::format("text {}", i + 1));
      texts.push_back(f->texts[i]);
    }
    if (!f->input.empty()) {
      fairness::LabelledSet set = read_texts(f->input, f->format);
      const size_t n = f->limit ? std::min(f->limit, set.size()) : set.size();
      ids.insert(ids.end(), set.ids.begin(), set.ids.begin() + static_cast<ptrdiff_t>(n));
      texts.insert(texts.end(), set.texts.begin(), set.texts.begin() + static_cast<ptrdiff_t>(n));
    }
    if (texts.empty()) fail_usage("nothing to explain: give --text TEXT or --input FILE (or --mine FILE)");
    std::optional<explain::RuleSet> rules;
    if (!f->rules_in.empty()) {
      rules = explain::RuleSet::from_json(read_json_file(f->rules_in), f->rules_in);
      f->options.rules = &*rules;
    }
    std::optional<AuditLog> log;  // opened first: a log another process holds fails before any work
    if (f->audit)
      log.emplace(AuditLog::open(probe->run_dir(), {.host = "", .rank = 0, .recover_torn_tail = true}));
    std::vector<explain::Explanation> explanations;
    std::string jsonl;
    for (size_t i = 0; i < texts.size(); ++i) {
      explanations.push_back(explain::explain_text(*probe, ids[i], texts[i], f->options));
      const explain::Explanation& e = explanations.back();
      fmt::print("{}", explain::format_explanation(e, f->options.top));
      const std::string json = explain::to_json(e).dump();
      jsonl += json + "\n";
      if (log) log_inference(*log, texts[i], json, false, {{"kind", "explanation"}, {"id", ids[i]}});
      if (texts.size() > 3) log_info("explain: {} of {} texts", i + 1, texts.size());
    }
    if (log) log->write_head(nullptr);
    if (!f->json_out.empty()) write_file_atomic(f->json_out, jsonl);
    if (!f->html_out.empty()) {
      write_file_atomic(f->html_out, explain::explanation_page(explanations, f->options.rules,
                                                               "Explanations of " + f->model));
    }
    return 0;
  };
}

}  // namespace triad::cli
