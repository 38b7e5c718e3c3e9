#include "triad/report/svg_plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>
#include <limits>

namespace triad::report {

namespace {

constexpr double kWidth = 860;
constexpr double kPlotHeight = 260;
constexpr double kLeft = 72, kRight = 16, kTop = 12, kBottom = 40;
constexpr double kLegendRow = 18;
constexpr size_t kMaxLinePoints = 1000;

bool finite(double v) {
  return std::isfinite(v);
}

std::string num(double v) {
  return fmt::format("{:.1f}", v);
}

// A tick label: integers as integers (steps), the rest in four significant digits.
std::string plain_number(double v) {
  if (v == std::round(v) && std::fabs(v) < 1e7) return fmt::format("{:.0f}", v);
  return fmt::format("{:.4g}", v);
}

struct Range {
  double lo = 0, hi = 1;
};

// Tick positions at 1, 2 or 5 × 10^k covering [lo, hi] with about `target` ticks; widens `range` to them.
std::vector<double> nice_ticks(Range* range, int target = 5) {
  if (!(range->hi > range->lo)) {
    double pad = range->lo == 0 ? 1 : std::fabs(range->lo) * 0.1;
    range->lo -= pad;
    range->hi += pad;
  }
  const double raw = (range->hi - range->lo) / target;
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * magnitude;
    if (step >= raw) break;
  }
  range->lo = std::floor(range->lo / step + 1e-9) * step;
  range->hi = std::ceil(range->hi / step - 1e-9) * step;
  std::vector<double> ticks;
  for (double t = range->lo; t <= range->hi + step * 1e-6; t += step)
    ticks.push_back(std::fabs(t) < step * 1e-9 ? 0 : t);
  return ticks;
}

Range data_range(const std::vector<const std::vector<double>*>& values) {
  Range r{std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()};
  for (const auto* v : values) {
    for (double x : *v) {
      if (!finite(x)) continue;
      r.lo = std::min(r.lo, x);
      r.hi = std::max(r.hi, x);
    }
  }
  if (!finite(r.lo)) return Range{0, 1};
  return r;
}

struct Frame {
  double width = kWidth, height = kPlotHeight;
  Range x, y;
  double px(double v) const { return kLeft + (v - x.lo) / (x.hi - x.lo) * (width - kLeft - kRight); }
  double py(double v) const { return kTop + (1 - (v - y.lo) / (y.hi - y.lo)) * (height - kTop - kBottom); }
};

// Grid lines, tick labels and the axis titles.
void axes(std::string& svg, const Frame& f, const std::vector<double>& x_ticks,
          const std::vector<double>& y_ticks, const std::string& x_label, const std::string& y_label) {
  const double bottom = f.height - kBottom;
  for (double t : y_ticks) {
    const double y = f.py(t);
    svg += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#e4e4e4"/>)", num(kLeft), num(y),
                       num(f.width - kRight), num(y));
    svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="end" font-size="11" fill="#555">{}</text>)",
                       num(kLeft - 6), num(y + 4), escape_xml(plain_number(t)));
  }
  for (double t : x_ticks) {
    const double x = f.px(t);
    svg += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#f0f0f0"/>)", num(x), num(kTop),
                       num(x), num(bottom));
    svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle" font-size="11" fill="#555">{}</text>)",
                       num(x), num(bottom + 15), escape_xml(plain_number(t)));
  }
  svg += fmt::format(R"(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#999"/>)", num(kLeft),
                     num(kTop), num(f.width - kLeft - kRight), num(bottom - kTop));
  svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle" font-size="12" fill="#333">{}</text>)",
                     num((kLeft + f.width - kRight) / 2), num(bottom + 32), escape_xml(x_label));
  svg += fmt::format(
      R"svg(<text transform="translate(14,{}) rotate(-90)" text-anchor="middle" font-size="12" fill="#333">{}</text>)svg",
      num((kTop + bottom) / 2), escape_xml(y_label));
}

struct LegendItem {
  std::string label, colour;
  bool dashed = false, filled = false;
};

// Legend rows under the plot from y = `top`; returns the height used.
double legend(std::string& svg, const std::vector<LegendItem>& items, double top) {
  double x = kLeft, y = top + 12;
  for (const LegendItem& item : items) {
    const double w = 34 + 6.6 * item.label.size();
    if (x + w > kWidth - kRight && x > kLeft) {
      x = kLeft;
      y += kLegendRow;
    }
    if (item.filled) {
      svg += fmt::format(R"(<rect x="{}" y="{}" width="20" height="10" fill="{}"/>)", num(x), num(y - 9),
                         item.colour);
    } else {
      svg += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2"{}/>)", num(x),
                         num(y - 4), num(x + 20), num(y - 4), item.colour,
                         item.dashed ? R"( stroke-dasharray="5,3")" : "");
    }
    svg += fmt::format(R"(<text x="{}" y="{}" font-size="11" fill="#333">{}</text>)", num(x + 26), num(y),
                       escape_xml(item.label));
    x += w;
  }
  return items.empty() ? 0 : y - top + 8;
}

