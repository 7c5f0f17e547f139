#include "hub/mqtt_topics.h"

#include <charconv>

#include <fmt/format.h>

#include "base/strings.h"
#include "base/time.h"
#include "hub/errc.h"

namespace orrery::hub::mqtt_topics {

namespace {

// The value of `key` in a query string "a=1&b=2" (raw, undecoded), or nullopt.
std::optional<std::string_view> QueryValue(std::string_view query, std::string_view key) {
  for (auto piece : strings::Split(query, '&')) {
    auto [k, v] = strings::SplitOnce(piece, '=');
    if (k == key) return v.value_or("");
  }
  return std::nullopt;
}

bool ParseStatus(std::string_view s, int& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && out >= 100 && out <= 999;
}

// Splits "path/?query" or "path?query" into (path, query).
std::pair<std::string_view, std::string_view> SplitQuery(std::string_view topic) {
  auto q = topic.find('?');
  if (q == std::string_view::npos) return {topic, {}};
  std::string_view path = topic.substr(0, q);
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  return {path, topic.substr(q + 1)};
}

std::string DeviceBase(std::string_view device_id, std::string_view module_id) {
  std::string base = "devices/" + std::string(device_id) + "/";
  if (!module_id.empty()) base += "modules/" + std::string(module_id) + "/";
  return base;
}

}  // namespace

std::optional<HubUserName> ParseUserName(std::string_view user) {
  auto q = user.find("/?");
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view path = user.substr(0, q), query = user.substr(q + 2);
  auto api = QueryValue(query, "api-version");
  if (!api) return std::nullopt;
  auto slash = path.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 >= path.size()) {
    return std::nullopt;
  }
  HubUserName u;
  u.host = std::string(path.substr(0, slash));
  u.client_id = std::string(path.substr(slash + 1));
  u.api_version = std::string(*api);
  // The model id is inserted raw (it holds ':' and ';'), the client type encoded.
  if (auto m = QueryValue(query, "model-id")) {
    auto decoded = strings::UrlDecode(*m);
    u.model_id = decoded ? *decoded : std::string(*m);
  }
  if (auto c = QueryValue(query, "DeviceClientType")) {
    auto decoded = strings::UrlDecode(*c);
    u.client_type = decoded ? *decoded : std::string(*c);
  }
  return u;
}

std::pair<std::string_view, std::string_view> SplitClientId(std::string_view client_id) {
  auto slash = client_id.find('/');
  if (slash == std::string_view::npos) return {client_id, {}};
  return {client_id.substr(0, slash), client_id.substr(slash + 1)};
}

Result<std::vector<std::pair<std::string, std::string>>> ParsePropertyBag(std::string_view bag) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto piece : strings::Split(bag, '&')) {
    if (piece.empty()) continue;
    auto [k, v] = strings::SplitOnce(piece, '=');
    auto key = strings::UrlDecode(k);
    auto value = strings::UrlDecode(v.value_or(""));
    if (!key || !value) {
      return Error(Errc::kInvalidArgument, "the topic's property bag has a malformed %-escape");
    }
    if (key->empty()) continue;
    out.emplace_back(std::move(*key), std::move(*value));
  }
  return out;
}

DeviceTopic ClassifyPublish(std::string_view topic, std::string_view device_id,
                            std::string_view module_id) {
  DeviceTopic t;
  std::string events = DeviceBase(device_id, module_id) + "messages/events";
  if (topic == events || topic.starts_with(events + "/")) {
    t.kind = Kind::kTelemetry;
    std::string_view bag = topic.substr(std::min(topic.size(), events.size() + 1));
    // Module output events end with an extra '/' after the bag (§2.4).
    if (!bag.empty() && bag.back() == '/') bag.remove_suffix(1);
    t.bag = std::string(bag);
    return t;
  }
  if (!topic.starts_with("$iothub/")) return t;
  auto [path, query] = SplitQuery(topic);
  auto rid = QueryValue(query, "$rid");
  if (rid) t.request_id = std::string(*rid);
  if (path == "$iothub/twin/GET") {
    if (!t.request_id.empty()) t.kind = Kind::kTwinGet;
  } else if (path == "$iothub/twin/PATCH/properties/reported") {
    if (!t.request_id.empty()) t.kind = Kind::kTwinPatchReported;
  } else if (path.starts_with("$iothub/methods/res/")) {
    std::string_view status = path.substr(20);
    if (!t.request_id.empty() && ParseStatus(status, t.status)) t.kind = Kind::kMethodResponse;
  }
  return t;
}

