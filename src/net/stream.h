// A connected byte stream (TCP, TLS, WebSocket or secure WebSocket), type-erased so that
// protocol engines (MQTT) are written once for every transport.
//
// Contract: all calls are made on the stream's executor (the connection's io thread); at most
// one AsyncRead and one AsyncWrite are outstanding at a time; handlers run on the executor.
// Close() cancels outstanding operations (their handlers get operation_aborted) and is
// idempotent. The owner keeps the Stream alive until every handler has run.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>

namespace orrery::net {

enum class Transport { kTcp, kTls, kWebSocket, kWebSocketTls };
const char* TransportName(Transport t);

struct PeerInfo {
  std::string remote_address;
  uint16_t remote_port = 0;
  uint16_t local_port = 0;
  Transport transport = Transport::kTcp;
  std::string sni;  // TLS server name the client asked for
  // The client certificate chain as DER, leaf first; empty when none was presented. The TLS
  // layer requests but does not verify it: authenticators decide (thumbprint or CA chain).
  std::vector<std::string> client_cert_chain_der;
  std::string websocket_path;      // request path for WebSocket transports
  std::string websocket_protocol;  // negotiated subprotocol
  std::vector<std::pair<std::string, std::string>> websocket_query;  // decoded query pairs
};

class Stream {
 public:
  using Handler = std::function<void(const boost::system::error_code&, std::size_t)>;

  virtual ~Stream() = default;
  virtual const PeerInfo& peer() const = 0;
  virtual boost::asio::any_io_executor executor() = 0;
  // Reads at least one byte into `buffer` (less than its size is normal).
  virtual void AsyncRead(boost::asio::mutable_buffer buffer, Handler handler) = 0;
  // Readiness-based reading, for transports that support it (plain TCP): wait until data can
  // be read without holding a buffer, then take it with ReadAvailable. Idle connections then
  // cost no read buffer at all. Returns false (and never calls `handler`) when unsupported.
  virtual bool AsyncWaitReadable(Handler /*handler*/) { return false; }
  // After AsyncWaitReadable: reads what is there without blocking; `ec` is would_block when
  // nothing is (a spurious wake-up).
  virtual std::size_t ReadAvailable(boost::asio::mutable_buffer /*buffer*/,
                                    boost::system::error_code& ec) {
    ec = boost::asio::error::operation_not_supported;
    return 0;
  }
  // Writes all of `buffers`; they must stay valid until the handler runs.
  virtual void AsyncWrite(std::span<const boost::asio::const_buffer> buffers, Handler handler) = 0;
  // Closes the stream (a TLS close_notify or WebSocket close frame where possible).
  virtual void Close() = 0;
};

using StreamPtr = std::unique_ptr<Stream>;
// Receives each new connection. Called on the connection's own executor.
using StreamAcceptor = std::function<void(StreamPtr)>;

}  // namespace orrery::net
