// The HTTP/1.1 server (Beast inside, not in this header): keep-alive, chunked request bodies,
// header and body limits with JSON errors (431/413/400), per-request timeouts, and WebSocket
// upgrade to a byte Stream for routes registered with Router::AddWebSocket.
//
// Thread safety: Start/Stop from any thread; the router must not change after Start.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/metrics.h"
#include "net/http.h"
#include "net/io_pool.h"
#include "net/tls.h"

namespace orrery::net {

class Listener;

struct HttpServerOptions {
  std::string name = "https";
  std::vector<std::string> addresses;
  uint16_t port = 0;
  std::shared_ptr<TlsServerContext> tls;  // null = plain HTTP
  size_t max_connections = 20000;
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1 << 20;  // default per request; routes may raise or lower it
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds request_timeout{30000};  // to receive a whole request
  std::chrono::milliseconds idle_timeout{120000};    // between keep-alive requests
  metrics::Registry* metrics = nullptr;
};

class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> Start(IoPool& pool, HttpServerOptions options,
                                                   std::shared_ptr<const Router> router);
  ~HttpServer();
  void Stop();
  uint16_t port() const;

 private:
  HttpServer() = default;
  std::shared_ptr<Listener> listener_;
};

}  // namespace orrery::net
