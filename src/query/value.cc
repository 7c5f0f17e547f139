#include "query/value.h"

#include <cmath>

namespace orrery::query {

Kind KindOf(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return Kind::kNull;
    case json::kind::bool_:
      return Kind::kBool;
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return Kind::kNumber;
    case json::kind::string:
      return Kind::kString;
    case json::kind::array:
      return Kind::kArray;
    case json::kind::object:
      return Kind::kObject;
  }
  return Kind::kUndefined;
}

std::string_view KindName(Kind k) {
  switch (k) {
    case Kind::kUndefined:
      return "undefined";
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return "boolean";
    case Kind::kNumber:
      return "number";
    case Kind::kString:
      return "string";
    case Kind::kArray:
      return "array";
    case Kind::kObject:
      return "object";
  }
  return "unknown";
}

namespace {

// Exact for every int64, uint64 and double: long double has a 64-bit significand on the
// platforms we build for, and where it does not the error is only in the last bits of
// integers beyond 2^53, which JSON producers cannot represent portably anyway.
long double Wide(const json::value& v) {
  switch (v.kind()) {
    case json::kind::int64:
      return static_cast<long double>(v.get_int64());
    case json::kind::uint64:
      return static_cast<long double>(v.get_uint64());
    default:
      return static_cast<long double>(v.get_double());
  }
}

int Sign3(long double d) {
  return d < 0 ? -1 : (d > 0 ? 1 : 0);
}

// The number as a double when that is exact: doubles, and integers within ±2^53. Comparing
// two of these as doubles is exact and much cheaper than Wide's long double.
bool ExactDouble(const json::value& v, double& out) {
  constexpr int64_t kExact = int64_t{1} << 53;
  if (v.is_double()) {
    out = v.get_double();
    return true;
  }
  if (v.is_int64() && v.get_int64() >= -kExact && v.get_int64() <= kExact) {
    out = static_cast<double>(v.get_int64());
    return true;
  }
  return false;
}

}  // namespace

std::optional<int> Compare(const json::value& a, const json::value& b) {
  Kind ka = KindOf(a);
  if (ka != KindOf(b)) return std::nullopt;
  switch (ka) {
    case Kind::kNull:
      return 0;
    case Kind::kBool:
      return static_cast<int>(a.get_bool()) - static_cast<int>(b.get_bool());
    case Kind::kNumber:
      if (a.is_int64() && b.is_int64()) {
        int64_t x = a.get_int64(), y = b.get_int64();
        return x < y ? -1 : (x > y ? 1 : 0);
      }
      if (double x, y; ExactDouble(a, x) && ExactDouble(b, y)) return x < y ? -1 : (x > y ? 1 : 0);
      return Sign3(Wide(a) - Wide(b));
    case Kind::kString: {
      std::string_view x = a.get_string(), y = b.get_string();
      int c = x.compare(y);
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    default:
      return std::nullopt;
  }
}

std::optional<bool> Equal(const json::value& a, const json::value& b) {
  if (a.is_string() && b.is_string()) return a.get_string() == b.get_string();
  auto c = Compare(a, b);
  if (!c) return std::nullopt;
  return *c == 0;
}

Value MakeNumber(double d) {
  if (!std::isfinite(d)) return {};
  constexpr double kExact = 9007199254740992.0;  // 2^53
  if (d >= -kExact && d <= kExact && d == std::trunc(d)) {
    return Value(json::value(static_cast<int64_t>(d)));
  }
  return Value(json::value(d));
}

double ToDouble(const json::value& v) {
  switch (v.kind()) {
    case json::kind::int64:
      return static_cast<double>(v.get_int64());
    case json::kind::uint64:
      return static_cast<double>(v.get_uint64());
    default:
      return v.get_double();
  }
}

std::optional<int64_t> ToInt64(const json::value& v) {
  switch (v.kind()) {
    case json::kind::int64:
      return v.get_int64();
    case json::kind::uint64:
      if (v.get_uint64() > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
      return static_cast<int64_t>(v.get_uint64());
    case json::kind::double_: {
      double d = v.get_double();
      // The range check is on doubles that convert exactly: [-2^63, 2^63).
      if (d != std::trunc(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0) {
        return std::nullopt;
      }
      return static_cast<int64_t>(d);
    }
    default:
      return std::nullopt;
  }
}

}  // namespace orrery::query
