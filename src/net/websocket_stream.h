// net-internal: a Beast WebSocket presented as a byte Stream. MQTT over WebSockets sends
// packets split across many frames and messages (mqtt.js writes each piece separately), so
// reads ignore message boundaries; each write is one message (binary unless the route asked
// for text frames).
#pragma once

#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "net/listener.h"
#include "net/stream.h"

namespace orrery::net::detail {

template <class Next>
class WebSocketStream final : public Stream {
 public:
  WebSocketStream(boost::beast::websocket::stream<Next> ws, PeerInfo peer, ConnectionToken token,
                  bool binary = true)
      : ws_(std::move(ws)), peer_(std::move(peer)), token_(std::move(token)) {
    ws_.binary(binary);
  }
  const PeerInfo& peer() const override { return peer_; }
  boost::asio::any_io_executor executor() override { return ws_.get_executor(); }
  void AsyncRead(boost::asio::mutable_buffer buffer, Handler handler) override {
    ws_.async_read_some(
        buffer, [h = std::move(handler)](const boost::system::error_code& ec, std::size_t n) {
          // A close frame is the end of the byte stream.
          if (ec == boost::beast::websocket::error::closed) {
            h(boost::asio::error::eof, n);
          } else {
            h(ec, n);
          }
        });
  }
  void AsyncWrite(std::span<const boost::asio::const_buffer> buffers, Handler handler) override {
    ws_.async_write(buffers, std::move(handler));
  }
  void Close() override {
    boost::system::error_code ec;
    auto& sock = boost::beast::get_lowest_layer(ws_).socket();
    sock.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    sock.close(ec);
  }

 private:
  boost::beast::websocket::stream<Next> ws_;
  PeerInfo peer_;
  ConnectionToken token_;
};

}  // namespace orrery::net::detail
