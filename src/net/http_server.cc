#include "net/http_server.h"

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "base/log.h"
#include "base/strings.h"
#include "net/http_detail.h"
#include "net/listener.h"
#include "net/tls_peer.h"
#include "net/websocket_stream.h"

namespace orrery::net {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

struct Shared {
  HttpServerOptions options;
  std::shared_ptr<const Router> router;
  metrics::Counter* responses[6] = {};  // by status class 1xx..5xx (index 1..5)
  metrics::Histogram* latency = nullptr;
  metrics::Counter* upgrades = nullptr;
};

bool IsDisconnect(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
         ec == beast::error::timeout || ec == asio::ssl::error::stream_truncated ||
         ec == asio::error::broken_pipe;
}

template <class S>
class Session : public std::enable_shared_from_this<Session<S>> {
 public:
  static constexpr bool kTls = !std::is_same_v<S, beast::tcp_stream>;

  Session(S stream, std::shared_ptr<Shared> shared, ConnectionToken token, PeerInfo peer)
      : stream_(std::move(stream)), shared_(std::move(shared)), token_(std::move(token)) {
    peer_ = std::make_shared<PeerInfo>(std::move(peer));
  }

  void KeepAlive(std::shared_ptr<void> p) { keep_ = std::move(p); }

  void Run() {
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(shared_->options.handshake_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](
                                  const boost::system::error_code& ec) { self->OnHandshake(ec); });
    } else {
      ReadHeader();
    }
  }

 private:
  const HttpServerOptions& opts() const { return shared_->options; }

  void OnHandshake(const boost::system::error_code& ec) {
    if (ec) {
      log::Get("net")->debug("{}: TLS handshake from {} failed: {}", opts().name,
                             peer_->remote_address, ec.message());
      return;
    }
    if constexpr (kTls) {
      peer_->sni = detail::ServerName(stream_.native_handle());
      peer_->client_cert_chain_der = detail::PeerChain(stream_.native_handle());
    }
    ReadHeader();
  }

  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(opts().max_header_bytes));
    parser_->body_limit(opts().max_body_bytes);
    beast::get_lowest_layer(stream_).expires_after(first_ ? opts().request_timeout
                                                          : opts().idle_timeout);
    first_ = false;
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](const boost::system::error_code& ec,
                                                              std::size_t) { self->OnHeader(ec); });
  }

  void OnHeader(const boost::system::error_code& ec) {
    if (ec) return OnReadError(ec);
    auto& req = parser_->get();
    if (websocket::is_upgrade(req)) return Upgrade();
    start_ = std::chrono::steady_clock::now();
    std::string path;
    ParseTarget(std::string_view(req.target().data(), req.target().size()), path, query_);
    match_ = shared_->router->Find(
        std::string_view(req.method_string().data(), req.method_string().size()), path);
    path_ = std::move(path);
    if (match_.route && match_.route->options.max_body) {
      // Beast checks Content-Length against the limit while parsing the header, so a route's
      // own limit is applied here for sized bodies and by the parser for chunked ones.
      size_t limit = match_.route->options.max_body;
      parser_->body_limit(limit);
      if (auto len = parser_->content_length(); len && *len > limit) {
        return OnReadError(http::error::body_limit);
      }
    }
    if (parser_->is_done()) return Dispatch();
    beast::get_lowest_layer(stream_).expires_after(opts().request_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](const boost::system::error_code& e, std::size_t) {
          if (e) return self->OnReadError(e);
          self->Dispatch();
        });
  }

  void OnReadError(const boost::system::error_code& ec) {
    if (IsDisconnect(ec)) return Close();
    close_after_ = true;
    if (ec == http::error::header_limit) {
      return Write(HttpResponse::JsonError(
          431, "RequestHeaderFieldsTooLarge",
          fmt::format("request headers exceed {} bytes", opts().max_header_bytes)));
    }
    if (ec == http::error::body_limit) {
      size_t limit = match_.route && match_.route->options.max_body ? match_.route->options.max_body
                                                                    : opts().max_body_bytes;
      return Write(HttpResponse::JsonError(413, "MessageTooLarge",
                                           fmt::format("request body exceeds {} bytes", limit)));
    }
    Write(HttpResponse::JsonError(400, "BadRequest",
                                  fmt::format("malformed HTTP request: {}", ec.message())));
  }

  void Dispatch() {
    auto req = parser_->release();
    keep_alive_ = req.keep_alive();
    HttpRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    request.path = std::move(path_);
    request.query = std::move(query_);
    for (auto& f : req) {
      request.headers.Add(std::string(f.name_string()), std::string(f.value()));
    }
    request.body = std::move(req.body());
    request.peer = peer_;
    method_ = request.method;
    target_ = request.target;

    if (!match_.route) {
      if (match_.other_method) {
        return Write(HttpResponse::JsonError(
            405, "MethodNotAllowed",
            fmt::format("{} is not allowed on {}", request.method, request.path)));
      }
      return Write(HttpResponse::JsonError(
          404, "NotFound", fmt::format("no such resource: {} {}", request.method, request.path)));
    }
    request.params = std::move(match_.params);
    auto state = std::make_shared<detail::ResponderState>();
    state->deliver = [self = this->shared_from_this()](HttpResponse r) {
      asio::post(self->stream_.get_executor(),
                 [self, r = std::move(r)]() mutable { self->Write(std::move(r)); });
    };
    pending_ = state;
    try {
      match_.route->handler(request, Responder(std::move(state)));
    } catch (const std::exception& e) {
      // Handlers should not throw; if one does, the client still gets an answer.
      log::Get("net")->error("{}: handler for {} {} threw: {}", opts().name, request.method,
                             request.path, e.what());
    }
  }

  void Write(HttpResponse r) {
    auto& res = response_.emplace();
    res.version(11);
    res.result(static_cast<unsigned>(r.status));
    res.set(http::field::server, "Orrery");
    for (auto& [k, v] : r.headers.all())
      res.insert(k, v);
    res.body() = std::move(r.body);
    res.keep_alive(keep_alive_ && !close_after_);
    res.prepare_payload();
    int cls = r.status / 100;
    if (cls >= 1 && cls <= 5 && shared_->responses[cls]) shared_->responses[cls]->Inc();
    if (shared_->latency && start_.time_since_epoch().count() != 0) {
      shared_->latency->Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    }
    log::Get("net")->debug("{} {} {} -> {}", opts().name, method_, target_, r.status);
    beast::get_lowest_layer(stream_).expires_after(opts().request_timeout);
    http::async_write(stream_, res,
                      [self = this->shared_from_this()](const boost::system::error_code& ec,
                                                        std::size_t) { self->OnWrite(ec); });
  }

  void OnWrite(const boost::system::error_code& ec) {
    response_.reset();
    start_ = {};
    if (ec || !keep_alive_ || close_after_) return Close();
    ReadHeader();
  }

  void Upgrade() {
    auto req = parser_->release();
    std::string path;
    std::vector<std::pair<std::string, std::string>> query;
    ParseTarget(std::string_view(req.target().data(), req.target().size()), path, query);
    const WebSocketRoute* route = shared_->router->FindWebSocket(path);
    keep_alive_ = false;
    if (!route) {
      return Write(HttpResponse::JsonError(404, "NotFound",
                                           fmt::format("no WebSocket endpoint at {}", path)));
    }
    std::string chosen;
    auto offered = req[http::field::sec_websocket_protocol];
    for (auto& want : route->subprotocols) {
      for (auto piece : strings::Split(std::string_view(offered.data(), offered.size()), ',')) {
        if (chosen.empty() && strings::Trim(piece) == want) chosen = want;
      }
    }
    if (!route->subprotocols.empty() && chosen.empty()) {
      return Write(
          HttpResponse::JsonError(400, "BadRequest",
                                  fmt::format("WebSocket subprotocol required at {} (one of: {})",
                                              path, fmt::join(route->subprotocols, ", "))));
    }
    if (route->check) {
      HttpRequest request;
      request.method = std::string(req.method_string());
      request.target = std::string(req.target());
      request.path = path;
      request.query = query;
      for (auto& f : req) {
        request.headers.Add(std::string(f.name_string()), std::string(f.value()));
      }
      request.peer = peer_;
      if (auto refusal = route->check(request)) return Write(std::move(*refusal));
    }
    if (shared_->upgrades) shared_->upgrades->Inc();
    auto ws = std::make_shared<websocket::stream<S>>(std::move(stream_));
    beast::get_lowest_layer(*ws).expires_never();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = opts().handshake_timeout;
    t.idle_timeout = websocket::stream_base::none();  // the protocol above has its keep-alive
    t.keep_alive_pings = false;
    ws->set_option(t);
    ws->set_option(websocket::stream_base::decorator([chosen](websocket::response_type& res) {
      res.set(http::field::server, "Orrery");
      if (!chosen.empty()) res.set(http::field::sec_websocket_protocol, chosen);
    }));
    ws->read_message_max(route->max_message);
    peer_->transport = kTls ? Transport::kWebSocketTls : Transport::kWebSocket;
    peer_->websocket_path = path;
    peer_->websocket_protocol = chosen;
    peer_->websocket_query = std::move(query);
    auto handler = route->handler;
    bool binary = !route->text;
    ws->async_accept(req, [ws, handler, binary, peer = *peer_,
                           token = std::make_shared<ConnectionToken>(std::move(token_))](
                              const boost::system::error_code& ec) mutable {
      if (ec) return;
      handler(std::make_unique<detail::WebSocketStream<S>>(std::move(*ws), std::move(peer),
                                                           std::move(*token), binary));
    });
  }

  void Close() {
    if (auto p = pending_.lock()) p->closed = true;
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(2));
      stream_.async_shutdown([self = this->shared_from_this()](const boost::system::error_code&) {
        beast::get_lowest_layer(self->stream_).close();
      });
    } else {
      boost::system::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      stream_.close();
    }
  }

  std::shared_ptr<void> keep_;  // declared first: destroyed after stream_
  S stream_;
  std::shared_ptr<Shared> shared_;
  ConnectionToken token_;
  std::shared_ptr<PeerInfo> peer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  Router::Match match_;
  std::string path_;
  std::vector<std::pair<std::string, std::string>> query_;
  std::weak_ptr<detail::ResponderState> pending_;
  std::string method_, target_;
  std::chrono::steady_clock::time_point start_{};
  bool keep_alive_ = true;
  bool close_after_ = false;
  bool first_ = true;
};