double legend_height(const std::vector<LegendItem>& items) {
  std::string ignored;
  return legend(ignored, items, 0);
}

std::string open_svg(double height, const std::string& title) {
  return fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" role="img" )"
      R"(font-family="sans-serif"><title>{}</title>)",
      num(kWidth), num(height), num(kWidth), num(height), escape_xml(title));
}

std::array<int, 3> rgb(const std::string& hex) {
  std::array<int, 3> c{0, 0, 0};
  if (hex.size() == 7 && hex[0] == '#') {
    for (int i = 0; i < 3; ++i) c[i] = std::stoi(hex.substr(1 + 2 * i, 2), nullptr, 16);
  }
  return c;
}

std::string mix(const std::array<int, 3>& a, const std::array<int, 3>& b, double t) {
  auto channel = [&](int i) { return static_cast<int>(std::lround(a[i] + (b[i] - a[i]) * t)); };
  return fmt::format("#{:02x}{:02x}{:02x}", channel(0), channel(1), channel(2));
}

}  // namespace

const char* run_colour(size_t i) {
  static const char* kColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return kColours[i % std::size(kColours)];
}

std::string escape_xml(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

void downsample(std::vector<double>* x, std::vector<double>* y, size_t max_points) {
  const size_t n = x->size();
  if (n <= max_points || max_points < 4) return;
  const size_t buckets = (max_points - 2) / 2;
  std::vector<double> out_x{x->front()}, out_y{y->front()};
  for (size_t b = 0; b < buckets; ++b) {
    const size_t begin = 1 + b * (n - 2) / buckets, end = 1 + (b + 1) * (n - 2) / buckets;
    if (begin >= end) continue;
    size_t lo = begin, hi = begin;
    for (size_t i = begin; i < end; ++i) {
      if ((*y)[i] < (*y)[lo] || !finite((*y)[lo])) lo = i;
      if ((*y)[i] > (*y)[hi] || !finite((*y)[hi])) hi = i;
    }
    const size_t first = std::min(lo, hi), second = std::max(lo, hi);
    out_x.push_back((*x)[first]);
    out_y.push_back((*y)[first]);
    if (second != first) {
      out_x.push_back((*x)[second]);
      out_y.push_back((*y)[second]);
    }
  }
  out_x.push_back(x->back());
  out_y.push_back(y->back());
  *x = std::move(out_x);
  *y = std::move(out_y);
}

std::string svg_line_plot(const LinePlot& plot) {
  std::vector<Series> series = plot.series;
  for (Series& s : series) downsample(&s.x, &s.y, kMaxLinePoints);
  std::vector<const std::vector<double>*> xs, ys;
  for (const Series& s : series) {
    xs.push_back(&s.x);
    ys.push_back(&s.y);
  }
  Frame f;
  f.x = data_range(xs);
  f.y = data_range(ys);
  if (plot.y_from_zero) f.y.lo = std::min(0.0, f.y.lo);
  const std::vector<double> x_ticks = nice_ticks(&f.x, 8), y_ticks = nice_ticks(&f.y, 5);
  std::vector<LegendItem> items;
  for (const Series& s : series) items.push_back({s.label, s.colour, s.dashed});
  const double height = kPlotHeight + legend_height(items);
  std::string svg = open_svg(height, plot.y_label);
  axes(svg, f, x_ticks, y_ticks, plot.x_label, plot.y_label);
  for (const Series& s : series) {
    std::string path;
    bool pen_down = false;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!finite(s.x[i]) || !finite(s.y[i])) {
        pen_down = false;  // a gap where a value is missing or not finite
        continue;
      }
      path += fmt::format("{}{} {} ", pen_down ? 'L' : 'M', num(f.px(s.x[i])), num(f.py(s.y[i])));
      pen_down = true;
    }
    if (!path.empty())
      svg += fmt::format(R"(<path d="{}" fill="none" stroke="{}" stroke-width="1.6"{}/>)", path, s.colour,
                         s.dashed ? R"( stroke-dasharray="5,3")" : "");
    if (s.dots || s.x.size() == 1) {
      for (size_t i = 0; i < s.x.size(); ++i) {
        if (finite(s.x[i]) && finite(s.y[i]))
          svg += fmt::format(R"(<circle cx="{}" cy="{}" r="3" fill="{}"/>)", num(f.px(s.x[i])),
                             num(f.py(s.y[i])), s.colour);
      }
    }
  }
  legend(svg, items, kPlotHeight);
  return svg + "</svg>";
}

