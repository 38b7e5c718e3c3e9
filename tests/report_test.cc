// `triad report`: the sections a report holds for real runs (plain, 2-rank top-K, remat, DP-SGD, halted by a
// policy) and for made-up ones (fairness fields, explanations, a corrupt metrics line, a long run), and the
// four real reports as headless Chromium renders them, with no request leaving the page.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "headless_chromium.h"
#include "train_test_util.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/report/html_report.h"

namespace triad::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// The ids of the <section>s of a report, in order.
std::vector<std::string> section_ids(const std::string& html) {
  static const std::regex section(R"re(<section id="([a-z-]+)">)re");
  std::vector<std::string> ids;
  for (std::sregex_iterator it(html.begin(), html.end(), section), end; it != end; ++it)
    ids.push_back((*it)[1]);
  return ids;
}

// The text of section `id` (empty when absent).
std::string section(const std::string& html, const std::string& id) {
  const size_t start = html.find("<section id=\"" + id + "\">");
  if (start == std::string::npos) return "";
  return html.substr(start, html.find("</section>", start) - start);
}

// What could make a browser fetch: an attribute or CSS reference to anything but this page's own anchors.
void expect_nothing_to_fetch(const std::string& html) {
  static const std::regex reference(R"((src|href|srcset|action|data)\s*=\s*["']?([^"'\s>]*))",
                                    std::regex::icase);
  for (std::sregex_iterator it(html.begin(), html.end(), reference), end; it != end; ++it)
    EXPECT_TRUE((*it)[2].str().starts_with("#")) << "a reference that could fetch: " << (*it)[0];
  EXPECT_THAT(html, Not(HasSubstr("url(")));
  EXPECT_THAT(html, Not(HasSubstr("@import")));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, Not(HasSubstr("<link")));
}

class Report : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { dir_ = new TempDir; }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  // The run `name` (plain, topk, remat, dp or halted: 6 steps of the tiny model), trained on first use, so
  // that a test run alone (as CTest runs each) trains only the runs it reports.
  static std::string run(const std::string& name) {
    const std::string dir = *dir_ / name;
    if (fs::exists(dir)) return dir;
    const std::string common = "--steps 6 --eval-every 3 --ckpt-every 3 ";
    CommandResult r{-1, "", "no such test run"};
    if (name == "plain") r = run_triad(train_args(dir, common));
    if (name == "remat") r = run_triad(train_args(dir, common + "--activation-memory 0.6x --replan-every 2"));
    if (name == "dp") r = run_triad(train_args(dir, common + "--dp-noise 1.0 --dp-clip 1.0 --dp-delta 1e-5"));
    if (name == "topk")
      r = run_triad_mpi(2, train_args(dir, common + "--threads 1 --grad-compression topk:0.1"));
    if (name == "halted") {
      write_text(*dir_ / "policy.toml", R"([[rule]]
name = "any-loss"
when = "loss > 0"
action = "alert"

[[rule]]
name = "stop-early"
when = "step >= 3"
action = "halt"
)");
      r = run_triad(train_args(dir, common + "--policy " + (*dir_ / "policy.toml")));
      r.exit_code = r.exit_code == 3 ? 0 : 1;  // the halt's exit code
    }
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.err;
    return dir;
  }

  // `triad report` of the runs into RUN_0/report.html (or `out`); the HTML.
  static std::string report(const std::vector<std::string>& names, const std::string& out = "") {
    std::string args = "report -q";
    for (const std::string& n : names) args.append(" ").append(run(n));
    const std::string path = out.empty() ? run(names[0]) + "/report.html" : out;
    if (!out.empty()) args += " --out " + out;
    auto r = run_triad(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out).value("report", ""), path);
    return read_file(path);
  }

  static TempDir* dir_;
};

TempDir* Report::dir_ = nullptr;

TEST_F(Report, APlainRunHasItsSectionsAndNoOthers) {
  const std::string html = report({"plain"});
  EXPECT_THAT(section_ids(html),
              ElementsAre("summary", "loss", "throughput", "step-time", "memory", "audit", "model-card"));
  const std::string summary = section(html, "summary");
  EXPECT_THAT(summary, HasSubstr("L2 d32 h2 T16"));  // what was trained
  EXPECT_THAT(summary, HasSubstr("6 of 6"));
  EXPECT_THAT(summary, HasSubstr("tokens/s"));
  EXPECT_THAT(summary, HasSubstr("perplexity"));
  EXPECT_THAT(summary, HasSubstr("<span class=\"ok\">nothing</span>"));
  EXPECT_THAT(section(html, "loss"), HasSubstr("validation loss"));
  EXPECT_THAT(section(html, "audit"), HasSubstr("<span class=\"ok\">verified</span>"));
  EXPECT_THAT(section(html, "model-card"), HasSubstr("Configuration SHA-256"));
  EXPECT_THAT(section(html, "step-time"),
              Not(HasSubstr(">exposed communication</text>")));  // no legend entry
  expect_nothing_to_fetch(html);
}

