#include "routing/config.h"

#include <cctype>
#include <set>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/strings.h"
#include "routing/annotation.h"
#include "routing/errc.h"

namespace orrery::routing {
namespace json = boost::json;

namespace {

Error Invalid(std::string m) {
  return Error(Errc::kInvalidConfig, std::move(m));
}

constexpr std::pair<Source, std::string_view> kSources[] = {
    {Source::kDeviceMessages, "DeviceMessages"},
    {Source::kTwinChangeEvents, "TwinChangeEvents"},
    {Source::kDeviceLifecycleEvents, "DeviceLifecycleEvents"},
    {Source::kDeviceConnectionStateEvents, "DeviceConnectionStateEvents"},
    {Source::kDeviceJobLifecycleEvents, "DeviceJobLifecycleEvents"},
};

const json::object* Object(const json::value* v) {
  return v ? v->if_object() : nullptr;
}

Result<std::string> Str(const json::object& o, std::string_view key, std::string_view what,
                        bool required, std::string fallback = {}) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) {
    if (required) return Invalid(fmt::format("{} needs \"{}\"", what, key));
    return fallback;
  }
  if (!v->is_string()) return Invalid(fmt::format("{}: \"{}\" must be a string", what, key));
  return std::string(v->get_string());
}

Result<int64_t> Int(const json::object& o, std::string_view key, std::string_view what,
                    int64_t fallback, int64_t min, int64_t max) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return fallback;
  boost::system::error_code ec;
  int64_t n = v->to_number<int64_t>(ec);
  if (ec) return Invalid(fmt::format("{}: \"{}\" must be a whole number", what, key));
  if (n < min || n > max) {
    return Invalid(fmt::format("{}: \"{}\" must be {}..{} (got {})", what, key, min, max, n));
  }
  return n;
}

Result<bool> Bool(const json::object& o, std::string_view key, std::string_view what,
                  bool fallback) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return fallback;
  if (!v->is_bool()) return Invalid(fmt::format("{}: \"{}\" must be true or false", what, key));
  return v->get_bool();
}

Result<std::vector<std::string>> Names(const json::object& o, std::string_view what) {
  std::vector<std::string> out;
  auto* v = o.if_contains("endpointNames");
  if (!v || !v->is_array() || v->get_array().empty()) {
    return Invalid(fmt::format("{} needs \"endpointNames\": a non-empty array", what));
  }
  for (auto& n : v->get_array()) {
    if (!n.is_string()) return Invalid(fmt::format("{}: endpoint names are strings", what));
    out.emplace_back(n.get_string());
  }
  return out;
}

const json::array* Array(const json::object* o, std::string_view key) {
  auto* v = o ? o->if_contains(key) : nullptr;
  return v ? v->if_array() : nullptr;
}

Status CheckRelativePath(std::string_view path, std::string_view what) {
  if (path.empty()) return Ok();
  if (path.front() == '/' || path.find("..") != std::string_view::npos ||
      path.find('\0') != std::string_view::npos) {
    return Invalid(fmt::format("{}: \"path\" must be relative, without \"..\"", what));
  }
  return Ok();
}

}  // namespace

std::string_view SourceName(Source s) {
  for (auto& [v, n] : kSources) {
    if (v == s) return n;
  }
  return "DeviceMessages";
}

Result<Source> ParseSource(std::string_view name) {
  for (auto& [v, n] : kSources) {
    if (n == name) return v;
  }
  return Invalid(fmt::format(
      "route source '{}' is not one of DeviceMessages, TwinChangeEvents, DeviceLifecycleEvents, "
      "DeviceConnectionStateEvents, DeviceJobLifecycleEvents",
      name));
}

Status CheckEndpointName(std::string_view name) {
  if (strings::IsSimpleName(name, 64) && std::isalnum(static_cast<unsigned char>(name.front())) &&
      std::isalnum(static_cast<unsigned char>(name.back()))) {
    return Ok();
  }
  return Invalid(fmt::format(
      "endpoint name '{}' must be 1-64 letters, digits, '-', '_', '.', starting and ending "
      "with a letter or digit",
      name));
}