bool DeviceMaySubscribe(std::string_view filter, std::string_view device_id,
                        std::string_view module_id) {
  if (filter == "$iothub/twin/res/#" || filter == "$iothub/methods/POST/#" ||
      filter == "$iothub/twin/PATCH/properties/desired/#") {
    return true;
  }
  std::string base = DeviceBase(device_id, module_id);
  if (module_id.empty()) {
    std::string c2d = base + "messages/devicebound/";
    return filter == c2d + "#" || (filter.starts_with(c2d) && filter.find('+') == filter.npos);
  }
  return filter == base + "inputs/#";
}

bool IsHubTopic(std::string_view t) {
  // Wildcards like "#" are fine for plain clients: hub traffic is never routed through the
  // topic tree (device publishes are taken by the hub, deliveries to devices are direct).
  return t.starts_with("devices/") || t == "devices" || t.starts_with("$iothub");
}

Result<eventlog::Message> TelemetryFromBag(std::string_view bag, std::string body) {
  ORRERY_ASSIGN_OR_RETURN(auto props, ParsePropertyBag(bag));
  eventlog::Message m;
  m.body = std::move(body);
  auto& s = m.system;
  for (auto& [k, v] : props) {
    if (k == "$.mid") {
      s.message_id = std::move(v);
    } else if (k == "$.cid") {
      s.correlation_id = std::move(v);
    } else if (k == "$.uid") {
      s.user_id = std::move(v);
    } else if (k == "$.to") {
      s.to = std::move(v);
    } else if (k == "$.ct") {
      s.content_type = std::move(v);
    } else if (k == "$.ce") {
      s.content_encoding = std::move(v);
    } else if (k == "$.exp") {
      auto ms = timeutil::ParseUtcMs(v);
      if (!ms) {
        return Error(Errc::kInvalidArgument, fmt::format("$.exp '{}' is not an ISO 8601 time", v));
      }
      s.expiry_time_ms = *ms;
    } else if (k == "$.ifid") {
      m.properties.emplace_back("iothub-interface-id", std::move(v));
    } else if (k == "$.sub") {
      m.properties.emplace_back("dt-subject", std::move(v));
    } else if (k == "$.on") {
      m.properties.emplace_back("iothub-outputname", std::move(v));
    } else if (k == "$.schema") {
      m.properties.emplace_back("dt-dataschema", std::move(v));
    } else if (k == "$.cdid") {
      m.properties.emplace_back("iothub-creation-device-id", std::move(v));
    } else {
      m.properties.emplace_back(std::move(k), std::move(v));
    }
  }
  return m;
}

std::string C2dTopic(std::string_view device_id, const C2dMessage& m) {
  std::string bag;
  auto add = [&](std::string_view k, std::string_view v) {
    if (v.empty()) return;
    if (!bag.empty()) bag += '&';
    bag += strings::UrlEncode(k);
    bag += '=';
    bag += strings::UrlEncode(v);
  };
  add("$.mid", m.message_id);
  add("$.cid", m.correlation_id);
  add("$.uid", m.user_id);
  add("$.to", m.to);
  add("$.ct", m.content_type);
  add("$.ce", m.content_encoding);
  if (m.expiry_ms) add("$.exp", timeutil::FormatUtcMs(m.expiry_ms));
  for (auto& [k, v] : m.properties) {
    if (!bag.empty()) bag += '&';
    bag += strings::UrlEncode(k);
    bag += '=';
    bag += strings::UrlEncode(v);
  }
  return "devices/" + std::string(device_id) + "/messages/devicebound/" + bag;
}

}  // namespace orrery::hub::mqtt_topics
