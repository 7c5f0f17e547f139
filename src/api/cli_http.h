// What the CLI's REST clients share (service_cli, dps_cli): one blocking HTTPS request with a
// service connection's token and an api-version, the server's refusal as an Error in one
// line, and JSON helpers. Internal to the api component.
//
// Errors: the server's refusal is BaseErrc::kUnavailable "HTTP <status> <code>: <message>",
// taken from IoT Hub's error body ({"code", "message"} or "Message":"ErrorCode:<code>;…") or
// DPS's ({"errorCode": 404201, "message"}) or Azure Digital Twins' ({"error":{"code","message"}});
// usage errors are BaseErrc::kInvalidArgument.
// Messages never contain a token or key.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>

#include <boost/json/fwd.hpp>

#include "api/service_cli.h"
#include "base/error.h"
#include "net/http.h"

namespace orrery::api::cli {

inline constexpr std::string_view kJsonType = "application/json; charset=utf-8";

Error Usage(std::string message);
// The string member `key` of `o`, or "".
std::string Str(const boost::json::object& o, std::string_view key);
// One line of at most 300 characters, for text from the server in an error message.
std::string OneLine(std::string_view text);
Error Refusal(const net::HttpResponse& response);

struct Request {
  std::string method;
  std::string path;  // encoded, may carry a query
  std::string body;  // JSON when not empty (sent with kJsonType)
  net::Headers headers;
  std::chrono::milliseconds timeout{30000};
};
// Sends `r` to c.url + path with `api_version` and the token, whatever the answer's status.
Result<net::HttpResponse> Exchange(const ServiceConnection& c, Request r,
                                   std::string_view api_version);
// The same, with a status of 300 or more as the server's refusal.
Result<net::HttpResponse> Send(const ServiceConnection& c, Request r, std::string_view api_version);

// Prints the answer's body as pretty JSON (verbatim when it is not JSON; nothing when it is
// empty), or returns the request's error.
Status Print(std::FILE* out, const Result<net::HttpResponse>& r);
Result<boost::json::value> BodyJson(const net::HttpResponse& r);
Result<boost::json::object> BodyObject(const net::HttpResponse& r);
// Parses a JSON command-line argument: a usage error naming the flag when malformed (or, with
// `object`, not an object).
Result<boost::json::value> JsonArg(std::string_view text, std::string_view flag, bool object);

}  // namespace orrery::api::cli
