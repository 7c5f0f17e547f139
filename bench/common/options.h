// bench/common: the command line and process set-up of the benchmarks that start a real
// `orrery serve` (service, dps).
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace orrery::bench {

struct Flag {
  std::string name;                               // "--devices"
  std::function<void(const std::string&)> apply;  // gets the value ("" for a switch)
  bool takes_value = true;                        // false: a switch such as --quick
};

// Applies argv's flags in order (a flag that takes a value takes the next argument, "" when
// there is none). An unknown argument prints `usage` to stderr and returns false.
bool ParseFlags(int argc, char** argv, const std::vector<Flag>& flags, const std::string& usage);

// The `orrery` binary of the same build tree as the benchmark at `argv0`.
std::string DefaultOrreryBinary(const char* argv0);

// Ignores SIGPIPE (a server that closes mid-write must not end the benchmark) and tells the
// test support which binary `testing::OrreryServer` runs.
void UseOrreryBinary(const std::string& path);

}  // namespace orrery::bench
