#include "triad/core/safetensors.h"

#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>

#include "triad/core/error.h"

namespace triad {

namespace {
std::string shape_text(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}
}  // namespace

size_t SafeTensor::count() const {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

void write_safetensors(const std::string& path, const std::vector<SafeTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const auto& t : tensors) {
    if (!t.u8 && offset % sizeof(float) != 0) fail("{}: F32 tensor {} after U8 ones", path, t.name);
    const size_t bytes = t.bytes();
    header[t.name] = {
        {"dtype", t.u8 ? "U8" : "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  uint64_t length = text.size();
  AtomicFile file(path);
  file.write(&length, sizeof length);
  file.write(text);
  for (const auto& t : tensors) {
    if (t.u8) {
      file.write(t.u8, t.bytes());
    } else {
      file.write(t.data, t.bytes());
    }
  }
  file.commit();
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  uint64_t length = 0;
  if (file_.size() < 8) fail("{}: not a safetensors file (too short)", path);
  std::memcpy(&length, file_.data(), 8);
  if (length > file_.size() - 8)
    fail("{}: not a safetensors file (header length {} exceeds the file)", path, length);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(reinterpret_cast<const char*>(file_.data()) + 8,
                                   reinterpret_cast<const char*>(file_.data()) + 8 + length);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: bad safetensors header: {}", path, e.what());
  }
  const uint8_t* data = file_.data() + 8 + length;
  const size_t data_size = file_.size() - 8 - length;
  if (data_size > 0 && reinterpret_cast<uintptr_t>(data) % alignof(float) != 0) {
    // A header not padded to a multiple of 4 bytes (triad pads to 8; other writers need not): the floats
    // are read from an aligned copy, not through misaligned pointers into the map.
    aligned_copy_.resize((data_size + sizeof(float) - 1) / sizeof(float));
    std::memcpy(aligned_copy_.data(), data, data_size);
    data = reinterpret_cast<const uint8_t*>(aligned_copy_.data());
  }
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      for (const auto& [k, v] : entry.items()) metadata_[k] = v.is_string() ? v.get<std::string>() : v.dump();
      continue;
    }
    try {
      const bool u8 = entry.at("dtype") == "U8";
      if (entry.at("dtype") != "F32" && !u8)
        fail("{}: tensor {} has dtype {}, triad reads F32 and U8", path, name, entry.at("dtype").dump());
      const size_t element = u8 ? sizeof(uint8_t) : sizeof(float);
      SafeTensor t;
      t.name = name;
      t.shape = entry.at("shape").get<std::vector<int64_t>>();
      // Each dimension non-negative and their product (checked as it grows, so it cannot wrap round to
      // a small count) within the data.
      size_t count = 1;
      for (int64_t d : t.shape) {
        if (d < 0 || (d > 0 && count > data_size / element / static_cast<size_t>(d))) {
          fail("{}: tensor {}: shape {} does not fit in the file's {} bytes of data", path, name,
               shape_text(t.shape), data_size);
        }
        count *= static_cast<size_t>(d);
      }
      auto offsets = entry.at("data_offsets").get<std::vector<size_t>>();
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size ||
          offsets[1] - offsets[0] != count * element || offsets[0] % element != 0) {
        fail("{}: tensor {}: data_offsets do not match its shape {} or the file", path, name,
             shape_text(t.shape));
      }
      if (u8) {
        t.u8 = data + offsets[0];
      } else {
        t.data = reinterpret_cast<const float*>(data + offsets[0]);
      }
      tensors_.push_back(std::move(t));
    } catch (const nlohmann::json::exception& e) {
      fail("{}: tensor {}: {}", path, name, e.what());
    }
  }
}

const SafeTensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const SafeTensor& SafetensorsFile::get(const std::string& name, const std::vector<int64_t>& shape) const {
  const SafeTensor* t = find(name);
  if (!t) fail("{}: no tensor {}", file_.path(), name);
  if (t->u8) fail("{}: tensor {} has dtype U8, F32 expected", file_.path(), name);
  if (t->shape != shape) {
    fail("{}: tensor {} has shape {}, the model needs {} (a checkpoint of another architecture?)",
         file_.path(), name, shape_text(t->shape), shape_text(shape));
  }
  return *t;
}

const SafeTensor& SafetensorsFile::get_u8(const std::string& name, const std::vector<int64_t>& shape) const {
  const SafeTensor* t = find(name);
  if (!t) fail("{}: no tensor {}", file_.path(), name);
  if (!t->u8) fail("{}: tensor {} has dtype F32, U8 expected", file_.path(), name);
  if (t->shape != shape) {
    fail("{}: tensor {} has shape {}, the model needs {}", file_.path(), name, shape_text(t->shape),
         shape_text(shape));
  }
  return *t;
}

}  // namespace triad
