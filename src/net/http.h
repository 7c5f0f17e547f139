// HTTP types shared by the server, the router, the client and every REST API. No Beast here:
// components that serve or call HTTP include only this header.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/stream.h"

namespace orrery::net {

class Headers {
 public:
  void Add(std::string name, std::string value);
  // Replaces every header of that name.
  void Set(std::string name, std::string value);
  // Case-insensitive lookup of the first header with this name.
  std::optional<std::string_view> Get(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& all() const { return items_; }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

struct HttpRequest {
  std::string method;  // upper-case, e.g. "GET"
  std::string target;  // raw request target: "/devices/dev%201?api-version=2021-04-12"
  std::string path;    // raw (still percent-encoded) path part of the target
  std::vector<std::pair<std::string, std::string>> query;  // decoded; a bare flag has ""
  Headers headers;
  std::string body;
  std::map<std::string, std::string, std::less<>> params;  // decoded route parameters
  std::shared_ptr<const PeerInfo> peer;                    // transport facts (TLS cert, …)

  std::optional<std::string_view> Query(std::string_view key) const;
  bool HasQuery(std::string_view key) const { return Query(key).has_value(); }
  std::string_view Param(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  Headers headers;
  std::string body;

  static HttpResponse Json(int status, std::string body);
  static HttpResponse Text(int status, std::string body);
  static HttpResponse Empty(int status);
  // A JSON error body in IoT Hub's shape, which the Azure SDKs parse:
  //   {"Message":"ErrorCode:<code>;<message>","ExceptionMessage":"","code":"<code>",
  //    "message":"<message>"}
  static HttpResponse JsonError(int status, std::string_view code, std::string_view message);
};

namespace detail {
struct ResponderState;
}

// Sends the response to one request. Copyable; Send() may be called from any thread, once.
// If every copy is dropped without a Send(), the client gets a 500 so that no request hangs.
class Responder {
 public:
  explicit Responder(std::shared_ptr<detail::ResponderState> state) : state_(std::move(state)) {}
  void Send(HttpResponse response) const;
  // True once the client connection is gone (long-running handlers may stop early).
  bool Closed() const;

 private:
  std::shared_ptr<detail::ResponderState> state_;
};

// Handlers run on the connection's io thread and must not block; they may keep the
// Responder and answer later (direct methods wait for a device).
using HttpHandler = std::function<void(HttpRequest& request, Responder responder)>;

struct RouteOptions {
  size_t max_body = 0;  // bytes; 0 = the server's default
};

struct WebSocketRoute {
  std::string path;  // exact path, e.g. "/$iothub/websocket"
  std::vector<std::string>
      subprotocols;  // acceptable, in preference order; the client must offer one
  std::function<void(StreamPtr)> handler;  // receives the upgraded connection as a byte stream
  size_t max_message = 1 << 20;
  bool text = false;  // send text frames (JSON protocols) instead of binary ones
  // Optional gate run on the upgrade request (on the connection's thread; must not block): a
  // response refuses the upgrade with it (401, 404, …); nullopt accepts. The handler then
  // finds the request's query in peer().websocket_query.
  std::function<std::optional<HttpResponse>(const HttpRequest&)> check;
};

// Maps (method, path pattern) to handlers. Patterns are '/'-separated segments where
// "{name}" captures one segment (percent-decoded) and a final "{*name}" captures the rest.
// A trailing '/' in the request path is ignored. Literal segments win over captures.
// Build the router completely before serving; it is read-only (and thread-safe) afterwards.
class Router {
 public:
  void Add(std::string_view method, std::string_view pattern, HttpHandler handler,
           RouteOptions options = {});
  void AddWebSocket(WebSocketRoute route);

  struct Route {
    std::string method;
    std::vector<std::string> segments;
    HttpHandler handler;
    RouteOptions options;
  };
  struct Match {
    const Route* route = nullptr;
    std::map<std::string, std::string, std::less<>> params;
    bool other_method = false;  // the path exists with another method (→ 405)
  };
  Match Find(std::string_view method, std::string_view raw_path) const;
  const WebSocketRoute* FindWebSocket(std::string_view raw_path) const;

 private:
  std::vector<Route> routes_;
  std::vector<WebSocketRoute> websockets_;
};

// Splits a target into raw path and decoded query pairs.
void ParseTarget(std::string_view target, std::string& path,
                 std::vector<std::pair<std::string, std::string>>& query);

}  // namespace orrery::net
