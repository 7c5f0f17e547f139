#include "api/hub_http.h"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/time.h"
#include "hub/errc.h"
#include "hub/policies.h"
#include "hub/rate_limit.h"

namespace orrery::api {
namespace json = boost::json;

net::HttpResponse ErrorResponse(int status, std::string_view code, int numeric,
                                std::string_view message) {
  json::object o;
  o["Message"] = fmt::format("ErrorCode:{};{}", code, message);
  o["ExceptionMessage"] = "";
  o["errorCode"] = numeric;
  o["code"] = code;
  o["message"] = message;
  o["timestampUtc"] = timeutil::FormatUtcMs(timeutil::NowMs());
  return net::HttpResponse::Json(status, json::serialize(o));
}

net::HttpResponse ErrorResponse(const Error& error) {
  auto w = hub::ToWireError(error);
  return ErrorResponse(w.status, w.code, w.numeric, error.message());
}

net::HttpResponse JsonResponse(int status, const json::value& body) {
  return net::HttpResponse::Json(status, json::serialize(body));
}

Result<json::value> ParseJsonBody(const net::HttpRequest& request, bool allow_empty) {
  std::string_view body = request.body;
  while (!body.empty() && (body.front() == ' ' || body.front() == '\n' || body.front() == '\r' ||
                           body.front() == '\t')) {
    body.remove_prefix(1);
  }
  if (body.empty()) {
    if (allow_empty) return json::value(nullptr);
    return Error(hub::Errc::kInvalidArgument, "the request needs a JSON body");
  }
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) {
    return Error(hub::Errc::kInvalidArgument,
                 fmt::format("the request body is not valid JSON: {}", ec.message()));
  }
  return v;
}

net::HttpResponse ThrottledResponse(int64_t wait_ms, std::string_view who) {
  int64_t seconds = std::max<int64_t>(1, (wait_ms + 999) / 1000);
  auto r =
      ErrorResponse(Error(hub::Errc::kThrottled,
                          fmt::format("{} is over its rate limit; retry in {} s", who, seconds)));
  r.headers.Set("Retry-After", std::to_string(seconds));
  return r;
}

std::optional<net::HttpResponse> CheckServiceAuth(const hub::PolicyStore& policies,
                                                  const net::HttpRequest& request,
                                                  uint32_t permissions, bool any,
                                                  hub::RateLimiter* limits) {
  auto token = request.headers.Get("Authorization");
  if (!token) {
    return ErrorResponse(Error(hub::Errc::kUnauthorized,
                               "missing credentials: send 'Authorization: SharedAccessSignature "
                               "sr=…&sig=…&se=…&skn=<policy>'"));
  }
  int64_t now_s = timeutil::NowMs() / 1000;
  // With `any`, authenticate first and then check that one of the bits is granted.
  auto r = policies.Authenticate(*token, any ? 0 : permissions, now_s);
  if (!r) return ErrorResponse(r.error());
  if (any && (r->permissions & permissions) == 0) {
    return ErrorResponse(
        Error(hub::Errc::kForbidden, fmt::format("policy '{}' lacks the {} permission", r->name,
                                                 hub::PermissionsToString(permissions))));
  }
  if (limits) {
    if (int64_t wait = limits->Take(r->name); wait > 0) {
      return ThrottledResponse(wait, fmt::format("policy '{}'", r->name));
    }
  }
  return std::nullopt;
}

std::string IfMatch(const net::HttpRequest& request) {
  auto v = request.headers.Get("If-Match");
  return v ? std::string(*v) : std::string();
}

}  // namespace orrery::api
