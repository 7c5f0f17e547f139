#include "net/http_client.h"

#include <charconv>
#include <optional>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "net/tls_peer.h"

namespace orrery::net {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

Result<Url> ParseUrl(std::string_view url) {
  Url u;
  auto sep = url.find("://");
  if (sep == std::string_view::npos) {
    return Error(BaseErrc::kInvalidArgument, fmt::format("not a URL: '{}'", url));
  }
  u.scheme = std::string(url.substr(0, sep));
  if (u.scheme != "http" && u.scheme != "https") {
    return Error(BaseErrc::kInvalidArgument,
                 fmt::format("unsupported URL scheme '{}' (http or https)", u.scheme));
  }
  std::string_view rest = url.substr(sep + 3);
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  u.port = u.scheme == "https" ? 443 : 80;
  std::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') {  // [::1]:8443
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return Error(BaseErrc::kInvalidArgument, fmt::format("bad IPv6 host in '{}'", url));
    }
    host = authority.substr(1, close - 1);
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() == ':')
      authority.remove_prefix(1);
    else
      authority = {};
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    authority = authority.substr(colon + 1);
  } else {
    authority = {};
  }
  if (!authority.empty()) {
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(authority.data(), authority.data() + authority.size(), p);
    if (ec != std::errc() || ptr != authority.data() + authority.size() || p == 0 || p > 65535) {
      return Error(BaseErrc::kInvalidArgument, fmt::format("bad port in '{}'", url));
    }
    u.port = static_cast<uint16_t>(p);
  }
  if (host.empty()) return Error(BaseErrc::kInvalidArgument, fmt::format("no host in '{}'", url));
  u.host = std::string(host);
  return u;
}

struct HttpClient::Impl {
  asio::any_io_executor executor;
  HttpClientOptions options;
  std::shared_ptr<asio::ssl::context> tls;
};

namespace {

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// The request line and headers every client request carries; `target` comes from the URL.
void BuildRequest(const Url& url, bool tls, std::string method, const Headers& headers,
                  std::string body, bool keep_alive, Request* req) {
  req->version(11);
  req->method_string(method.empty() ? "GET" : method);
  req->target(url.target);
  bool default_port = (url.port == 443 && tls) || (url.port == 80 && !tls);
  req->set(http::field::host, default_port ? url.host : fmt::format("{}:{}", url.host, url.port));
  req->set(http::field::user_agent, "orrery");
  for (auto& [k, v] : headers.all())
    req->set(k, v);
  req->body() = std::move(body);
  req->keep_alive(keep_alive);
  req->prepare_payload();
}

HttpResponse TakeResponse(Response& res) {
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  for (auto& f : res)
    out.headers.Add(std::string(f.name_string()), std::string(f.value()));
  out.body = std::move(res.body());
  return out;
}

// `ssl` (may be null) adds why the peer's certificate was refused.
Error TransportError(const std::string& what, const boost::system::error_code& ec,
                     std::chrono::milliseconds timeout, SSL* ssl) {
  std::string msg = ec == beast::error::timeout
                        ? fmt::format("{}: timed out after {} ms", what, timeout.count())
                        : fmt::format("{}: {}", what, ec.message());
  if (ssl) {
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      msg += fmt::format(" (certificate: {})", X509_verify_cert_error_string(verify));
    }
  }
  return Error(BaseErrc::kUnavailable, msg);
}

template <class S>
class Op : public std::enable_shared_from_this<Op<S>> {
 public:
  static constexpr bool kTls = !std::is_same_v<S, beast::tcp_stream>;

  Op(std::shared_ptr<HttpClient::Impl> impl, Url url, HttpRequest request, HttpClient::Callback cb,
     S stream)
      : impl_(std::move(impl)),
        url_(std::move(url)),
        request_(std::move(request)),
        cb_(std::move(cb)),
        resolver_(impl_->executor),
        stream_(std::move(stream)) {}

  void Run() {
    beast::get_lowest_layer(stream_).expires_after(impl_->options.timeout);
    resolver_.async_resolve(
        url_.host, std::to_string(url_.port),
        [self = this->shared_from_this()](const boost::system::error_code& ec,
                                          tcp::resolver::results_type results) {
          if (ec) return self->Fail("cannot resolve " + self->url_.host, ec);
          beast::get_lowest_layer(self->stream_)
              .async_connect(results, [self](const boost::system::error_code& e,
                                             const tcp::endpoint&) { self->OnConnect(e); });
        });
  }

