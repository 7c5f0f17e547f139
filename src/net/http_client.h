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

// A blocking client that keeps its connection open between requests (HTTP/1.1 keep-alive),
// for callers that post to one endpoint again and again (webhook sinks): no TCP and TLS
// handshake, no trust-store load per request. It reconnects when the origin changes, the
// server answers `Connection: close`, or a request fails; a request that fails on a reused
// connection before any response byte arrived is sent once more on a fresh one (the server
// may have closed the idle connection meanwhile), so the receiver may see it twice — callers
// send requests whose redelivery is harmless (webhook deliveries carry their delivery id).
// Thread safety: one caller at a time.
class HttpSession {
 public:
  static Result<std::unique_ptr<HttpSession>> Create(HttpClientOptions options);
  ~HttpSession();
  // One request, bounded by options.timeout (connection set-up included).
  Result<HttpResponse> Send(std::string_view method, std::string_view url, Headers headers,
                            std::string body);
  // Connections opened so far (the first request opens one; tests check reuse).
  uint64_t connections() const;

  struct Impl;

 private:
  explicit HttpSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Blocking call on a private io_context (CLI commands).
Result<HttpResponse> Fetch(std::string_view method, std::string_view url, Headers headers,
                           std::string body, const HttpClientOptions& options);

}  // namespace orrery::net
