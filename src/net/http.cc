#include "net/http.h"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "base/strings.h"
#include "net/http_detail.h"

namespace orrery::net {

void Headers::Add(std::string name, std::string value) {
  items_.emplace_back(std::move(name), std::move(value));
}

void Headers::Set(std::string name, std::string value) {
  std::erase_if(items_, [&](auto& h) { return strings::IEquals(h.first, name); });
  items_.emplace_back(std::move(name), std::move(value));
}

std::optional<std::string_view> Headers::Get(std::string_view name) const {
  for (auto& [k, v] : items_) {
    if (strings::IEquals(k, name)) return std::string_view(v);
  }
  return std::nullopt;
}

std::optional<std::string_view> HttpRequest::Query(std::string_view key) const {
  for (auto& [k, v] : query) {
    if (k == key) return std::string_view(v);
  }
  return std::nullopt;
}

std::string_view HttpRequest::Param(std::string_view name) const {
  auto it = params.find(name);
  return it == params.end() ? std::string_view() : std::string_view(it->second);
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.headers.Set("Content-Type", "application/json; charset=utf-8");
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.headers.Set("Content-Type", "text/plain; charset=utf-8");
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::Empty(int status) {
  HttpResponse r;
  r.status = status;
  return r;
}

HttpResponse HttpResponse::JsonError(int status, std::string_view code, std::string_view message) {
  boost::json::object o;
  o["Message"] = "ErrorCode:" + std::string(code) + ";" + std::string(message);
  o["ExceptionMessage"] = "";
  o["code"] = code;
  o["message"] = message;
  return Json(status, boost::json::serialize(o));
}

void Responder::Send(HttpResponse response) const {
  state_->Deliver(std::move(response));
}

bool Responder::Closed() const {
  return state_->closed.load(std::memory_order_relaxed);
}

namespace detail {

void ResponderState::Deliver(HttpResponse response) {
  if (sent.exchange(true)) return;
  deliver(std::move(response));
}

ResponderState::~ResponderState() {
  if (!sent.exchange(true) && deliver) {
    deliver(HttpResponse::JsonError(500, "InternalServerError", "the request was not answered"));
  }
}

}  // namespace detail

namespace {

std::vector<std::string> SplitPath(std::string_view path) {
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  std::vector<std::string> out;
  if (path.empty() || path == "/") return out;
  if (path.front() == '/') path.remove_prefix(1);
  for (auto seg : strings::Split(path, '/'))
    out.emplace_back(seg);
  return out;
}

bool IsCapture(const std::string& seg) {
  return seg.size() >= 2 && seg.front() == '{' && seg.back() == '}';
}

// Returns the number of literal segments matched, or -1 for no match.
int MatchRoute(const Router::Route& route, const std::vector<std::string>& raw,
               std::map<std::string, std::string, std::less<>>* params) {
  const auto& pat = route.segments;
  int literals = 0;
  size_t i = 0;
  for (; i < pat.size(); ++i) {
    const std::string& p = pat[i];
    if (IsCapture(p) && p[1] == '*') {
      std::string rest;
      for (size_t j = i; j < raw.size(); ++j)
        rest += (j == i ? "" : "/") + raw[j];
      if (params) (*params)[p.substr(2, p.size() - 3)] = strings::UrlDecode(rest).value_or(rest);
      return literals;
    }
    if (i >= raw.size()) return -1;
    auto decoded = strings::UrlDecode(raw[i]);
    if (!decoded) return -1;
    if (IsCapture(p)) {
      if (decoded->empty()) return -1;
      if (params) (*params)[p.substr(1, p.size() - 2)] = *decoded;
    } else {
      if (p != *decoded) return -1;
      ++literals;
    }
  }
  return i == raw.size() ? literals : -1;
}

}  // namespace

void Router::Add(std::string_view method, std::string_view pattern, HttpHandler handler,
                 RouteOptions options) {
  routes_.push_back(Route{std::string(method), SplitPath(pattern), std::move(handler), options});
}

void Router::AddWebSocket(WebSocketRoute route) {
  websockets_.push_back(std::move(route));
}

Router::Match Router::Find(std::string_view method, std::string_view raw_path) const {
  auto raw = SplitPath(raw_path);
  Match best;
  int best_score = -1;
  for (auto& r : routes_) {
    int score = MatchRoute(r, raw, nullptr);
    if (score < 0) continue;
    if (r.method != method) {
      best.other_method = true;
      continue;
    }
    if (score > best_score) {
      best_score = score;
      best.route = &r;
    }
  }
  if (best.route) MatchRoute(*best.route, raw, &best.params);
  return best;
}

const WebSocketRoute* Router::FindWebSocket(std::string_view raw_path) const {
  for (auto& w : websockets_) {
    if (w.path == raw_path) return &w;
  }
  return nullptr;
}

void ParseTarget(std::string_view target, std::string& path,
                 std::vector<std::pair<std::string, std::string>>& query) {
  auto [p, q] = strings::SplitOnce(target, '?');
  path = std::string(p);
  query.clear();
  if (!q) return;
  for (auto part : strings::Split(*q, '&')) {
    if (part.empty()) continue;
    auto [k, v] = strings::SplitOnce(part, '=');
    auto dk = strings::UrlDecode(k, true);
    auto dv = strings::UrlDecode(v.value_or(""), true);
    query.emplace_back(dk.value_or(std::string(k)), dv.value_or(std::string(v.value_or(""))));
  }
}

}  // namespace orrery::net
