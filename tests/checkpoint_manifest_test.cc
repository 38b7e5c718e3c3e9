// Reading a checkpoint's manifest.json (train/checkpoint.h): the cases tests/fuzz/checkpoint_manifest_fuzz
// found, on its seed manifest (which lists two small files by their SHA-256).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/train/checkpoint.h"

namespace triad {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

nlohmann::json seed_manifest() {
  return read_json_file(std::string(TRIAD_SOURCE_DIR) + "/tests/fuzz/corpus/checkpoint_manifest/valid.json");
}

std::string read_error(const TempDir& dir, const nlohmann::json& manifest) {
  testing::write_text(dir / "model.safetensors", "model\n");
  testing::write_text(dir / "optimizer.safetensors", "optimizer\n");
  testing::write_text(dir / "manifest.json", manifest.dump());
  try {
    read_checkpoint_manifest(dir.path());
    return "accepted";
  } catch (const Error& e) {
    return e.what();
  }
}

TEST(CheckpointManifest, TheSeedManifestReads) {
  TempDir dir;
  EXPECT_EQ(read_error(dir, seed_manifest()), "accepted");
}

// tests/fuzz/corpus/checkpoint_manifest/float_cursor.json: a cursor of 8.2e31 was converted to uint64_t
// unchecked (undefined behaviour, which UBSan reported); negative or fractional counts were taken too.
TEST(CheckpointManifest, CountsMustBeWholeNumbersInRange) {
  TempDir dir;
  struct Case {
    const char* pointer;
    nlohmann::json value;
    const char* says;
  };
  for (const Case& c : {Case{"/sampler/cursor", 8.2e31, "\"sampler.cursor\" must be a whole number"},
                        Case{"/sampler/epoch", -1, "\"sampler.epoch\" must be a whole number"},
                        Case{"/step", 40.5, "\"step\" must be a whole number from 0 to 2147483647"},
                        Case{"/step", 1e10, "\"step\" must be a whole number"},
                        Case{"/rng/2", 1.5, "\"rng\" must be a whole number"},
                        Case{"/rng", nlohmann::json::array({1, 2}), "\"rng\" must be an array of 4"}}) {
    nlohmann::json manifest = seed_manifest();
    manifest[nlohmann::json::json_pointer(c.pointer)] = c.value;
    EXPECT_THAT(read_error(dir, manifest), HasSubstr(c.says)) << c.pointer << " = " << c.value;
  }
}

}  // namespace
}  // namespace triad
