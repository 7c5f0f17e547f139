// net-internal: a TCP listener on one port and one or more addresses that hands each accepted
// socket to a pool context, enforcing a connection limit. Used by StreamServer and HttpServer.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "base/error.h"
#include "base/metrics.h"
#include "net/io_pool.h"

namespace orrery::net {

// Counts one open connection; releases its slot when destroyed.
class ConnectionToken {
 public:
  ConnectionToken() = default;
  ConnectionToken(std::shared_ptr<std::atomic<int64_t>> count, metrics::Gauge* gauge)
      : count_(std::move(count)), gauge_(gauge) {}
  ConnectionToken(ConnectionToken&&) noexcept = default;
  ConnectionToken& operator=(ConnectionToken&& o) noexcept {
    Release();
    count_ = std::move(o.count_);
    gauge_ = o.gauge_;
    return *this;
  }
  ~ConnectionToken() { Release(); }

 private:
  void Release() {
    if (count_) {
      count_->fetch_sub(1, std::memory_order_relaxed);
      if (gauge_) gauge_->Add(-1);
      count_.reset();
    }
  }
  std::shared_ptr<std::atomic<int64_t>> count_;
  metrics::Gauge* gauge_ = nullptr;
};

struct ListenerOptions {
  std::string name;                    // "mqtts", "https": used in errors, logs, metrics
  std::vector<std::string> addresses;  // IP literals or "localhost" (127.0.0.1 and ::1)
  uint16_t port = 0;                   // 0 = any free port (tests)
  size_t max_connections = 100000;
  metrics::Registry* metrics = nullptr;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  // Called on the connection's pool context.
  using OnAccept = std::function<void(boost::asio::ip::tcp::socket, ConnectionToken)>;

  // Binds every address. Fails with a one-line message (address in use, permission denied).
  static Result<std::shared_ptr<Listener>> Open(IoPool& pool, ListenerOptions options,
                                                OnAccept on_accept);
  void Start();
  // Stops accepting; established connections are not touched.
  void Stop();
  uint16_t port() const { return port_; }
  const ListenerOptions& options() const { return options_; }
  int64_t active_connections() const { return active_->load(std::memory_order_relaxed); }

 private:
  Listener(IoPool& pool, ListenerOptions options, OnAccept on_accept);
  void Accept(size_t i);

  IoPool& pool_;
  ListenerOptions options_;
  OnAccept on_accept_;
  uint16_t port_ = 0;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
  std::shared_ptr<std::atomic<int64_t>> active_ = std::make_shared<std::atomic<int64_t>>(0);
  metrics::Gauge* open_gauge_ = nullptr;
  metrics::Counter* accepted_ = nullptr;
  metrics::Counter* rejected_ = nullptr;
  std::atomic<bool> stopped_{false};
};

}  // namespace orrery::net
