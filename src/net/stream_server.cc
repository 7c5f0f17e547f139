#include "net/stream_server.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "base/log.h"
#include "net/listener.h"
#include "net/tls_peer.h"

namespace orrery::net {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

const char* TransportName(Transport t) {
  switch (t) {
    case Transport::kTcp:
      return "tcp";
    case Transport::kTls:
      return "tls";
    case Transport::kWebSocket:
      return "ws";
    case Transport::kWebSocketTls:
      return "wss";
  }
  return "?";
}

namespace {

PeerInfo BasicPeer(const tcp::socket& s, Transport t) {
  PeerInfo p;
  p.transport = t;
  boost::system::error_code ec;
  auto remote = s.remote_endpoint(ec);
  if (!ec) {
    p.remote_address = remote.address().to_string();
    p.remote_port = remote.port();
  }
  auto local = s.local_endpoint(ec);
  if (!ec) p.local_port = local.port();
  return p;
}

class TcpStream final : public Stream {
 public:
  TcpStream(tcp::socket socket, ConnectionToken token)
      : socket_(std::move(socket)), token_(std::move(token)) {
    peer_ = BasicPeer(socket_, Transport::kTcp);
    boost::system::error_code ec;
    socket_.non_blocking(true, ec);  // ReadAvailable must never block
  }
  const PeerInfo& peer() const override { return peer_; }
  asio::any_io_executor executor() override { return socket_.get_executor(); }
  void AsyncRead(asio::mutable_buffer buffer, Handler handler) override {
    socket_.async_read_some(buffer, std::move(handler));
  }
  bool AsyncWaitReadable(Handler handler) override {
    socket_.async_wait(tcp::socket::wait_read,
                       [h = std::move(handler)](const boost::system::error_code& ec) { h(ec, 0); });
    return true;
  }
  size_t ReadAvailable(asio::mutable_buffer buffer, boost::system::error_code& ec) override {
    size_t n = socket_.read_some(buffer, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec = asio::error::would_block;
    }
    return n;
  }
  void AsyncWrite(std::span<const asio::const_buffer> buffers, Handler handler) override {
    asio::async_write(socket_, buffers, std::move(handler));
  }
  void Close() override {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

 private:
  tcp::socket socket_;
  ConnectionToken token_;
  PeerInfo peer_;
};

class TlsStream final : public Stream {
 public:
  TlsStream(std::shared_ptr<asio::ssl::context> ctx, tcp::socket socket, ConnectionToken token)
      : ctx_(std::move(ctx)), stream_(std::move(socket), *ctx_), token_(std::move(token)) {
    peer_ = BasicPeer(stream_.next_layer(), Transport::kTls);
  }
  asio::ssl::stream<tcp::socket>& ssl() { return stream_; }
  void CapturePeer() {
    peer_.sni = detail::ServerName(stream_.native_handle());
    peer_.client_cert_chain_der = detail::PeerChain(stream_.native_handle());
  }
  const PeerInfo& peer() const override { return peer_; }
  asio::any_io_executor executor() override { return stream_.get_executor(); }
  void AsyncRead(asio::mutable_buffer buffer, Handler handler) override {
    stream_.async_read_some(buffer, std::move(handler));
  }
  void AsyncWrite(std::span<const asio::const_buffer> buffers, Handler handler) override {
    asio::async_write(stream_, buffers, std::move(handler));
  }
  void Close() override {
    boost::system::error_code ec;
    stream_.next_layer().shutdown(tcp::socket::shutdown_both, ec);
    stream_.next_layer().close(ec);
  }

 private:
  std::shared_ptr<asio::ssl::context> ctx_;  // outlives the stream that references it
  asio::ssl::stream<tcp::socket> stream_;
  ConnectionToken token_;
  PeerInfo peer_;
};

struct HandshakeState {
  std::unique_ptr<TlsStream> stream;
  asio::steady_timer timer;
  explicit HandshakeState(asio::any_io_executor ex) : timer(ex) {}
};

}  // namespace

Result<std::unique_ptr<StreamServer>> StreamServer::Start(IoPool& pool, StreamServerOptions options,
                                                          StreamAcceptor acceptor) {
  auto tls = options.tls;
  auto timeout = options.handshake_timeout;
  metrics::Counter* failures = nullptr;
  if (options.metrics && tls) {
    failures = &options.metrics->GetCounter("orrery_net_tls_handshake_failures_total",
                                            "TLS handshakes that failed or timed out.",
                                            {{"listener", options.name}});
  }
  auto name = options.name;
  ListenerOptions lo{.name = options.name,
                     .addresses = options.addresses,
                     .port = options.port,
                     .max_connections = options.max_connections,
                     .metrics = options.metrics};
  auto shared_acceptor = std::make_shared<StreamAcceptor>(std::move(acceptor));
  auto on_accept = [tls, timeout, failures, name, acceptor = shared_acceptor](
                       tcp::socket socket, ConnectionToken token) {
    if (!tls) {
      (*acceptor)(std::make_unique<TcpStream>(std::move(socket), std::move(token)));
      return;
    }
    auto state = std::make_shared<HandshakeState>(socket.get_executor());
    state->stream =
        std::make_unique<TlsStream>(tls->Current(), std::move(socket), std::move(token));
    state->timer.expires_after(timeout);
    state->timer.async_wait([state](const boost::system::error_code& ec) {
      if (!ec && state->stream) state->stream->Close();
    });
    state->stream->ssl().async_handshake(
        asio::ssl::stream_base::server,
        [state, failures, name, acceptor](const boost::system::error_code& ec) {
          state->timer.cancel();
          if (ec) {
            if (failures) failures->Inc();
            log::Get("net")->debug("{}: TLS handshake from {} failed: {}", name,
                                   state->stream->peer().remote_address, ec.message());
            return;
          }
          state->stream->CapturePeer();
          (*acceptor)(std::move(state->stream));
        });
  };
  ORRERY_ASSIGN_OR_RETURN(auto listener, Listener::Open(pool, std::move(lo), std::move(on_accept)));
  std::unique_ptr<StreamServer> server(new StreamServer());
  server->listener_ = std::move(listener);
  server->listener_->Start();
  return server;
}

StreamServer::~StreamServer() {
  Stop();
}

void StreamServer::Stop() {
  if (listener_) listener_->Stop();
}

uint16_t StreamServer::port() const {
  return listener_->port();
}

StreamPtr MakeTcpClientStream(asio::io_context& ctx, const std::string& host, uint16_t port,
                              boost::system::error_code& ec) {
  tcp::resolver resolver(ctx);
  auto results = resolver.resolve(host, std::to_string(port), ec);
  if (ec) return nullptr;
  tcp::socket socket(ctx);
  asio::connect(socket, results, ec);
  if (ec) return nullptr;
  socket.set_option(tcp::no_delay(true), ec);
  return std::make_unique<TcpStream>(std::move(socket), ConnectionToken());
}

}  // namespace orrery::net
