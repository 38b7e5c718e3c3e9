// Checkpoint manifests (train/checkpoint.h, read_checkpoint_manifest): the input as a checkpoint
// directory's manifest.json, beside two small files the seeds list with their SHA-256.
#include "fuzz_util.h"
#include "triad/core/file_io.h"
#include "triad/train/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    std::string d = triad::fuzz::scratch_dir() + "/step_000004";
    triad::make_dirs(d);
    triad::fuzz::write_bytes(d + "/model.safetensors", "model\n");
    triad::fuzz::write_bytes(d + "/optimizer.safetensors", "optimizer\n");
    return d;
  }();
  triad::fuzz::write_bytes(dir + "/manifest.json", triad::fuzz::as_text(data, size));
  triad::fuzz::expect_clean([&] {
    triad::CheckpointManifest manifest = triad::read_checkpoint_manifest(dir);
    (void)manifest.json.dump();
  });
  return 0;
}
