#pragma once
// The tensor-parallel group as the model sees it: the sums and maxima over the ranks that hold the other
// slices of each layer (Megatron-LM's f and g operators). parallel/ implements it over MPI; the model stays
// free of communication code.

#include <cstddef>

namespace triad {

class TensorGroup {
 public:
  virtual ~TensorGroup() = default;
  // values[i] = Σ (or max) over the group's ranks of values[i], in place. `what` names the wait in errors.
  virtual void sum(float* values, size_t count, const char* what) = 0;
  virtual void max(float* values, size_t count, const char* what) = 0;
};

}  // namespace triad
