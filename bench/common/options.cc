#include "bench/common/options.h"

#include <signal.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

namespace orrery::bench {

bool ParseFlags(int argc, char** argv, const std::vector<Flag>& flags, const std::string& usage) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const Flag* flag = nullptr;
    for (auto& f : flags) {
      if (f.name == a) flag = &f;
    }
    if (!flag) {
      fmt::print(stderr, "{}\n", usage);
      return false;
    }
    std::string value;
    if (flag->takes_value && i + 1 < argc) value = argv[++i];
    flag->apply(value);
  }
  return true;
}

std::string DefaultOrreryBinary(const char* argv0) {
  return (std::filesystem::path(argv0).parent_path() / "../../apps/orrery/orrery").string();
}

void UseOrreryBinary(const std::string& path) {
  ::signal(SIGPIPE, SIG_IGN);
  ::setenv("ORRERY_BINARY", path.c_str(), 1);
}

}  // namespace orrery::bench
