#pragma once
// The parts of the run report that html_report.cc assembles: each section builder returns nothing when no
// run has its data, so an absent part leaves no empty box. Internal to src/triad/report/.

#include <optional>
#include <string>
#include <vector>

#include "triad/report/run_data.h"

namespace triad::report {

struct Section {
  std::string id, title, html;  // html: the section's body
};

// Curves and maps (report_plots.cc), in report order: loss, throughput, step-time, memory, remat, comm,
// privacy, fairness.
std::vector<Section> plot_sections(const std::vector<RunData>& runs);

// A run's name with its colour swatch, as legends and tables show it.
std::string run_tag(const std::vector<RunData>& runs, size_t i);
// Numbers as a person reads them: "5.413", "1.2e-05", "34816".
std::string format_value(double v);
// A <table> from a header row and body rows whose cells are HTML already.
std::string html_table(const std::vector<std::string>& header,
                       const std::vector<std::vector<std::string>>& rows);

}  // namespace triad::report
