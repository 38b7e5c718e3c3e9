#pragma once
// Plots as inline SVG text for the run report (html_report.h): line plots, a stacked area and a heatmap.
// Nothing is fetched or scripted; each function returns one <svg> element sized in CSS pixels. Text in
// labels is escaped here.

#include <cstddef>
#include <string>
#include <vector>

namespace triad::report {

// Distinct colours for runs (Tableau 10): run i draws in run_colour(i).
const char* run_colour(size_t i);

// Keeps at most `max_points` of the points (x ascending): the first and last, and in each of
// max_points / 2 equal runs of points their lowest and highest, in order, so spikes survive.
void downsample(std::vector<double>* x, std::vector<double>* y, size_t max_points);

struct Series {
  std::string label;  // legend text
  std::vector<double> x, y;
  std::string colour = "#1f77b4";
  bool dashed = false;
  bool dots = false;  // a marker at each point (evaluations: few points)
};

struct LinePlot {
  std::string x_label = "step", y_label;
  std::vector<Series> series;  // downsampled to 1000 points each by svg_line_plot
  bool y_from_zero = false;    // the y axis starts at 0 (throughput, bytes) rather than at the lowest value
};
std::string svg_line_plot(const LinePlot& plot);

// Layers drawn on top of each other over one x (the step time split): layer i is filled from the sum of
// layers < i to the sum of layers ≤ i.
struct StackedPlot {
  std::string x_label = "step", y_label;
  std::vector<double> x;
  struct Layer {
    std::string label, colour;
    std::vector<double> y;  // one per x, ≥ 0
  };
  std::vector<Layer> layers;
};
// Averages the layers over at most `max_columns` equal runs of x before drawing.
std::string svg_stacked_area(const StackedPlot& plot, size_t max_columns = 400);

// Rows × columns of shares in [0, 1] (the remat heatmap: a unit's share of a column's steps recomputed),
// drawn from `low_colour` (0) to `high_colour` (1).
struct Heatmap {
  std::vector<std::string> row_labels;
  std::vector<bool> row_starts_group;     // a line above the row (a new block); empty: none
  std::vector<double> column_x;           // each column's first x, for the axis ticks
  double x_end = 0;                       // the last x the final column covers
  std::vector<std::vector<float>> cells;  // [row][column]
  std::string x_label = "step", low_label = "kept", high_label = "recomputed";
  std::string low_colour = "#e8eef7", high_colour = "#c0392b";
};
std::string svg_heatmap(const Heatmap& map);

// Text for SVG or HTML: & < > " ' escaped.
std::string escape_xml(const std::string& text);

}  // namespace triad::report
