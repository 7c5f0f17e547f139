// A server for raw byte-stream protocols (MQTT): accepts TCP connections, performs the TLS
// handshake when configured, and hands each connection to the protocol as a Stream.
//
// Thread safety: Start/Stop from any thread. The acceptor callback runs on the connection's
// own io thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/metrics.h"
#include "net/io_pool.h"
#include "net/stream.h"
#include "net/tls.h"

namespace orrery::net {

class Listener;

struct StreamServerOptions {
  std::string name;                    // "mqtt", "mqtts"
  std::vector<std::string> addresses;  // see ListenerOptions
  uint16_t port = 0;
  std::shared_ptr<TlsServerContext> tls;  // null = plain TCP
  size_t max_connections = 100000;
  std::chrono::milliseconds handshake_timeout{10000};
  metrics::Registry* metrics = nullptr;
};

class StreamServer {
 public:
  static Result<std::unique_ptr<StreamServer>> Start(IoPool& pool, StreamServerOptions options,
                                                     StreamAcceptor acceptor);
  ~StreamServer();
  void Stop();
  uint16_t port() const;

 private:
  StreamServer() = default;
  std::shared_ptr<Listener> listener_;
};

// Wraps a connected plain socket or TLS stream (net-internal factories, also used by the
// HTTP server's WebSocket upgrade and by clients in tests and benchmarks).
StreamPtr MakeTcpClientStream(boost::asio::io_context& ctx, const std::string& host, uint16_t port,
                              boost::system::error_code& ec);

}  // namespace orrery::net