Result<RoutingConfig> ConfigFromJson(const json::value& v, const ConfigLimits& limits) {
  auto* root = v.if_object();
  if (!root) return Invalid("the routing configuration must be a JSON object");
  RoutingConfig c;
  std::set<std::string> endpoints{std::string(kBuiltInEndpoint)};
  auto add_endpoint = [&](const std::string& name) -> Status {
    ORRERY_TRY(CheckEndpointName(name));
    if (name == kBuiltInEndpoint) {
      return Invalid("\"events\" is the built-in endpoint; custom endpoints need other names");
    }
    if (!endpoints.insert(name).second) {
      return Invalid(fmt::format("two endpoints are named '{}'", name));
    }
    return Ok();
  };
  auto* eps = Object(root->if_contains("endpoints"));
  if (auto* list = Array(eps, "storageContainers")) {
    for (auto& item : *list) {
      auto* o = item.if_object();
      if (!o) return Invalid("a storage endpoint must be an object");
      StorageEndpoint s;
      ORRERY_ASSIGN_OR_RETURN(s.name, Str(*o, "name", "a storage endpoint", true));
      std::string what = fmt::format("storage endpoint '{}'", s.name);
      ORRERY_TRY(add_endpoint(s.name));
      ORRERY_ASSIGN_OR_RETURN(s.path, Str(*o, "path", what, false, s.name));
      ORRERY_TRY(CheckRelativePath(s.path, what));
      ORRERY_ASSIGN_OR_RETURN(s.file_name_format,
                              Str(*o, "fileNameFormat", what, false, s.file_name_format));
      ORRERY_ASSIGN_OR_RETURN(s.batch_frequency_s,
                              Int(*o, "batchFrequencyInSeconds", what, s.batch_frequency_s,
                                  limits.min_batch_frequency_s, 720));
      ORRERY_ASSIGN_OR_RETURN(s.max_chunk_bytes, Int(*o, "maxChunkSizeInBytes", what,
                                                     s.max_chunk_bytes, 10ll << 20, 500ll << 20));
      ORRERY_ASSIGN_OR_RETURN(std::string encoding, Str(*o, "encoding", what, false, "avro"));
      for (auto& ch : encoding)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (encoding == "avro") {
        s.encoding = Encoding::kAvro;
      } else if (encoding == "avrodeflate") {
        s.encoding = Encoding::kAvroDeflate;
      } else if (encoding == "json") {
        s.encoding = Encoding::kJson;
      } else {
        return Invalid(fmt::format("{}: \"encoding\" must be avro, avroDeflate or json", what));
      }
      c.storage.push_back(std::move(s));
    }
  }
  if (auto* list = Array(eps, "webhooks")) {
    for (auto& item : *list) {
      auto* o = item.if_object();
      if (!o) return Invalid("a webhook endpoint must be an object");
      WebhookEndpoint w;
      ORRERY_ASSIGN_OR_RETURN(w.name, Str(*o, "name", "a webhook endpoint", true));
      std::string what = fmt::format("webhook endpoint '{}'", w.name);
      ORRERY_TRY(add_endpoint(w.name));
      ORRERY_ASSIGN_OR_RETURN(w.url, Str(*o, "url", what, true));
      if (!w.url.starts_with("https://")) {
        return Invalid(fmt::format("{}: \"url\" must be an https:// URL", what));
      }
      ORRERY_ASSIGN_OR_RETURN(w.secret, Str(*o, "secret", what, false));
      ORRERY_ASSIGN_OR_RETURN(w.max_batch_size,
                              Int(*o, "maxBatchSize", what, w.max_batch_size, 1, 1000));
      ORRERY_ASSIGN_OR_RETURN(w.max_attempts, Int(*o, "maxAttempts", what, w.max_attempts, 1, 100));
      ORRERY_ASSIGN_OR_RETURN(w.timeout_s, Int(*o, "timeoutInSeconds", what, w.timeout_s, 1, 120));
      ORRERY_ASSIGN_OR_RETURN(std::string format, Str(*o, "format", what, false));
      if (format == "cloudEvents") {
        w.format = WebhookEndpoint::Format::kCloudEvents;
      } else if (format == "jsonArray") {
        w.format = WebhookEndpoint::Format::kJsonArray;
      } else if (!format.empty() && format != "routingRecord") {
        return Invalid(fmt::format(
            "{}: \"format\" must be \"routingRecord\", \"cloudEvents\" or \"jsonArray\"", what));
      }
      c.webhooks.push_back(std::move(w));
    }
  }
  if (c.storage.size() + c.webhooks.size() > limits.max_endpoints) {
    return Invalid(fmt::format("at most {} custom endpoints", limits.max_endpoints));
  }
  std::set<std::string> route_names;
  if (auto* list = Array(root, "routes")) {
    if (list->size() > limits.max_routes) {
      return Invalid(fmt::format("at most {} routes", limits.max_routes));
    }
    for (auto& item : *list) {
      auto* o = item.if_object();
      if (!o) return Invalid("a route must be an object");
      Route r;
      ORRERY_ASSIGN_OR_RETURN(r.name, Str(*o, "name", "a route", true));
      std::string what = fmt::format("route '{}'", r.name);
      if (r.name.empty() || r.name.size() > 64 || !route_names.insert(r.name).second) {
        return Invalid(fmt::format("{}: route names are 1-64 characters and unique", what));
      }
      ORRERY_ASSIGN_OR_RETURN(std::string source, Str(*o, "source", what, false, "DeviceMessages"));
      ORRERY_ASSIGN_OR_RETURN(r.source, ParseSource(source));
      ORRERY_ASSIGN_OR_RETURN(r.condition, Str(*o, "condition", what, false, "true"));
      if (r.condition.empty()) r.condition = "true";
      ORRERY_ASSIGN_OR_RETURN(r.endpoints, Names(*o, what));
      for (auto& e : r.endpoints) {
        if (!endpoints.count(e)) {
          return Invalid(fmt::format("{} names endpoint '{}', which does not exist", what, e));
        }
      }
      ORRERY_ASSIGN_OR_RETURN(r.enabled, Bool(*o, "isEnabled", what, true));
      c.routes.push_back(std::move(r));
    }
  }
  if (auto* fb = Object(root->if_contains("fallbackRoute"))) {
    ORRERY_ASSIGN_OR_RETURN(c.fallback_enabled, Bool(*fb, "isEnabled", "the fallback route", true));
  }
  if (auto* list = Array(root, "enrichments")) {
    if (list->size() > limits.max_enrichments) {
      return Invalid(fmt::format("at most {} enrichments", limits.max_enrichments));
    }
    for (auto& item : *list) {
      auto* o = item.if_object();
      if (!o) return Invalid("an enrichment must be an object");
      Enrichment e;
      ORRERY_ASSIGN_OR_RETURN(e.key, Str(*o, "key", "an enrichment", true));
      std::string what = fmt::format("enrichment '{}'", e.key);
      if (e.key.empty() || e.key.size() > 64)
        return Invalid(fmt::format("{}: keys are 1-64 characters", what));
      ORRERY_ASSIGN_OR_RETURN(e.value, Str(*o, "value", what, true));
      if (e.value.size() > 128)
        return Invalid(fmt::format("{}: values are at most 128 characters", what));
      if (e.value.starts_with("$") && e.value != "$iothubname" &&
          !e.value.starts_with("$twin.tags") && !e.value.starts_with("$twin.properties.")) {
        return Invalid(
            fmt::format("{}: a value starting with '$' must be $iothubname, $twin.tags… or "
                        "$twin.properties…",
                        what));
      }
      ORRERY_ASSIGN_OR_RETURN(e.endpoints, Names(*o, what));
      for (auto& n : e.endpoints) {
        if (!endpoints.count(n)) {
          return Invalid(fmt::format("{} names endpoint '{}', which does not exist", what, n));
        }
      }
      c.enrichments.push_back(std::move(e));
    }
  }
  return c;
}

