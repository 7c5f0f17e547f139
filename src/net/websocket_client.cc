#include "net/websocket_client.h"

#include <variant>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "net/http_client.h"
#include "net/tls_peer.h"

namespace orrery::net {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {
using PlainWs = websocket::stream<beast::tcp_stream>;
using TlsWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;
}  // namespace

struct WebSocketClient::Impl {
  asio::io_context io;
  std::shared_ptr<asio::ssl::context> tls;
  std::variant<std::unique_ptr<PlainWs>, std::unique_ptr<TlsWs>> ws;
  beast::flat_buffer buffer;
  bool read_pending = false;
  bool read_done = false;
  boost::system::error_code read_ec;
  bool broken = false;

  template <class F>
  auto With(F&& f) {
    return std::visit([&](auto& p) { return f(*p); }, ws);
  }

  // Runs the io_context until `done` or the deadline; returns false on timeout.
  bool RunUntil(const bool& done, std::chrono::steady_clock::time_point deadline) {
    io.restart();
    while (!done) {
      if (io.run_one_until(deadline) == 0 && !done) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        io.restart();
      }
    }
    return true;
  }
};

WebSocketClient::WebSocketClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WebSocketClient::~WebSocketClient() {
  if (impl_) Close();
}

Result<std::unique_ptr<WebSocketClient>> WebSocketClient::Connect(std::string_view url,
                                                                  WebSocketClientOptions options) {
  std::string http_url(url);
  if (http_url.starts_with("wss://")) {
    http_url = "https://" + http_url.substr(6);
  } else if (http_url.starts_with("ws://")) {
    http_url = "http://" + http_url.substr(5);
  }
  ORRERY_ASSIGN_OR_RETURN(Url u, ParseUrl(http_url));
  bool secure = u.scheme == "https";
  auto impl = std::make_unique<Impl>();
  if (secure) {
    ORRERY_ASSIGN_OR_RETURN(impl->tls, MakeClientContext(options.tls));
    impl->ws = std::make_unique<TlsWs>(impl->io, *impl->tls);
  } else {
    impl->ws = std::make_unique<PlainWs>(impl->io);
  }
  auto deadline = std::chrono::steady_clock::now() + options.connect_timeout;
  auto fail = [&](std::string what, const boost::system::error_code& ec) {
    return Error(BaseErrc::kUnavailable,
                 fmt::format("{} {}:{}: {}", what, u.host, u.port,
                             ec == beast::error::timeout ? "timed out" : ec.message()));
  };

  tcp::resolver resolver(impl->io);
  boost::system::error_code ec;
  auto endpoints = resolver.resolve(u.host, std::to_string(u.port), ec);
  if (ec) return fail("cannot resolve", ec);
  bool done = false;
  websocket::response_type response;
  std::string host_header =
      (u.port == (secure ? 443 : 80)) ? u.host : fmt::format("{}:{}", u.host, u.port);
  impl->With([&](auto& ws) {
    auto& lowest = beast::get_lowest_layer(ws);
    lowest.expires_at(deadline);
    lowest.async_connect(endpoints, [&](const boost::system::error_code& e, const tcp::endpoint&) {
      ec = e;
      done = true;
    });
  });
  if (!impl->RunUntil(done, deadline) || ec) return fail("cannot connect to", ec);
  if (secure) {
    auto& tws = *std::get<std::unique_ptr<TlsWs>>(impl->ws);
    SSL* ssl = tws.next_layer().native_handle();
    detail::SetServerName(ssl, u.host.c_str());
    if (options.tls.verify) SSL_set1_host(ssl, u.host.c_str());
    done = false;
    tws.next_layer().async_handshake(asio::ssl::stream_base::client,
                                     [&](const boost::system::error_code& e) {
                                       ec = e;
                                       done = true;
                                     });
    if (!impl->RunUntil(done, deadline) || ec) {
      std::string what = "TLS handshake failed with";
      long verify = SSL_get_verify_result(ssl);
      if (verify != X509_V_OK)
        what =
            fmt::format("certificate not trusted ({}) at", X509_verify_cert_error_string(verify));
      return fail(what, ec);
    }
  }
  done = false;
  impl->With([&](auto& ws) {
    ws.read_message_max(options.max_message);
    ws.set_option(websocket::stream_base::decorator([&options](websocket::request_type& req) {
      req.set(http::field::user_agent, "orrery");
      for (auto& [k, v] : options.headers.all())
        req.set(k, v);
      if (!options.subprotocol.empty())
        req.set(http::field::sec_websocket_protocol, options.subprotocol);
    }));
    ws.async_handshake(response, host_header, u.target, [&](const boost::system::error_code& e) {
      ec = e;
      done = true;
    });
  });
  if (!impl->RunUntil(done, deadline)) return fail("WebSocket handshake timed out with", ec);
  if (ec) {
    if (response.result_int() != 0 && response.result_int() != 101) {
      return Error(BaseErrc::kUnavailable,
                   fmt::format("the server refused the WebSocket upgrade: HTTP {} {}",
                               response.result_int(), response.body()));
    }
    return fail("WebSocket handshake failed with", ec);
  }
  impl->With([](auto& ws) {
    beast::get_lowest_layer(ws).expires_never();
    websocket::stream_base::timeout t =
        websocket::stream_base::timeout::suggested(beast::role_type::client);
    ws.set_option(t);
  });
  return std::unique_ptr<WebSocketClient>(new WebSocketClient(std::move(impl)));
}

