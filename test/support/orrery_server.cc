#include "test/support/orrery_server.h"

#include <csignal>

namespace orrery::testing {

OrreryServer::OrreryServer(std::string_view name, std::vector<std::string> extra_args,
                           std::vector<std::string> env)
    : dir_(name), args_(std::move(extra_args)), env_(std::move(env)) {
  ports_.https = FreePort();
  ports_.mqtts = FreePort();
  ports_.mqtt = FreePort();
  Start();
}

void OrreryServer::Start() {
  std::vector<std::string> argv = {
      OrreryBinary(), "serve",     "--data-dir",   dir_.path().string(),
      "--bind",       "127.0.0.1", "--https-port", std::to_string(ports_.https)};
  for (auto& a : args_)
    argv.push_back(a);
  process_ = Process::Spawn(argv, env_);
  started_ = process_->WaitForOutput("orrery is ready");
}

void OrreryServer::Restart() {
  if (process_) {
    process_->Signal(SIGTERM);
    process_->Wait();
  }
  Start();
}

std::string OrreryServer::Url(std::string_view path) const {
  return "https://localhost:" + std::to_string(ports_.https) + std::string(path);
}

}  // namespace orrery::testing
