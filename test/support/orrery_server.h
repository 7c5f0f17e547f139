// Test support: a real `orrery serve` on loopback with its own data directory and free ports.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "test/support/process.h"

namespace orrery::testing {

struct ServerPorts {
  uint16_t https = 0;
  uint16_t mqtts = 0;
  uint16_t mqtt = 0;
  uint16_t mqtt_ws = 0;
  uint16_t twins = 0;  // the digital twins API and its token endpoint
};

class OrreryServer {
 public:
  // Starts the server (extra flags and "K=V" environment entries optional) and waits until it
  // logs that it is ready. Check started() and output() on failure.
  explicit OrreryServer(std::string_view name, std::vector<std::string> extra_args = {},
                        std::vector<std::string> env = {});
  // The same on fixed ports (0 = a free one) and bind addresses, for clients that insist on
  // particular ports (the Azure SDKs' 443 and 8883).
  OrreryServer(std::string_view name, ServerPorts fixed, std::string bind,
               std::vector<std::string> extra_args = {}, std::vector<std::string> env = {});
  // Restarts on the same data directory and ports, after SIGTERM (or `signal`, e.g. SIGKILL
  // for crash-recovery tests).
  void Restart(int signal = 15);
  // Stops the server (SIGTERM or `signal`) and waits for it; Start() runs it again on the same
  // data directory and ports (tests that prepare state offline in between).
  void Stop(int signal = 15);
  void Start();
  // The "K=V" environment entries the next Start() uses (e.g. a setting for one test).
  void SetEnv(std::vector<std::string> env) { env_ = std::move(env); }
  const std::vector<std::string>& env() const { return env_; }

  bool started() const { return started_; }
  const std::filesystem::path& data_dir() const { return dir_.path(); }
  std::filesystem::path ca_file() const { return dir_.path() / "tls" / "ca.pem"; }
  const ServerPorts& ports() const { return ports_; }
  Process& process() { return *process_; }
  std::string Url(std::string_view path) const;       // on the HTTPS port
  std::string TwinsUrl(std::string_view path) const;  // on the twins port

 private:
  void StartOnFreePorts(const ServerPorts& fixed);

  TempDir dir_;
  ServerPorts ports_;
  std::string bind_ = "127.0.0.1";
  std::vector<std::string> args_, env_;
  std::unique_ptr<Process> process_;
  bool started_ = false;
};

}  // namespace orrery::testing
