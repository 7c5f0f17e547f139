// Test support: run real programs (the orrery binary, mosquitto, python clients) as child
// processes, wait on their output or exit with deadlines (poll on pipes and pidfds, never
// sleeps), and find free loopback ports.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace orrery::testing {

class Process {
 public:
  // Starts argv[0] (searched in PATH) with the parent's environment plus `env` ("K=V"), whose
  // entries replace the parent's of the same name.
  // stdout and stderr are captured together. Aborts the test binary if fork/exec fails.
  static std::unique_ptr<Process> Spawn(std::vector<std::string> argv,
                                        std::vector<std::string> env = {},
                                        const std::filesystem::path& cwd = {});
  ~Process();  // SIGKILLs the child if it still runs

  // Reads output until it contains `needle` (true), the child closes its output, or the
  // deadline passes (false).
  bool WaitForOutput(std::string_view needle,
                     std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Everything read so far (call Drain() first to collect what is pending).
  const std::string& output() const { return output_; }
  void Drain(std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

  void Signal(int sig);
  // Exit code, or 128 + signal number; nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  pid_t pid() const { return pid_; }

 private:
  Process() = default;
  bool ReadSome(std::chrono::milliseconds timeout);
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int pid_fd_ = -1;
  std::optional<int> exit_;
  std::string output_;
};

// A port that was free a moment ago on 127.0.0.1, chosen below the ephemeral range so that
// no outgoing connection takes it before the server under test listens. Thread-safe.
uint16_t FreePort();

// A fresh directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  explicit TempDir(std::string_view name);
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The orrery binary under test (from ORRERY_BINARY, set by CTest).
std::string OrreryBinary();

// Counts lines in `text` (an error message should be exactly one).
size_t LineCount(std::string_view text);

}  // namespace orrery::testing
