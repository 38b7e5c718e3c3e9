#pragma once
// A search space: which `triad train` flags a search varies and over what, which it fixes, what it
// minimises and under which constraints. Read from TOML:
//
//   objectives = ["val_loss", "energy_j"]     # minimised; any numeric field of metrics.jsonl
//   reference = [8.0, 2000.0]                 # the hypervolume's reference point, one value per objective
//   constraints = ["peak_rss_mib <= 2000"]    # NAME <= NUMBER or NAME >= NUMBER (optional)
//
//   [fixed]                                   # flags every trial gets as they are
//   steps = 60
//   threads = 2
//
//   [search]                                  # flags a trial's decision vector sets
//   layers = { min = 1, max = 4 }             # an integer range (both bounds integers)
//   lr = { min = 1e-4, max = 1e-2, log = true }  # a real range, searched in log space with log = true
//   d-model = { choices = [64, 128, 256] }    # a list of values (numbers or strings)
//
// Every name under [fixed] and [search] must be a `triad train` flag, an integer flag gets an integer
// range; --out is the search's to set. Errors name the file, the line and the field.
//
// The decision vector pagmo sees puts the real dimensions first and the integer ones (integer ranges and
// choice indices) last, as its mixed-integer problems require.

#include <string>
#include <utility>
#include <vector>

namespace triad::search {

struct Dimension {
  enum class Kind { kReal, kInteger, kChoice };
  std::string flag;  // without "--"
  Kind kind = Kind::kReal;
  double min = 0, max = 0;           // kReal, kInteger: the range; kChoice: 0 and choices.size() - 1
  bool log = false;                  // kReal: searched as log(value)
  std::vector<std::string> choices;  // kChoice: each as the flag's text

  bool is_integer() const { return kind != Kind::kReal; }
  // The decision variable's bounds (log space for a log range).
  std::pair<double, double> bounds() const;
  // The flag's text for decision variable x.
  std::string value_text(double x) const;
};

struct Constraint {
  std::string metric;
  bool at_most = true;  // metric <= bound; false: metric >= bound
  double bound = 0;
  std::string text;  // as written

  // How far `value` is outside the bound (0 when satisfied).
  double violation(double value) const;
};

struct SearchSpace {
  std::vector<std::string> objectives;
  std::vector<double> reference;  // one per objective
  std::vector<Constraint> constraints;
  std::vector<std::pair<std::string, std::string>> fixed;  // flag -> text, by name
  std::vector<Dimension> dimensions;                       // real ones first, then integer ones

  int integer_dimensions() const;
  // The train flags of decision vector `x`: the fixed ones, then the searched ones ("--lr", "0.003", ...).
  std::vector<std::string> train_args(const std::vector<double>& x) const;

  static SearchSpace load(const std::string& path);
  static SearchSpace parse(const std::string& toml_text, const std::string& origin);
};

}  // namespace triad::search
