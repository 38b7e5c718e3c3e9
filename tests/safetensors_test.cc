// Reading safetensors files written by others (core/safetensors.h): the cases tests/fuzz/safetensors_fuzz
// found.
#include "triad/core/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "test_util.h"
#include "triad/core/error.h"

namespace triad {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

// A safetensors file with `header` as its JSON header (not padded) and `data` after it.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  uint64_t length = header.size();
  std::string bytes(8, '\0');
  std::memcpy(bytes.data(), &length, 8);
  return bytes + header + data;
}

std::string floats(std::initializer_list<float> values) {
  std::string out;
  for (float v : values) out.append(reinterpret_cast<const char*>(&v), sizeof v);
  return out;
}

// A header of 9 bytes puts the data at offset 17: the floats are read from an aligned copy (the map's
// address was misaligned for float, which UBSan reported on every read).
TEST(Safetensors, ReadsDataAfterAHeaderNotPaddedToFourBytes) {
  TempDir dir;
  for (std::string pad : {"", " ", "  ", "   "}) {
    const std::string header = R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})" + pad;
    testing::write_text(dir / "t.safetensors", safetensors_bytes(header, floats({1.5f, -2.0f, 3.25f})));
    SafetensorsFile file(dir / "t.safetensors");
    const SafeTensor& w = file.get("w", {3});
    EXPECT_EQ(reinterpret_cast<uintptr_t>(w.data) % alignof(float), 0u) << pad.size();
    EXPECT_EQ(w.data[0], 1.5f);
    EXPECT_EQ(w.data[1], -2.0f);
    EXPECT_EQ(w.data[2], 3.25f);
  }
}

// tests/fuzz/corpus/safetensors/misaligned_empty.safetensors: no data after a misaligned header (the
// aligned copy of nothing was a memcpy to a null pointer).
TEST(Safetensors, AMisalignedHeaderWithNoDataAfterIt) {
  TempDir dir;
  testing::write_text(dir / "t.safetensors", safetensors_bytes(R"({"__metadata__":{"a":"b"}} )", ""));
  SafetensorsFile file(dir / "t.safetensors");
  EXPECT_TRUE(file.tensors().empty());
  EXPECT_EQ(file.metadata().at("a"), "b");
}

// A negative dimension, or dimensions whose product wraps round to the data's size, were accepted.
TEST(Safetensors, AShapeThatDoesNotFitTheDataIsRefused) {
  TempDir dir;
  // Each shape with the data_offsets its wrapped product of floats matched.
  for (auto [shape, end] : {std::pair{"[-1,-1]", 4}, std::pair{"[4294967296,4294967296,1]", 0},
                            std::pair{"[4611686018427387905,4]", 16}}) {
    const std::string header = std::string(R"({"w":{"dtype":"F32","shape":)") + shape +
                               R"(,"data_offsets":[0,)" + std::to_string(end) + "]}}";
    testing::write_text(dir / "t.safetensors", safetensors_bytes(header, floats({1, 2, 3, 4})));
    try {
      SafetensorsFile file(dir / "t.safetensors");
      ADD_FAILURE() << shape << " was accepted, " << file.tensors().at(0).count() << " floats";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("t.safetensors: tensor w: shape")) << shape;
    }
  }
}

}  // namespace
}  // namespace triad
