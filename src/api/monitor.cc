#include "api/monitor.h"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "api/service_cli.h"
#include "base/strings.h"
#include "net/websocket_client.h"

namespace orrery::api {
namespace json = boost::json;

namespace {

std::string Str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace

std::string FormatMonitoredEvent(const json::object& event, const MonitorOptions& options) {
  json::object sys;
  if (auto* s = event.if_contains("systemProperties"); s && s->is_object()) sys = s->as_object();
  json::object e;
  e["origin"] = Str(sys, "iothub-connection-device-id");
  e["module"] = Str(sys, "iothub-connection-module-id");
  e["interface"] = Str(sys, "dt-dataschema");
  e["component"] = Str(sys, "dt-subject");
  std::string body = Str(event, "body");
  boost::system::error_code ec;
  json::value parsed =
      Str(event, "bodyEncoding") == "utf-8" ? json::parse(body, ec) : json::value();
  e["payload"] = (Str(event, "bodyEncoding") == "utf-8" && !ec) ? parsed : json::value(body);
  if (options.annotations) {
    json::object anno;
    for (auto& [k, v] : sys)
      if (strings::StartsWith(k, "iothub-") || strings::StartsWith(k, "x-opt-")) anno[k] = v;
    anno["x-opt-sequence-number"] = event.at("sequenceNumber");
    anno["x-opt-offset"] = event.at("offset");
    anno["x-opt-enqueued-time"] = event.at("enqueuedTime");
    anno["x-opt-partition-id"] = event.at("partition");
    e["annotations"] = std::move(anno);
  }
  if (options.system_properties || options.application_properties) {
    json::object props;
    if (options.system_properties) {
      json::object s;
      for (auto& [k, v] : sys)
        if (!strings::StartsWith(k, "iothub-")) s[k] = v;
      props["system"] = std::move(s);
    }
    if (options.application_properties) {
      auto* app = event.if_contains("properties");
      props["application"] = app ? *app : json::object();
    }
    e["properties"] = std::move(props);
  }
  return PrettyJson(json::object{{"event", std::move(e)}});
}

Status MonitorEvents(const MonitorOptions& o, std::FILE* out, std::FILE* err) {
  std::string url = o.url;
  if (strings::StartsWith(url, "https://")) {
    url = "wss://" + url.substr(8);
  } else if (strings::StartsWith(url, "http://")) {
    url = "ws://" + url.substr(7);
  }
  while (!url.empty() && url.back() == '/')
    url.pop_back();
  url += fmt::format("/eventhub/events?consumerGroup={}&from={}",
                     strings::UrlEncode(o.consumer_group), strings::UrlEncode(o.from));
  if (o.partition) url += fmt::format("&partition={}", *o.partition);
  if (!o.device_id.empty()) url += "&deviceId=" + strings::UrlEncode(o.device_id);

  net::WebSocketClientOptions wo;
  wo.tls = o.tls;
  wo.headers.Add("Authorization", o.token);
  ORRERY_ASSIGN_OR_RETURN(auto client, net::WebSocketClient::Connect(url, std::move(wo)));
  fmt::print(
      err, "Starting event monitor{}, use ctrl-c to stop...\n",
      o.device_id.empty() ? std::string() : fmt::format(", filtering on device: {}", o.device_id));
  std::fflush(err);
  uint64_t seen = 0;
  while (o.count == 0 || seen < o.count) {
    auto deadline = o.idle_timeout.count() > 0 ? std::chrono::steady_clock::now() + o.idle_timeout
                                               : std::chrono::steady_clock::time_point::max();
    auto message = client->Read(deadline);
    if (!message) return message.error();
    if (!*message) {
      fmt::print(err, "No event for {} s: stopping.\n", o.idle_timeout.count());
      break;
    }
    boost::system::error_code ec;
    json::value v = json::parse(**message, ec);
    if (ec || !v.is_object()) continue;
    auto& m = v.as_object();
    std::string type = Str(m, "type");
    if (type == "event") {
      fmt::print(out, "{}\n", FormatMonitoredEvent(m, o));
      std::fflush(out);
      ++seen;
    } else if (type == "skipped") {
      fmt::print(err, "warning: {} events of partition {} expired before they were read\n",
                 json::serialize(m.at("count")), json::serialize(m.at("partition")));
    } else if (type == "error") {
      return Error(BaseErrc::kUnavailable,
                   fmt::format("the server ended the stream: {}", Str(m, "message")));
    }
  }
  client->Close();
  return Ok();
}

}  // namespace orrery::api
