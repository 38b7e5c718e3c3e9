#pragma once
// Small summaries of measurements.

#include <algorithm>
#include <vector>

namespace triad {

// The middle value (the mean of the two middle ones for an even count): one disturbed measurement of
// three does not move it. Takes a copy to sort; 0 for none.
inline double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace triad