TEST_F(Report, ATwoRankTopKRunShowsTheWireAndExposedCommunication) {
  const std::string html = report({"topk"});
  EXPECT_THAT(section_ids(html), ElementsAre("summary", "loss", "throughput", "step-time", "memory", "comm",
                                             "audit", "model-card"));
  EXPECT_THAT(section(html, "summary"), HasSubstr("2 ranks (data × tensor × pipeline = 2 × 1 × 1)"));
  EXPECT_THAT(section(html, "comm"), HasSubstr("<code>topk:0.1</code>"));
  EXPECT_THAT(section(html, "step-time"), HasSubstr(">exposed communication</text>"));
  expect_nothing_to_fetch(html);
}

TEST_F(Report, ARematRunShowsTheHeatmapAndPredictedMemory) {
  const std::string html = report({"remat"});
  EXPECT_THAT(section_ids(html), ElementsAre("summary", "loss", "throughput", "step-time", "memory", "remat",
                                             "audit", "model-card"));
  EXPECT_THAT(section(html, "memory"), HasSubstr("predicted peak"));
  EXPECT_THAT(section(html, "step-time"), HasSubstr(">recompute</text>"));
  const std::string remat = section(html, "remat");
  EXPECT_THAT(remat, HasSubstr("h.1 block_out"));     // a row per unit, block by block
  EXPECT_THAT(remat, HasSubstr("fill=\"#c0392b\""));  // some unit recomputed at every step of a column
  EXPECT_THAT(remat, HasSubstr("Planner optimal"));
}

TEST_F(Report, ADpSgdRunShowsEpsilonOverSteps) {
  const std::string html = report({"dp"});
  EXPECT_THAT(section_ids(html), ElementsAre("summary", "loss", "throughput", "step-time", "memory",
                                             "privacy", "audit", "model-card"));
  EXPECT_THAT(section(html, "privacy"), HasSubstr("δ = 1e-05 after step 6"));
  EXPECT_THAT(section(html, "summary"), HasSubstr("DP-SGD σ = 1"));
}

TEST_F(Report, AHaltedRunSaysWhatWentWrongInTheSummary) {
  const std::string summary = section(report({"halted"}), "summary");
  EXPECT_THAT(summary, HasSubstr("the run ended <b>halted</b> at step 3"));
  EXPECT_THAT(summary, HasSubstr("policy halt <code>stop-early</code> at step 3"));
  EXPECT_THAT(summary, HasSubstr("policy alert <code>any-loss</code> at step 1"));
  EXPECT_THAT(summary, HasSubstr("3 of 6"));
}

TEST_F(Report, SeveralRunsOverlayTheirCurvesInTheirOwnColours) {
  const std::string html = report({"plain", "dp"}, *dir_ / "compare.html");
  // A section one of the runs has (privacy) is there; the summary has a column per run.
  EXPECT_THAT(section_ids(html), ElementsAre("summary", "loss", "throughput", "step-time", "memory",
                                             "privacy", "audit", "model-card"));
  EXPECT_THAT(section(html, "summary"), HasSubstr("#ff7f0e\"></span>dp</th>"));
  const std::string loss = section(html, "loss");
  for (const char* legend :
       {"plain train loss", "dp train loss", "plain validation loss", "dp validation loss"})
    EXPECT_THAT(loss, HasSubstr(legend));
  for (const char* colour : {"#1f77b4", "#ff7f0e"})
    EXPECT_THAT(loss, HasSubstr(std::string("stroke=\"") + colour + "\""));
}

void write_run(const std::string& dir, const std::string& metrics) {
  fs::create_directories(dir);
  write_text(dir + "/run.json", R"({"format": "triad-run", "model": "L1 d8 h1 T4 V16", "ranks": 1,
                                     "options": {"steps": 4}})");
  write_text(dir + "/metrics.jsonl", metrics);
}

TEST(ReportFiles, FairnessFieldsAndExplanationsGetTheirSections) {
  TempDir dir;
  write_run(
      dir / "run",
      "{\"step\":1,\"loss\":3.0,\"tokens_per_s\":100,\"step_ms\":5}\n"
      "{\"step\":2,\"val_loss\":2.9,\"fair_overall_auc\":0.71,\"fair_subgroup_auc_gap_gender\":0.05}\n"
      "{\"step\":2,\"loss\":2.8,\"tokens_per_s\":110,\"step_ms\":5}\n"
      "{\"step\":4,\"val_loss\":2.5,\"fair_overall_auc\":0.75,\"fair_subgroup_auc_gap_gender\":0.03}\n");
  write_text(dir / "run/explanations.json", R"({"rules": [1, 2, 3], "fidelity": 0.9})");
  const std::string html = report::render_report({report::load_run(dir / "run")});
  EXPECT_THAT(section_ids(html),
              ElementsAre("summary", "loss", "throughput", "step-time", "fairness", "explanations"));
  const std::string fairness = section(html, "fairness");
  EXPECT_THAT(fairness, HasSubstr("fair_subgroup_auc_gap_gender"));
  EXPECT_THAT(fairness, HasSubstr("<td>0.03</td>"));  // the last evaluation's value
  EXPECT_THAT(section(html, "explanations"), HasSubstr("3 entries"));
}

