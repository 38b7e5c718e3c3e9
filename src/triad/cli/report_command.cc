// `triad report RUN [RUN_B ...]`: one self-contained HTML page of a run, or of several overlaid
// (docs/report.md).

#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "triad/cli/cli.h"
#include "triad/core/clock.h"
#include "triad/core/error.h"
#include "triad/core/format.h"
#include "triad/core/log.h"
#include "triad/report/html_report.h"

namespace triad::cli {

Runner add_report_command(CLI::App& root) {
  struct ReportFlags {
    std::vector<std::string> runs;
    std::string out;
  };
  auto f = std::make_shared<ReportFlags>();
  CLI::App* cmd = root.add_subcommand(
      "report", "One self-contained HTML page of a run: summary, curves, remat heatmap, audit status.");
  cmd->footer(
      "Give several runs to overlay their curves (one colour each). The page loads nothing from the "
      "network.\n"
      "Prints {\"report\": PATH, \"bytes\": N, \"seconds\": S}. See docs/report.md.");
  add_config_option(*cmd);
  cmd->add_option("RUN", f->runs, "Run directories (one, or several to compare)")->type_name("RUN...");
  cmd->add_option("--out", f->out,
                  "The HTML file to write (default: RUN/report.html; ./report.html for several runs)")
      ->type_name("FILE");
  return [f]() {
    if (f->runs.empty())
      fail_usage("give a run directory (or several to compare), e.g. 'triad report runs/bundled'");
    const std::string out = !f->out.empty() ? f->out
                            : f->runs.size() == 1
                                ? (std::filesystem::path(f->runs[0]) / "report.html").string()
                                : "report.html";
    const auto started = Clock::now();
    const size_t bytes = report::write_report(f->runs, out);
    const double seconds = seconds_since(started);
    log_info("report: {} ({}) in {:.2f}s", out, format_bytes(bytes), seconds);
    fmt::print("{}\n", nlohmann::json{{"report", out}, {"bytes", bytes}, {"seconds", seconds}}.dump());
    return 0;
  };
}

}  // namespace triad::cli
