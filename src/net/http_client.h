// An HTTP/1.1 client (http:// and https://) for webhooks, the CLI and tests.
//
// Each request opens its own connection (TLS with SNI and host-name verification unless
// disabled), bounded by a total timeout and a response size limit.
// Thread safety: Send() may be called from any thread; the callback runs on the client's
// executor.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

#include "base/error.h"
#include "net/http.h"
#include "net/tls.h"

namespace orrery::net {

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;
  uint16_t port = 0;
  std::string target;  // path and query, at least "/"
};
Result<Url> ParseUrl(std::string_view url);

struct HttpClientOptions {
  TlsClientOptions tls;
  std::chrono::milliseconds timeout{30000};
  size_t max_response_bytes = 64 << 20;
};

class HttpClient {
 public:
  using Callback = std::function<void(Result<HttpResponse>)>;

  static Result<std::shared_ptr<HttpClient>> Create(boost::asio::any_io_executor executor,
                                                    HttpClientOptions options);
  // Sends `request` (method, headers, body; its target is taken from `url`).
  void Send(std::string_view url, HttpRequest request, Callback callback);

  struct Impl;

 private:
  explicit HttpClient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

// Blocking call on a private io_context (CLI commands).
Result<HttpResponse> Fetch(std::string_view method, std::string_view url, Headers headers,
                           std::string body, const HttpClientOptions& options);

}  // namespace orrery::net
