#include "api/hub_http.h"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/time.h"
#include "hub/errc.h"
#include "hub/policies.h"

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

std::optional<net::HttpResponse> CheckServiceAuth(const hub::PolicyStore& policies,
                                                  const net::HttpRequest& request,
                                                  uint32_t permissions, bool any) {
  auto token = request.headers.Get("Authorization");
  if (!token) {
    return ErrorResponse(Error(hub::Errc::kUnauthorized,
                               "missing credentials: send 'Authorization: SharedAccessSignature "
                               "sr=…&sig=…&se=…&skn=<policy>'"));
  }
  int64_t now_s = timeutil::NowMs() / 1000;
  if (!any) {
    auto r = policies.Authenticate(*token, permissions, now_s);
    if (!r) return ErrorResponse(r.error());
    return std::nullopt;
  }
  // Any one permission suffices: authenticate first, then check the bits.
  auto r = policies.Authenticate(*token, 0, now_s);
  if (!r) return ErrorResponse(r.error());
  if ((r->permissions & permissions) == 0) {
    return ErrorResponse(
        Error(hub::Errc::kForbidden, fmt::format("policy '{}' lacks the {} permission", r->name,
                                                 hub::PermissionsToString(permissions))));
  }
  return std::nullopt;
}

std::string IfMatch(const net::HttpRequest& request) {
  auto v = request.headers.Get("If-Match");
  return v ? std::string(*v) : std::string();
}

}  // namespace orrery::api