TEST(ReportFiles, ACorruptMetricsLineIsNamedAndTheRestStillRenders) {
  TempDir dir;
  write_run(
      dir / "run",
      "{\"step\":1,\"loss\":3.0,\"step_ms\":5}\n{\"step\":2,\"lo\n{\"step\":3,\"loss\":2.5,\"step_ms\":5}\n");
  auto r = run_triad("report " + dir / "run" + " --out " + dir / "r.html");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("run/metrics.jsonl:2: not a JSON object (skipped)"));
  const std::string html = read_file(dir / "r.html");
  EXPECT_THAT(section(html, "warnings"), HasSubstr("metrics.jsonl:2"));
  EXPECT_THAT(section(html, "summary"), HasSubstr("2.5 at step 3"));
}

TEST(ReportFiles, APathThatIsNotARunIsAUsageError) {
  TempDir dir;
  EXPECT_THAT(run_triad("report " + dir / "missing"), RefusedWith("no such run directory"));
  EXPECT_THAT(run_triad("report " + dir.path()), RefusedWith("not a triad run"));
  EXPECT_THAT(run_triad("report"), RefusedWith("give a run directory"));
}

TEST(ReportFiles, ALongRunIsDownsampledKeepingItsSpike) {
  TempDir dir;
  std::string metrics;
  for (int step = 1; step <= 20000; ++step)
    metrics += fmt::format("{{\"step\":{},\"loss\":{},\"step_ms\":5}}\n", step,
                           step == 12345 ? 99.0 : 3.0 + (step % 7) / 10.0);
  write_run(dir / "run", metrics);
  const std::string loss = section(report::render_report({report::load_run(dir / "run")}), "loss");
  // (Not std::regex: libstdc++'s recursion per character overflows the stack on a path this long.)
  const size_t begin = loss.find("<path d=\"");
  ASSERT_NE(begin, std::string::npos);
  const size_t from = begin + 9;
  const std::string d = loss.substr(from, loss.find('"', from) - from);
  const size_t points = std::count(d.begin(), d.end(), 'L') + 1;  // "M x y L x y L ..."

  EXPECT_LE(points, 1000u);
  EXPECT_GE(points, 900u);
  EXPECT_THAT(loss, HasSubstr(">100<"));  // the y axis reaches the spike of 99
}

// The four reports in one headless Chromium: each DOM has the sections, a screenshot is taken, and the page
// asks the network for nothing but its own file (host names cannot resolve either).
TEST_F(Report, HeadlessChromiumRendersTheReportsAndFetchesNothing) {
  if (HeadlessChromium::binary().empty())
    GTEST_SKIP() << "chromium is not installed (scripts/setup installs it)";
  std::map<std::string, std::vector<std::string>> expected = {
      {"plain", {}}, {"topk", {"comm"}}, {"remat", {"remat"}}, {"dp", {"privacy"}}};
  for (const auto& [name, extra] : expected) report({name});
  HeadlessChromium browser(*dir_ / "chromium-profile");
  for (const auto& [name, extra] : expected) {
    const std::string url = "file://" + run(name) + "/report.html";
    const HeadlessChromium::Page page = browser.load(url);
    for (const char* id : {"summary", "loss", "throughput", "step-time", "memory", "audit", "model-card"})
      EXPECT_THAT(page.dom, HasSubstr("<section id=\"" + std::string(id) + "\">")) << name;
    for (const std::string& id : extra)
      EXPECT_THAT(page.dom, HasSubstr("<section id=\"" + id + "\">")) << name;
    EXPECT_THAT(page.dom, HasSubstr("<svg"));
    for (const std::string& request : page.requests) EXPECT_EQ(request, url) << name;
    ASSERT_GT(page.screenshot_png.size(), 1000u) << name;
    EXPECT_EQ(page.screenshot_png.substr(1, 3), "PNG");
    write_text(run(name) + "/report.png", page.screenshot_png);
    EXPECT_GT(fs::file_size(run(name) + "/report.png"), 0u);
  }
  // The check can fail: a page that asks for an image elsewhere shows the request.
  write_text(*dir_ / "control.html",
             "<!DOCTYPE html><html><body><img src=\"https://triad.invalid/x.png\"></body></html>");
  const HeadlessChromium::Page control = browser.load("file://" + *dir_ / "control.html");
  EXPECT_THAT(control.requests, ::testing::Contains("https://triad.invalid/x.png"));
}

}  // namespace
}  // namespace triad::testing