 private:
  void OnConnect(const boost::system::error_code& ec) {
    if (ec) return Fail(fmt::format("cannot connect to {}:{}", url_.host, url_.port), ec);
    boost::system::error_code ignored;  // see HttpSession::Impl::Connect
    beast::get_lowest_layer(stream_).socket().set_option(tcp::no_delay(true), ignored);
    if constexpr (kTls) {
      SSL* ssl = stream_.native_handle();
      detail::SetServerName(ssl, url_.host.c_str());
      if (impl_->options.tls.verify) SSL_set1_host(ssl, url_.host.c_str());
      stream_.async_handshake(
          asio::ssl::stream_base::client,
          [self = this->shared_from_this()](const boost::system::error_code& e) {
            if (e) return self->Fail("TLS handshake failed", e);
            self->Write();
          });
    } else {
      Write();
    }
  }

  void Write() {
    BuildRequest(url_, kTls, std::move(request_.method), request_.headers, std::move(request_.body),
                 false, &req_);
    http::async_write(
        stream_, req_,
        [self = this->shared_from_this()](const boost::system::error_code& ec, std::size_t) {
          if (ec) return self->Fail("cannot send request", ec);
          self->Read();
        });
  }

  void Read() {
    parser_.body_limit(impl_->options.max_response_bytes);
    http::async_read(
        stream_, buffer_, parser_,
        [self = this->shared_from_this()](const boost::system::error_code& ec, std::size_t) {
          if (ec) return self->Fail("cannot read response", ec);
          self->Done(TakeResponse(self->parser_.get()));
        });
  }

  void Fail(const std::string& what, const boost::system::error_code& ec) {
    SSL* ssl = nullptr;
    if constexpr (kTls) ssl = stream_.native_handle();
    Done(TransportError(what, ec, impl_->options.timeout, ssl));
  }

  void Done(Result<HttpResponse> r) {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().close(ignored);
    if (cb_) {
      auto cb = std::move(cb_);
      cb(std::move(r));
    }
  }

  std::shared_ptr<HttpClient::Impl> impl_;
  Url url_;
  HttpRequest request_;
  HttpClient::Callback cb_;
  tcp::resolver resolver_;
  S stream_;
  beast::flat_buffer buffer_;
  Request req_;
  http::response_parser<http::string_body> parser_;
};

}  // namespace