Result<std::optional<std::string>> WebSocketClient::Read(
    std::chrono::steady_clock::time_point deadline) {
  Impl& m = *impl_;
  if (m.broken) return Error(BaseErrc::kUnavailable, "the WebSocket connection is closed");
  if (!m.read_pending) {
    m.read_pending = true;
    m.read_done = false;
    m.With([&](auto& ws) {
      ws.async_read(m.buffer, [&m](const boost::system::error_code& e, std::size_t) {
        m.read_ec = e;
        m.read_done = true;
      });
    });
  }
  if (!m.RunUntil(m.read_done, deadline)) return std::optional<std::string>();
  m.read_pending = false;
  if (m.read_ec) {
    m.broken = true;
    if (m.read_ec == websocket::error::closed) {
      std::string reason = m.With([](auto& ws) {
        auto& r = ws.reason().reason;
        return std::string(r.data(), r.size());
      });
      return Error(BaseErrc::kUnavailable,
                   reason.empty() ? std::string("the server closed the WebSocket connection")
                                  : fmt::format("the server closed the connection: {}", reason));
    }
    return Error(BaseErrc::kUnavailable,
                 fmt::format("WebSocket connection lost: {}", m.read_ec.message()));
  }
  std::string out = beast::buffers_to_string(m.buffer.data());
  m.buffer.consume(m.buffer.size());
  return std::optional<std::string>(std::move(out));
}

Status WebSocketClient::Write(std::string_view text, std::chrono::milliseconds timeout) {
  Impl& m = *impl_;
  if (m.broken) return Error(BaseErrc::kUnavailable, "the WebSocket connection is closed");
  bool done = false;
  boost::system::error_code ec;
  m.With([&](auto& ws) {
    ws.text(true);
    ws.async_write(asio::buffer(text.data(), text.size()),
                   [&](const boost::system::error_code& e, std::size_t) {
                     ec = e;
                     done = true;
                   });
  });
  if (!m.RunUntil(done, std::chrono::steady_clock::now() + timeout) || ec) {
    m.broken = true;
    return Error(BaseErrc::kUnavailable,
                 fmt::format("cannot send on the WebSocket: {}", ec ? ec.message() : "timed out"));
  }
  return Ok();
}

void WebSocketClient::Close() {
  Impl& m = *impl_;
  if (!m.broken) {
    m.broken = true;
    bool done = false;
    m.With([&](auto& ws) {
      ws.async_close(websocket::close_code::normal,
                     [&](const boost::system::error_code&) { done = true; });
    });
    m.RunUntil(done, std::chrono::steady_clock::now() + std::chrono::seconds(2));
  }
  m.With([](auto& ws) {
    boost::system::error_code ignored;
    beast::get_lowest_layer(ws).socket().close(ignored);
  });
  m.io.restart();
  m.io.poll();
}

}  // namespace orrery::net
