#include "routing/annotation.h"

#include <algorithm>

#include <boost/json.hpp>

namespace orrery::routing {
namespace json = boost::json;

std::string EncodeAnnotation(const Annotation& a) {
  json::object o;
  json::array e;
  for (auto& name : a.endpoints)
    e.emplace_back(name);
  o["e"] = std::move(e);
  if (!a.enrichments.empty()) {
    json::object x;
    for (auto& [endpoint, props] : a.enrichments) {
      json::array list;
      for (auto& [k, v] : props)
        list.push_back(json::array{json::string(k), json::string(v)});
      x[endpoint] = std::move(list);
    }
    o["x"] = std::move(x);
  }
  return json::serialize(o);
}

Annotation DecodeAnnotation(std::string_view text) {
  Annotation a;
  if (text.empty()) {
    a.endpoints.emplace_back(kBuiltInEndpoint);
    return a;
  }
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  auto* o = ec ? nullptr : v.if_object();
  auto* e = o ? o->if_contains("e") : nullptr;
  if (!e || !e->is_array()) {
    a.endpoints.emplace_back(kBuiltInEndpoint);
    return a;
  }
  for (auto& name : e->get_array()) {
    if (name.is_string()) a.endpoints.emplace_back(name.get_string());
  }
  if (auto* x = o->if_contains("x"); x && x->is_object()) {
    for (auto& [endpoint, list] : x->get_object()) {
      std::vector<std::pair<std::string, std::string>> props;
      if (list.is_array()) {
        for (auto& kv : list.get_array()) {
          auto* pair = kv.if_array();
          if (pair && pair->size() == 2 && (*pair)[0].is_string() && (*pair)[1].is_string()) {
            props.emplace_back((*pair)[0].get_string(), (*pair)[1].get_string());
          }
        }
      }
      a.enrichments.emplace_back(std::string(endpoint), std::move(props));
    }
  }
  return a;
}

bool RoutedTo(std::string_view annotation, std::string_view endpoint) {
  if (annotation.empty()) return endpoint == kBuiltInEndpoint;
  // Endpoint names cannot contain '"', so the quoted name inside the "e" array identifies it;
  // the array comes first, before any enrichment keys that might spell the same text.
  auto end = annotation.find(']');
  if (end == std::string_view::npos) return endpoint == kBuiltInEndpoint;
  std::string needle = "\"" + std::string(endpoint) + "\"";
  return annotation.substr(0, end).find(needle) != std::string_view::npos;
}

std::vector<std::pair<std::string, std::string>> EnrichmentsFor(std::string_view annotation,
                                                                std::string_view endpoint) {
  if (annotation.find("\"x\"") == std::string_view::npos) return {};
  auto a = DecodeAnnotation(annotation);
  for (auto& [name, props] : a.enrichments) {
    if (name == endpoint) return props;
  }
  return {};
}

}  // namespace orrery::routing