Result<std::shared_ptr<HttpClient>> HttpClient::Create(asio::any_io_executor executor,
                                                       HttpClientOptions options) {
  auto impl = std::make_shared<Impl>();
  impl->executor = std::move(executor);
  ORRERY_ASSIGN_OR_RETURN(impl->tls, MakeClientContext(options.tls));
  impl->options = std::move(options);
  return std::shared_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

void HttpClient::Send(std::string_view url, HttpRequest request, Callback callback) {
  auto parsed = ParseUrl(url);
  if (!parsed) {
    asio::post(impl_->executor,
               [cb = std::move(callback), e = parsed.error()]() mutable { cb(std::move(e)); });
    return;
  }
  if (parsed->scheme == "https") {
    using S = beast::ssl_stream<beast::tcp_stream>;
    auto op =
        std::make_shared<Op<S>>(impl_, std::move(*parsed), std::move(request), std::move(callback),
                                S(beast::tcp_stream(impl_->executor), *impl_->tls));
    asio::post(impl_->executor, [op] { op->Run(); });
  } else {
    auto op = std::make_shared<Op<beast::tcp_stream>>(impl_, std::move(*parsed), std::move(request),
                                                      std::move(callback),
                                                      beast::tcp_stream(impl_->executor));
    asio::post(impl_->executor, [op] { op->Run(); });
  }
}

// ---------------------------------------------------------------- HttpSession

struct HttpSession::Impl {
  asio::io_context ctx;
  HttpClientOptions options;
  std::shared_ptr<asio::ssl::context> tls;
  std::string origin;  // scheme://host:port of the open connection, empty when none
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_stream;
  std::optional<beast::tcp_stream> tcp_stream;
  beast::flat_buffer buffer;
  uint64_t connections = 0;

  beast::tcp_stream& Lowest() {
    return tls_stream ? beast::get_lowest_layer(*tls_stream) : *tcp_stream;
  }

  void Close() {
    if (tls_stream || tcp_stream) {
      beast::error_code ignored;
      Lowest().socket().close(ignored);
    }
    tls_stream.reset();
    tcp_stream.reset();
    buffer.clear();
    origin.clear();
  }

  // Starts one asynchronous operation with a completion handler and runs the io_context
  // until it has completed; returns its error code. `start(handler)` starts the operation.
  template <class Start>
  boost::system::error_code Await(Start start) {
    boost::system::error_code ec;
    bool done = false;
    start([&](const boost::system::error_code& e, auto&&...) {
      ec = e;
      done = true;
    });
    ctx.restart();
    while (!done && ctx.run_one() > 0) {
    }
    return ec;
  }

  // Calls f with the open stream, TLS or plain.
  template <class F>
  auto WithStream(F f) {
    return tls_stream ? f(*tls_stream) : f(*tcp_stream);
  }

  Status Connect(const Url& url) {
    Close();
    if (url.scheme == "https") {
      tls_stream.emplace(beast::tcp_stream(ctx), *tls);
    } else {
      tcp_stream.emplace(ctx);
    }
    Lowest().expires_after(options.timeout);
    tcp::resolver resolver(ctx);
    tcp::resolver::results_type results;
    auto ec = Await([&](auto handler) {
      resolver.async_resolve(
          url.host, std::to_string(url.port),
          [&, handler](const boost::system::error_code& e, tcp::resolver::results_type r) mutable {
            results = std::move(r);
            handler(e);
          });
    });
    if (ec) return Fail("cannot resolve " + url.host, ec);
    ec = Await([&](auto handler) { Lowest().async_connect(results, handler); });
    if (ec) return Fail(fmt::format("cannot connect to {}:{}", url.host, url.port), ec);
    // A request goes out as several writes (header, body, TLS records): with Nagle's
    // algorithm on a kept-alive connection the last one waits for the peer's delayed ACK
    // (40 ms on Linux).
    boost::system::error_code ignored;
    Lowest().socket().set_option(tcp::no_delay(true), ignored);
    if (tls_stream) {
      SSL* ssl = tls_stream->native_handle();
      detail::SetServerName(ssl, url.host.c_str());
      if (options.tls.verify) SSL_set1_host(ssl, url.host.c_str());
      ec = Await([&](auto handler) {
        tls_stream->async_handshake(asio::ssl::stream_base::client, handler);
      });
      if (ec) return Fail("TLS handshake failed", ec);
    }
    origin = fmt::format("{}://{}:{}", url.scheme, url.host, url.port);
    ++connections;
    return Ok();
  }

  Error Fail(const std::string& what, const boost::system::error_code& ec) {
    auto e = TransportError(what, ec, options.timeout,
                            tls_stream ? tls_stream->native_handle() : nullptr);
    Close();
    return e;
  }

  // One exchange on the open connection. On failure `retry` says whether the request may
  // just have met a connection the server had closed (the write failed, or the read ended
  // before any response byte): worth sending again when the connection was a reused one.
  Result<HttpResponse> Exchange(Request& req, bool* retry) {
    Lowest().expires_after(options.timeout);
    auto ec = WithStream([&](auto& stream) {
      return Await([&](auto handler) { http::async_write(stream, req, handler); });
    });
    if (ec) {
      *retry = true;
      return Fail("cannot send request", ec);
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(options.max_response_bytes);
    ec = WithStream([&](auto& stream) {
      return Await([&](auto handler) { http::async_read(stream, buffer, parser, handler); });
    });
    if (ec) {
      *retry = !parser.got_some() && ec != beast::error::timeout;
      return Fail("cannot read response", ec);
    }
    bool keep = parser.get().keep_alive();
    HttpResponse out = TakeResponse(parser.get());
    if (!keep) Close();
    return out;
  }
};

Result<std::unique_ptr<HttpSession>> HttpSession::Create(HttpClientOptions options) {
  auto impl = std::make_unique<Impl>();
  ORRERY_ASSIGN_OR_RETURN(impl->tls, MakeClientContext(options.tls));
  impl->options = std::move(options);
  return std::unique_ptr<HttpSession>(new HttpSession(std::move(impl)));
}

HttpSession::HttpSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpSession::~HttpSession() {
  if (impl_) impl_->Close();
}

uint64_t HttpSession::connections() const {
  return impl_->connections;
}

Result<HttpResponse> HttpSession::Send(std::string_view method, std::string_view url,
                                       Headers headers, std::string body) {
  ORRERY_ASSIGN_OR_RETURN(Url u, ParseUrl(url));
  std::string origin = fmt::format("{}://{}:{}", u.scheme, u.host, u.port);
  Request req;
  BuildRequest(u, u.scheme == "https", std::string(method), headers, std::move(body), true, &req);
  for (int attempt = 0;; ++attempt) {
    bool reused = impl_->origin == origin;
    if (!reused) ORRERY_TRY(impl_->Connect(u));
    bool retry = false;
    auto r = impl_->Exchange(req, &retry);
    if (r || !reused || !retry || attempt > 0) return r;
  }
}

Result<HttpResponse> Fetch(std::string_view method, std::string_view url, Headers headers,
                           std::string body, const HttpClientOptions& options) {
  asio::io_context ctx;
  ORRERY_ASSIGN_OR_RETURN(auto client, HttpClient::Create(ctx.get_executor(), options));
  HttpRequest req;
  req.method = std::string(method);
  req.headers = std::move(headers);
  req.body = std::move(body);
  Result<HttpResponse> out = Error(BaseErrc::kInternal, "no response");
  client->Send(url, std::move(req), [&](Result<HttpResponse> r) { out = std::move(r); });
  ctx.run();
  return out;
}

}  // namespace orrery::net