PeerInfo PeerOf(const tcp::socket& s, Transport t) {
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

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Start(IoPool& pool, HttpServerOptions options,
                                                      std::shared_ptr<const Router> router) {
  auto shared = std::make_shared<Shared>();
  shared->router = std::move(router);
  if (options.metrics) {
    for (int c = 1; c <= 5; ++c) {
      shared->responses[c] = &options.metrics->GetCounter(
          "orrery_http_responses_total", "HTTP responses by status class.",
          {{"server", options.name}, {"code", fmt::format("{}xx", c)}});
    }
    shared->latency = &options.metrics->GetHistogram(
        "orrery_http_request_duration_seconds", "Time from a complete request to its response.",
        metrics::LatencyBuckets(), {{"server", options.name}});
    shared->upgrades =
        &options.metrics->GetCounter("orrery_http_websocket_upgrades_total",
                                     "WebSocket upgrades accepted.", {{"server", options.name}});
  }
  ListenerOptions lo{.name = options.name,
                     .addresses = options.addresses,
                     .port = options.port,
                     .max_connections = options.max_connections,
                     .metrics = options.metrics};
  shared->options = std::move(options);
  auto on_accept = [shared](tcp::socket socket, ConnectionToken token) {
    if (shared->options.tls) {
      PeerInfo peer = PeerOf(socket, Transport::kTls);
      auto ctx = shared->options.tls->Current();
      using S = beast::ssl_stream<beast::tcp_stream>;
      auto session = std::make_shared<Session<S>>(S(beast::tcp_stream(std::move(socket)), *ctx),
                                                  shared, std::move(token), std::move(peer));
      session->KeepAlive(ctx);  // the context must outlive the stream made from it
      session->Run();
    } else {
      PeerInfo peer = PeerOf(socket, Transport::kTcp);
      auto session = std::make_shared<Session<beast::tcp_stream>>(
          beast::tcp_stream(std::move(socket)), shared, std::move(token), std::move(peer));
      session->Run();
    }
  };
  ORRERY_ASSIGN_OR_RETURN(auto listener, Listener::Open(pool, std::move(lo), std::move(on_accept)));
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->listener_ = std::move(listener);
  server->listener_->Start();
  return server;
}

HttpServer::~HttpServer() {
  Stop();
}

void HttpServer::Stop() {
  if (listener_) listener_->Stop();
}

uint16_t HttpServer::port() const {
  return listener_->port();
}

}  // namespace orrery::net
