#include "api/cli_http.h"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/strings.h"
#include "net/http_client.h"

namespace orrery::api::cli {
namespace json = boost::json;

Error Usage(std::string message) {
  return Error(BaseErrc::kInvalidArgument, std::move(message));
}

std::string Str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::string OneLine(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 300))
    out += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
  return std::string(strings::Trim(out));
}

Error Refusal(const net::HttpResponse& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  std::string code, text;
  if (!ec && v.is_object()) {
    const auto* obj = &v.get_object();
    // Azure Digital Twins nests it: {"error":{"code","message"}}.
    if (auto* e = obj->if_contains("error"); e && e->is_object()) obj = &e->get_object();
    const auto& o = *obj;
    code = Str(o, "code");
    text = Str(o, "message");
    if (std::string m = Str(o, "Message"); (code.empty() || text.empty()) && !m.empty()) {
      auto [head, rest] = strings::SplitOnce(m, ';');
      if (rest && strings::StartsWith(head, "ErrorCode:")) {
        if (code.empty()) code = std::string(head.substr(10));
        if (text.empty()) text = std::string(*rest);
      } else if (text.empty()) {
        text = m;
      }
    }
    if (code.empty()) {  // DPS: a numeric errorCode
      if (auto* c = o.if_contains("errorCode")) {
        if (c->is_int64()) code = std::to_string(c->get_int64());
        if (c->is_uint64()) code = std::to_string(c->get_uint64());
        if (c->is_string()) code = std::string(c->get_string());
      }
    }
  } else {
    text = r.body;
  }
  std::string what = fmt::format("HTTP {}", r.status);
  if (!code.empty()) what += " " + OneLine(code);
  if (text = OneLine(text); !text.empty()) what += (code.empty() ? " " : ": ") + text;
  return Error(BaseErrc::kUnavailable, what);
}

Result<net::HttpResponse> Exchange(const ServiceConnection& c, Request r,
                                   std::string_view api_version) {
  std::string url = c.url + r.path + (r.path.find('?') == std::string::npos ? "?" : "&") +
                    "api-version=" + std::string(api_version);
  r.headers.Set("Authorization", c.token);
  if (!r.body.empty() && !r.headers.Get("Content-Type")) {
    r.headers.Set("Content-Type", std::string(kJsonType));
  }
  net::HttpClientOptions options;
  options.tls = c.tls;
  options.timeout = r.timeout;
  return net::Fetch(r.method, url, std::move(r.headers), std::move(r.body), options);
}

Result<net::HttpResponse> Send(const ServiceConnection& c, Request r,
                               std::string_view api_version) {
  ORRERY_ASSIGN_OR_RETURN(auto response, Exchange(c, std::move(r), api_version));
  if (response.status >= 300) return Refusal(response);
  return response;
}

Status Print(std::FILE* out, const Result<net::HttpResponse>& r) {
  if (!r) return r.error();
  if (strings::Trim(r->body).empty()) return Ok();
  boost::system::error_code ec;
  json::value v = json::parse(r->body, ec);
  fmt::print(out, "{}\n", ec ? r->body : PrettyJson(v));
  std::fflush(out);
  return Ok();
}

Result<json::value> BodyJson(const net::HttpResponse& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (ec) return Error(BaseErrc::kParse, "the server's answer is not JSON");
  return v;
}

Result<json::object> BodyObject(const net::HttpResponse& r) {
  ORRERY_ASSIGN_OR_RETURN(json::value v, BodyJson(r));
  if (!v.is_object()) return Error(BaseErrc::kParse, "the server's answer is not a JSON object");
  return std::move(v.get_object());
}

Result<json::value> JsonArg(std::string_view text, std::string_view flag, bool object) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return Usage(fmt::format("{} is not valid JSON: {}", flag, ec.message()));
  if (object && !v.is_object()) return Usage(fmt::format("{} must be a JSON object", flag));
  return v;
}

}  // namespace orrery::api::cli
