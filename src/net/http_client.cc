#include "net/http_client.h"

#include <charconv>

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
    req_.version(11);
    req_.method_string(request_.method.empty() ? "GET" : request_.method);
    req_.target(url_.target);
    bool default_port = (url_.port == 443 && kTls) || (url_.port == 80 && !kTls);
    req_.set(http::field::host,
             default_port ? url_.host : fmt::format("{}:{}", url_.host, url_.port));
    req_.set(http::field::user_agent, "orrery");
    for (auto& [k, v] : request_.headers.all())
      req_.set(k, v);
    req_.body() = std::move(request_.body);
    req_.keep_alive(false);
    req_.prepare_payload();
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
          auto& res = self->parser_.get();
          HttpResponse out;
          out.status = static_cast<int>(res.result_int());
          for (auto& f : res) {
            out.headers.Add(std::string(f.name_string()), std::string(f.value()));
          }
          out.body = std::move(res.body());
          self->Done(std::move(out));
        });
  }

  void Fail(const std::string& what, const boost::system::error_code& ec) {
    std::string msg = ec == beast::error::timeout ? fmt::format("{}: timed out after {} ms", what,
                                                                impl_->options.timeout.count())
                                                  : fmt::format("{}: {}", what, ec.message());
    if constexpr (kTls) {
      long verify = SSL_get_verify_result(stream_.native_handle());
      if (verify != X509_V_OK) {
        msg += fmt::format(" (certificate: {})", X509_verify_cert_error_string(verify));
      }
    }
    Done(Error(BaseErrc::kUnavailable, msg));
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
  http::request<http::string_body> req_;
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