std::string svg_stacked_area(const StackedPlot& plot, size_t max_columns) {
  // Averages over equal runs of points, so that a long run draws max_columns columns.
  const size_t n = plot.x.size(), columns = std::min(n, std::max<size_t>(max_columns, 1));
  std::vector<double> x(columns, 0);
  std::vector<std::vector<double>> layers(plot.layers.size(), std::vector<double>(columns, 0));
  for (size_t c = 0; c < columns; ++c) {
    const size_t begin = c * n / columns, end = (c + 1) * n / columns;
    for (size_t i = begin; i < end; ++i) {
      x[c] += plot.x[i] / (end - begin);
      for (size_t l = 0; l < layers.size(); ++l) {
        const double v = plot.layers[l].y[i];
        layers[l][c] += (finite(v) ? std::max(v, 0.0) : 0) / (end - begin);
      }
    }
  }
  std::vector<std::vector<double>> tops = layers;
  for (size_t l = 1; l < tops.size(); ++l) {
    for (size_t c = 0; c < columns; ++c) tops[l][c] += tops[l - 1][c];
  }
  Frame f;
  f.x = data_range({&x});
  f.y = tops.empty() ? Range{0, 1} : data_range({&tops.back()});
  f.y.lo = 0;
  const std::vector<double> x_ticks = nice_ticks(&f.x, 8), y_ticks = nice_ticks(&f.y, 5);
  std::vector<LegendItem> items;
  for (const auto& layer : plot.layers) items.push_back({layer.label, layer.colour, false, true});
  const double height = kPlotHeight + legend_height(items);
  std::string svg = open_svg(height, plot.y_label);
  axes(svg, f, x_ticks, y_ticks, plot.x_label, plot.y_label);
  for (size_t l = 0; l < tops.size(); ++l) {
    std::string points;
    for (size_t c = 0; c < columns; ++c)
      points += fmt::format("{},{} ", num(f.px(x[c])), num(f.py(tops[l][c])));
    for (size_t c = columns; c-- > 0;)
      points += fmt::format("{},{} ", num(f.px(x[c])), num(f.py(l == 0 ? 0 : tops[l - 1][c])));
    svg += fmt::format(R"(<polygon points="{}" fill="{}" fill-opacity="0.85" stroke="none"/>)", points,
                       plot.layers[l].colour);
  }
  legend(svg, items, kPlotHeight);
  return svg + "</svg>";
}

std::string svg_heatmap(const Heatmap& map) {
  const size_t rows = map.cells.size(), columns = rows ? map.cells[0].size() : 0;
  constexpr double kLabels = 110;
  const double row_height = std::clamp(560.0 / std::max<size_t>(rows, 1), 2.0, 12.0);
  const double plot_height = row_height * rows;
  const double plot_width = kWidth - kLabels - kRight;
  const double column_width = plot_width / std::max<size_t>(columns, 1);
  const double height = kTop + plot_height + 44 + kLegendRow;
  std::string svg = open_svg(height, "rematerialization decisions over steps");
  const auto low = rgb(map.low_colour), high = rgb(map.high_colour);
  const bool every_label = row_height >= 8;
  for (size_t r = 0; r < rows; ++r) {
    const double y = kTop + r * row_height;
    const bool group = r < map.row_starts_group.size() && map.row_starts_group[r];
    if (every_label || group || r == 0)
      svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="end" font-size="{}" fill="#555">{}</text>)",
                         num(kLabels - 6), num(y + std::min(row_height, 10.0) - 1),
                         num(std::min(row_height, 10.0)), escape_xml(map.row_labels[r]));
    // One rectangle per run of equal cells: a unit whose decision never changes is one element.
    for (size_t c = 0; c < columns;) {
      size_t end = c + 1;
      while (end < columns && map.cells[r][end] == map.cells[r][c]) ++end;
      svg += fmt::format(R"(<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>)",
                         num(kLabels + c * column_width), num(y), num((end - c) * column_width + 0.3),
                         num(row_height), mix(low, high, std::clamp<double>(map.cells[r][c], 0, 1)));
      c = end;
    }
    if (group && r > 0)
      svg += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#fff" stroke-width="1"/>)",
                         num(kLabels), num(y), num(kLabels + plot_width), num(y));
  }
  // Step ticks: about eight, at column boundaries.
  const double bottom = kTop + plot_height;
  const size_t every = std::max<size_t>(1, columns / 8);
  for (size_t c = 0; c < columns; c += every) {
    const double x = kLabels + c * column_width;
    if (c > 0 && kLabels + plot_width - x < 40) break;  // leave room for the last step's label
    svg += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999"/>)", num(x), num(bottom),
                       num(x), num(bottom + 4));
    svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle" font-size="11" fill="#555">{}</text>)",
                       num(x), num(bottom + 16), escape_xml(plain_number(map.column_x[c])));
  }
  svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="end" font-size="11" fill="#555">{}</text>)",
                     num(kLabels + plot_width), num(bottom + 16), escape_xml(plain_number(map.x_end)));
  svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle" font-size="12" fill="#333">{}</text>)",
                     num(kLabels + plot_width / 2), num(bottom + 32), escape_xml(map.x_label));
  legend(svg, {{map.low_label, map.low_colour, false, true}, {map.high_label, map.high_colour, false, true}},
         bottom + 38);
  return svg + "</svg>";
}

}  // namespace triad::report
