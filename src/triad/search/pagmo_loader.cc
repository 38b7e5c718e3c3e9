#include <dlfcn.h>

#include <filesystem>
#include <string>

#include "triad/core/error.h"
#include "triad/search/pagmo_module.h"

namespace triad::search {

namespace {

const PagmoModule* load_pagmo_module() {
  namespace fs = std::filesystem;
  const fs::path binary_dir = fs::read_symlink("/proc/self/exe").parent_path();
  // Beside the binary in a build directory; in lib/triad beside bin/ when installed.
  const fs::path candidates[] = {binary_dir / kPagmoModuleFile,
                                 binary_dir.parent_path() / "lib" / "triad" / kPagmoModuleFile};
  std::string tried;
  for (const fs::path& path : candidates) {
    void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      tried += fmt::format("\n  {}: {}", path.string(), dlerror());
      continue;
    }
    auto entry = reinterpret_cast<const PagmoModule* (*)()>(dlsym(library, kPagmoModuleEntry));
    if (entry == nullptr) fail("{} has no {}: not a triad pagmo module", path.string(), kPagmoModuleEntry);
    return entry();  // kept loaded for the life of the process
  }
  fail(
      "NSGA-II and the hypervolume need {}, built beside the triad binary with pagmo (libpagmo-dev); not "
      "found:{}",
      kPagmoModuleFile, tried);
}

}  // namespace

const PagmoModule& pagmo_module() {
  static const PagmoModule* module = load_pagmo_module();
  return *module;
}

}  // namespace triad::search
