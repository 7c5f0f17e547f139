#include "apps/orrery/serve.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <csignal>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/asio/signal_set.hpp>

#include "api/ops.h"
#include "base/files.h"
#include "base/log.h"
#include "base/metrics.h"
#include "hub/policies.h"
#include "net/http_server.h"
#include "net/io_pool.h"
#include "net/tls.h"
#include "pki/pki.h"

#ifndef ORRERY_VERSION
#define ORRERY_VERSION "dev"
#endif

namespace orrery::app {
namespace {

// Holds an exclusive lock on <data-dir>/orrery.lock for the life of the process, so that two
// servers never share one data directory.
class DataDirLock {
 public:
  static Result<DataDirLock> Acquire(const std::filesystem::path& dir) {
    auto path = dir / "orrery.lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return Error(BaseErrc::kPermissionDenied,
                   fmt::format("cannot open {}: {}", path.string(), std::strerror(errno)));
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      char buf[32] = {};
      ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
      ::close(fd);
      std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
      while (!pid.empty() && (pid.back() == '\n'))
        pid.pop_back();
      return Error(
          BaseErrc::kAlreadyExists,
          fmt::format("data directory {} is in use by another orrery (pid {})", dir.string(), pid));
    }
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
      // The lock itself is what matters; the pid is only a hint for the message above.
    }
    DataDirLock l;
    l.fd_ = fd;
    return l;
  }
  DataDirLock(DataDirLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  ~DataDirLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  DataDirLock() = default;
  int fd_ = -1;
};

int Fail(const Error& e, int code = 1) {
  fmt::print(stderr, "orrery: {}\n", e.message());
  return code;
}

}  // namespace

int Serve(const config::Settings& s) {
  auto fmt_r = log::ParseFormat(s.String("log.format"));
  if (auto st = log::Init({.level = s.String("log.level"), .format = *fmt_r}); !st) {
    return Fail(st.error(), 2);
  }
  auto logger = log::Get("server");
  for (auto& name : s.unknown_env()) {
    logger->warn("ignoring environment variable {}: not a configuration key", name);
  }

  const std::filesystem::path data_dir = s.String("server.data_dir");
  const std::string host = s.String("server.host_name");
  if (auto st = files::EnsureDirectory(data_dir, std::filesystem::perms::owner_all); !st) {
    return Fail(st.error());
  }
  auto lock = DataDirLock::Acquire(data_dir);
  if (!lock) return Fail(lock.error());

  // TLS: the configured certificate, or the development CA's.
  std::filesystem::path cert = s.String("tls.cert"), key = s.String("tls.key");
  std::filesystem::path trust_hint;
  if (cert.empty() != key.empty()) {
    return Fail(Error(BaseErrc::kInvalidArgument, "tls.cert and tls.key must be set together"), 2);
  }
  if (cert.empty()) {
    auto dev = pki::EnsureDevelopmentCerts(data_dir, host);
    if (!dev) return Fail(dev.error());
    if (dev->created_ca)
      logger->info("created a development CA at {}", dev->paths.ca_cert.string());
    if (dev->issued_server) logger->info("issued a server certificate for {}", host);
    cert = dev->paths.server_cert;
    key = dev->paths.server_key;
    trust_hint = dev->paths.ca_cert;
  }
  auto tls = net::TlsServerContext::Create({.cert_chain = cert, .key = key});
  if (!tls) return Fail(tls.error(), 2);

  auto policies = hub::PolicyStore::Open(data_dir);
  if (!policies) return Fail(policies.error());

  metrics::Registry registry;
  api::AddProcessCollector(registry, ORRERY_VERSION);
  api::Readiness readiness;

  size_t threads = static_cast<size_t>(s.Int("server.threads"));
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  net::IoPool pool(threads);

  auto router = std::make_shared<net::Router>();
  api::RegisterOpsRoutes(*router, registry, readiness);

  const auto& bind = s.List("server.bind");
  std::unique_ptr<net::HttpServer> https;
  if (int port = static_cast<int>(s.Int("https.port")); port != 0) {
    auto server = net::HttpServer::Start(
        pool,
        {.name = "https",
         .addresses = bind,
         .port = static_cast<uint16_t>(port),
         .tls = *tls,
         .max_connections = static_cast<size_t>(s.Int("https.max_connections")),
         .max_header_bytes = static_cast<size_t>(s.Bytes("https.max_header")),
         .max_body_bytes = static_cast<size_t>(s.Bytes("https.max_body")),
         .request_timeout = std::chrono::milliseconds(s.DurationMs("https.request_timeout")),
         .idle_timeout = std::chrono::milliseconds(s.DurationMs("https.idle_timeout")),
         .metrics = &registry},
        router);
    if (!server) return Fail(server.error());
    https = std::move(*server);
    logger->info("https listening on {} port {} (service REST, device HTTPS, /metrics)",
                 fmt::join(bind, ", "), https->port());
  }

  boost::asio::signal_set signals(pool.Get(0), SIGINT, SIGTERM, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
          if (auto st = (*tls)->Reload(); st) {
            logger->info("SIGHUP: reloaded the TLS certificate and key");
          } else {
            logger->error("SIGHUP: kept the old TLS certificate: {}", st.error().message());
          }
          signals.async_wait(on_signal);
          return;
        }
        logger->info("{}: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
        readiness.stopping = true;
        if (https) https->Stop();
        pool.Stop();
      };
  signals.async_wait(on_signal);

  logger->info("Orrery {} serving hub '{}' from {} with {} I/O threads", ORRERY_VERSION, host,
               std::filesystem::absolute(data_dir).string(), threads);
  if (!trust_hint.empty()) {
    logger->info("clients trust the development CA at {}", trust_hint.string());
  }
  readiness.ready = true;
  logger->info("orrery is ready");
  pool.Run();
  logger->info("stopped");
  return 0;
}

}  // namespace orrery::app