json::object ConfigToJson(const RoutingConfig& c, bool with_secrets) {
  json::array storage, webhooks, routes, enrichments;
  for (auto& s : c.storage) {
    storage.push_back(json::object{{"name", s.name},
                                   {"path", s.path},
                                   {"fileNameFormat", s.file_name_format},
                                   {"batchFrequencyInSeconds", s.batch_frequency_s},
                                   {"maxChunkSizeInBytes", s.max_chunk_bytes},
                                   {"encoding", s.encoding == Encoding::kAvro   ? "avro"
                                                : s.encoding == Encoding::kJson ? "json"
                                                                                : "avroDeflate"}});
  }
  for (auto& w : c.webhooks) {
    json::object o{{"name", w.name},
                   {"url", w.url},
                   {"maxBatchSize", w.max_batch_size},
                   {"maxAttempts", w.max_attempts},
                   {"timeoutInSeconds", w.timeout_s},
                   {"format", w.format == WebhookEndpoint::Format::kCloudEvents ? "cloudEvents"
                              : w.format == WebhookEndpoint::Format::kJsonArray ? "jsonArray"
                                                                                : "routingRecord"}};
    if (with_secrets) {
      o["secret"] = w.secret;
    } else if (!w.secret.empty()) {
      o["secret"] = "********";
    }
    webhooks.push_back(std::move(o));
  }
  auto names = [](const std::vector<std::string>& v) {
    json::array a;
    for (auto& n : v)
      a.emplace_back(n);
    return a;
  };
  for (auto& r : c.routes) {
    routes.push_back(json::object{{"name", r.name},
                                  {"source", SourceName(r.source)},
                                  {"condition", r.condition},
                                  {"endpointNames", names(r.endpoints)},
                                  {"isEnabled", r.enabled}});
  }
  for (auto& e : c.enrichments) {
    enrichments.push_back(
        json::object{{"key", e.key}, {"value", e.value}, {"endpointNames", names(e.endpoints)}});
  }
  return json::object{{"endpoints", json::object{{"storageContainers", std::move(storage)},
                                                 {"webhooks", std::move(webhooks)}}},
                      {"routes", std::move(routes)},
                      {"fallbackRoute", json::object{{"name", "$fallback"},
                                                     {"source", "DeviceMessages"},
                                                     {"condition", "true"},
                                                     {"endpointNames", json::array{"events"}},
                                                     {"isEnabled", c.fallback_enabled}}},
                      {"enrichments", std::move(enrichments)}};
}

}  // namespace orrery::routing
