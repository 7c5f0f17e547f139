// Lenient readers of members of stored JSON records (the hub's own encodings): a missing or
// mistyped member reads as the fallback, so that decoding a record never throws.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

namespace orrery::hub {

inline std::string StringField(const boost::json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

inline int64_t IntField(const boost::json::object& o, std::string_view key, int64_t fallback = 0) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return fallback;
  boost::system::error_code ec;
  auto n = v->to_number<int64_t>(ec);
  return ec ? fallback : n;
}

}  // namespace orrery::hub
