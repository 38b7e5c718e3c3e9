// The safetensors reader (core/safetensors.h): the input as a .safetensors file; every tensor it accepts is
// read whole, so an offset or shape it failed to check shows as an out-of-bounds read.
#include "fuzz_util.h"
#include "triad/core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = triad::fuzz::scratch_dir() + "/input.safetensors";
  triad::fuzz::write_bytes(path, triad::fuzz::as_text(data, size));
  triad::fuzz::expect_clean([&] {
    triad::SafetensorsFile file(path);
    volatile float sum = 0;
    for (const triad::SafeTensor& t : file.tensors()) {
      for (size_t i = 0; i < t.count(); ++i) sum = sum + (t.u8 ? t.u8[i] : t.data[i]);
      if (t.u8) {
        file.get_u8(t.name, t.shape);
      } else {
        file.get(t.name, t.shape);
      }
      if (file.find(t.name) == nullptr) __builtin_trap();
    }
    for (const auto& [key, value] : file.metadata())
      sum = sum + static_cast<float>(key.size() + value.size());
    file.get("wte", {2, 3});  // usually absent or another shape: a clean error
  });
  return 0;
}
