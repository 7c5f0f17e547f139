#include "bench/common/https_load.h"

#include <algorithm>
#include <memory>

#include <fmt/format.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace orrery::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// One HTTPS keep-alive connection that runs requests one after the other.
class Conn : public std::enable_shared_from_this<Conn> {
 public:
  Conn(asio::io_context& io, asio::ssl::context& tls, uint16_t port, std::string token)
      : stream_(io, tls), timer_(io), port_(port), token_(std::move(token)) {}

  ConnectionScript script;
  std::function<void()> finished;

  void Start() {
    beast::get_lowest_layer(stream_).async_connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_),
        [self = shared_from_this()](const boost::system::error_code& ec) {
          if (ec) return self->Fail("connect", ec);
          beast::get_lowest_layer(self->stream_).socket().set_option(tcp::no_delay(true));
          self->stream_.async_handshake(asio::ssl::stream_base::client,
                                        [self](const boost::system::error_code& e) {
                                          if (e) return self->Fail("handshake", e);
                                          self->Send();
                                        });
        });
  }

 private:
  void Fail(const char* what, const boost::system::error_code& ec) {
    fmt::print(stderr, "connection: {}: {}\n", what, ec.message());
    if (finished) finished();
  }
  void Send() {
    auto r = script.next();
    if (!r) {
      if (finished) finished();
      return;
    }
    req_ = {};
    req_.method(r->method);
    req_.target(r->target);
    req_.version(11);
    req_.set(http::field::host, "localhost");
    req_.set(http::field::authorization, token_);
    req_.set(http::field::content_type, "application/json; charset=utf-8");
    for (auto& [k, v] : r->headers)
      req_.set(k, v);
    req_.body() = std::move(r->body);
    req_.prepare_payload();
    if (r->delay <= Clock::duration::zero()) return Write();
    timer_.expires_after(r->delay);
    timer_.async_wait(
        [self = shared_from_this()](const boost::system::error_code&) { self->Write(); });
  }
  void Write() {
    started_ = Clock::now();
    http::async_write(
        stream_, req_, [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
          if (ec) return self->Fail("write", ec);
          self->res_ = {};
          self->parser_.emplace();
          self->parser_->body_limit(64 << 20);
          http::async_read(self->stream_, self->buf_, *self->parser_,
                           [self](const boost::system::error_code& e, size_t) {
                             if (e) return self->Fail("read", e);
                             self->res_ = self->parser_->release();
                             self->script.done(self->res_, Clock::now() - self->started_);
                             self->Send();
                           });
        });
  }

  beast::ssl_stream<beast::tcp_stream> stream_;
  asio::steady_timer timer_;
  uint16_t port_;
  std::string token_;
  beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  std::optional<http::response_parser<http::string_body>> parser_;
  Response res_;
  Clock::time_point started_;
};

}  // namespace

void RunLoad(asio::ssl::context& tls, uint16_t port, const std::string& token, size_t connections,
             const std::function<ConnectionScript(size_t)>& script) {
  asio::io_context io;
  size_t live = connections;
  for (size_t i = 0; i < connections; ++i) {
    auto c = std::make_shared<Conn>(io, tls, port, token);
    c->script = script(i);
    c->finished = [&live, &io] {
      if (--live == 0) io.stop();
    };
    c->Start();
  }
  io.run();
}

void RunLoad(asio::ssl::context& tls, uint16_t port, const std::string& token, size_t connections,
             const std::function<std::optional<Request>()>& next,
             const std::function<void(const Response&, Clock::duration)>& done) {
  RunLoad(tls, port, token, connections, [&](size_t) { return ConnectionScript{next, done}; });
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace orrery::bench
