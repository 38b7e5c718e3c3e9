#pragma once
// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length, a JSON header
// {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}, then the
// raw little-endian tensor bytes. PyTorch users load our checkpoints with safetensors.torch.load_file.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "triad/core/file_io.h"

namespace triad {

struct SafeTensor {
  std::string name;
  std::vector<int64_t> shape;
  const float* data = nullptr;  // F32: weights and fp32 optimizer state
  const uint8_t* u8 = nullptr;  // U8 instead (the codes of 8-bit optimizer state, model/quantized_state.h)
  size_t count() const;
  size_t bytes() const { return count() * (u8 ? sizeof(uint8_t) : sizeof(float)); }
};

// Writes F32 and U8 tensors (in the given order: the F32 ones first, so that each starts 4-byte aligned)
// and string metadata, atomically.
void write_safetensors(const std::string& path, const std::vector<SafeTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

class SafetensorsFile {
 public:
  // Maps the file and validates the header: offsets inside the file, sizes matching shapes, F32 or U8
  // dtype. Any problem is an error naming the file (and tensor).
  explicit SafetensorsFile(const std::string& path);
  const SafeTensor* find(const std::string& name) const;
  // The F32 tensor `name` with exactly `shape`, or an error naming the file, the tensor and both shapes
  // (or the dtype).
  const SafeTensor& get(const std::string& name, const std::vector<int64_t>& shape) const;
  // The same for a U8 tensor.
  const SafeTensor& get_u8(const std::string& name, const std::vector<int64_t>& shape) const;
  const std::vector<SafeTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  MappedFile file_;
  std::vector<float> aligned_copy_;  // the data, when the map's is not aligned for float
  std::vector<SafeTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace triad
