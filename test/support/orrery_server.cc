#include "test/support/orrery_server.h"

#include <csignal>
#include <cstdio>

namespace orrery::testing {

OrreryServer::OrreryServer(std::string_view name, std::vector<std::string> extra_args,
                           std::vector<std::string> env)
    : dir_(name), args_(std::move(extra_args)), env_(std::move(env)) {
  StartOnFreePorts(ServerPorts{});
}

OrreryServer::OrreryServer(std::string_view name, ServerPorts fixed, std::string bind,
                           std::vector<std::string> extra_args, std::vector<std::string> env)
    : dir_(name), bind_(std::move(bind)), args_(std::move(extra_args)), env_(std::move(env)) {
  StartOnFreePorts(fixed);
}

void OrreryServer::StartOnFreePorts(const ServerPorts& fixed) {
  // A free port can still be taken between FreePort() and the server's listen by another
  // test running in parallel; the first start then picks new ports rather than failing.
  for (int attempt = 0;; ++attempt) {
    auto pick = [](uint16_t p) { return p ? p : FreePort(); };
    ports_.https = pick(fixed.https);
    ports_.mqtts = pick(fixed.mqtts);
    ports_.mqtt = pick(fixed.mqtt);
    ports_.mqtt_ws = pick(fixed.mqtt_ws);
    ports_.twins = pick(fixed.twins);
    Start();
    if (started_ || attempt == 2) return;
    process_->Wait();
    if (process_->output().find("Address already in use") == std::string::npos) return;
    std::fprintf(stderr, "OrreryServer: a port was taken before the server listened; retrying\n");
  }
}

void OrreryServer::Start() {
  std::vector<std::string> argv = {OrreryBinary(),       "serve",  "--data-dir",
                                   dir_.path().string(), "--bind", bind_};
  auto port = [&](const char* flag, uint16_t p) {
    argv.push_back(flag);
    argv.push_back(std::to_string(p));
  };
  port("--https-port", ports_.https);
  port("--mqtts-port", ports_.mqtts);
  port("--mqtt-port", ports_.mqtt);
  port("--mqtt-ws-port", ports_.mqtt_ws);
  port("--twins-port", ports_.twins);
  for (auto& a : args_)
    argv.push_back(a);
  process_ = Process::Spawn(argv, env_);
  started_ = process_->WaitForOutput("orrery is ready");
}

void OrreryServer::Stop(int signal) {
  if (process_) {
    process_->Signal(signal);
    process_->Wait();
  }
  started_ = false;
}

void OrreryServer::Restart(int signal) {
  Stop(signal);
  Start();
}

std::string OrreryServer::Url(std::string_view path) const {
  return "https://localhost:" + std::to_string(ports_.https) + std::string(path);
}

std::string OrreryServer::TwinsUrl(std::string_view path) const {
  return "https://localhost:" + std::to_string(ports_.twins) + std::string(path);
}

}  // namespace orrery::testing
