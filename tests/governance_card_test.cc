// The model card's fairness tables (governance/model_card.cc) from hand-written audit logs: what each eval
// entry holds decides what the card shows. A classifier run's card against its fairness report:
// Classify.LearnsTheLabelAndPredicts.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "triad/governance/audit_events.h"
#include "triad/governance/audit_log.h"
#include "triad/governance/audit_verify.h"
#include "triad/governance/model_card.h"

namespace triad {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

// The card's fairness tables from the last eval entry: per attribute its gaps (BPSN and BNSP among them),
// per group the logged values with "—" and the reason where one is undefined. A log from before the
// per-group values (flat metrics only) still renders its attribute table, and no group table.
TEST(GovernanceCard, ShowsFairnessPerAttributeAndPerGroup) {
  TempDir dir;
  const std::string old_run = dir / "old", run = dir / "new";
  {
    AuditLog log = AuditLog::open(old_run);
    log_eval(log, 10,
             {{"val_loss", 0.5}, {"fair_subgroup_auc_gap_religion", 0.25}, {"fair_dpd_religion", 0.125}});
  }
  std::string md = model_card_markdown(old_run, verify_audit(old_run, nullptr));
  EXPECT_THAT(md, HasSubstr("(step 10;"));
  EXPECT_THAT(md, HasSubstr("| religion | 0.25 |  |  | 0.125 |  |  |\n"));
  EXPECT_THAT(md, ::testing::Not(HasSubstr("| attribute | group |")));
  {
    AuditLog log = AuditLog::open(run);
    const nlohmann::json metrics = {{"fair_subgroup_auc_gap_religion", 0.25},
                                    {"fair_bpsn_gap_religion", 0.5},
                                    {"fair_bnsp_gap_religion", 0.0625}};
    const nlohmann::json groups = {
        {{"attribute", "religion"},
         {"group", "muslim"},
         {"rows", 12},
         {"subgroup_auc", 0.75},
         {"bpsn_auc", 0.5},
         {"bnsp_auc", 0.875},
         {"tpr", 1.0},
         {"fpr", 0.25},
         {"ece", 0.125}},
        {{"attribute", "religion"},
         {"group", "christian"},
         {"rows", 3},
         {"subgroup_auc", nullptr},
         {"bpsn_auc", 0.625},
         {"bnsp_auc", nullptr},
         {"tpr", nullptr},
         {"fpr", 0.5},
         {"ece", 0.375},
         {"note", "one class only (0 positive, 3 negative): subgroup AUC undefined"}}};
    log.append("eval", {{"step", 20}, {"metrics", metrics}, {"groups", groups}});
  }
  md = model_card_markdown(run, verify_audit(run, nullptr));
  EXPECT_THAT(md, HasSubstr("| attribute | subgroup AUC gap | BPSN AUC gap | BNSP AUC gap |"));
  EXPECT_THAT(md, HasSubstr("| religion | 0.25 | 0.5 | 0.0625 |  |  |  |\n"));
  EXPECT_THAT(md, HasSubstr("| religion | muslim | 12 | 0.75 | 0.5 | 0.875 | 1.0 | 0.25 | 0.125 |\n"));
  EXPECT_THAT(md, HasSubstr("| religion | christian | 3 | — | 0.625 | — | — | 0.5 | 0.375 |\n"));
  EXPECT_THAT(md, HasSubstr("- religion/christian: one class only (0 positive, 3 negative)"));
  EXPECT_THAT(md, ::testing::Not(HasSubstr("- religion/muslim:")));
}

}  // namespace
}  // namespace triad
