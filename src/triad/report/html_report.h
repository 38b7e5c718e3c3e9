#pragma once
// The run report (`triad report RUN [RUN_B ...]`, docs/report.md): one self-contained HTML document with
// a ten-second summary first, then one <section id="..."> per part of the run that has data — loss,
// throughput, step-time, memory, remat, comm, privacy, fairness, explanations, audit, model-card,
// warnings. A part no run has is left out entirely. Several runs overlay their curves, one colour each.
// Plots are inline SVG (svg_plot.h); the page loads nothing and runs no script.

#include <string>
#include <vector>

#include "triad/report/run_data.h"

namespace triad::report {

std::string render_report(const std::vector<RunData>& runs);

// Loads the runs, renders their report and writes it to `out` atomically (temporary file, fsync,
// rename). Warnings about the runs' files are logged (and listed in the report). Returns the report's
// size in bytes.
size_t write_report(const std::vector<std::string>& run_dirs, const std::string& out);

}  // namespace triad::report
