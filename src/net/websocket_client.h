// A blocking WebSocket client (ws:// and wss://) for CLI commands and tests: one connection on
// a private io_context, every call bounded by a deadline. Messages keep their boundaries.
//
// Thread safety: one thread at a time per client.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"
#include "net/http.h"
#include "net/tls.h"

namespace orrery::net {

struct WebSocketClientOptions {
  TlsClientOptions tls;
  Headers headers;          // sent with the upgrade request (e.g. Authorization)
  std::string subprotocol;  // offered when non-empty
  std::chrono::milliseconds connect_timeout{10000};
  size_t max_message = 16 << 20;
};

class WebSocketClient {
 public:
  // Connects and upgrades. A refused upgrade is kUnavailable whose message carries the HTTP
  // status and the server's error body.
  static Result<std::unique_ptr<WebSocketClient>> Connect(std::string_view url,
                                                          WebSocketClientOptions options);
  ~WebSocketClient();

  // The next message; nullopt when the deadline passes first (the read stays pending and the
  // next call continues it). kUnavailable once the connection is closed or broken.
  Result<std::optional<std::string>> Read(std::chrono::steady_clock::time_point deadline);
  // Sends one text message.
  Status Write(std::string_view text, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Sends a close frame (best effort) and closes the socket.
  void Close();

  struct Impl;

 private:
  explicit WebSocketClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace orrery::net
