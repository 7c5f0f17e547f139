// Date-times and the functions the ASA dialect adds to the shared library: the desugared
// T-SQL forms ($CASE, $CASE_VALUE, $LIKE, $IS_NULL, CAST, TRY_CAST), COALESCE, NULLIF.
#include <cmath>
#include <cstdio>
#include <limits>

#include <boost/json/serialize.hpp>

#include "base/strings.h"
#include "stream/plan.h"

namespace orrery::stream {

namespace {

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

bool Digits(std::string_view s, size_t at, size_t n, int& out) {
  if (at + n > s.size()) return false;
  out = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

std::optional<Micros> ParseDateTime(std::string_view s) {
  int y, mo, d, h = 0, mi = 0, sec = 0;
  if (!Digits(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !Digits(s, 5, 2, mo) || s[7] != '-' ||
      !Digits(s, 8, 2, d)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return std::nullopt;
  size_t i = 10;
  Micros frac = 0;
  if (i < s.size() && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
    if (!Digits(s, i + 1, 2, h) || i + 3 >= s.size() || s[i + 3] != ':' ||
        !Digits(s, i + 4, 2, mi)) {
      return std::nullopt;
    }
    i += 6;
    if (i < s.size() && s[i] == ':') {
      if (!Digits(s, i + 1, 2, sec)) return std::nullopt;
      i += 3;
      if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
        ++i;
        Micros scale = 100000;
        size_t n = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
          frac += (s[i] - '0') * scale;
          scale /= 10;
          ++i;
          ++n;
        }
        if (n == 0) return std::nullopt;
      }
    }
    if (h > 23 || mi > 59 || sec > 59) return std::nullopt;
  }
  int64_t offset_min = 0;
  if (i < s.size()) {
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == s.size()) {
      ++i;
    } else if (s[i] == '+' || s[i] == '-') {
      int oh, om = 0;
      if (!Digits(s, i + 1, 2, oh)) return std::nullopt;
      size_t j = i + 3;
      if (j < s.size() && s[j] == ':') ++j;
      if (j < s.size() && !Digits(s, j, 2, om)) return std::nullopt;
      if (j < s.size()) j += 2;
      if (j != s.size()) return std::nullopt;
      offset_min = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
      i = j;
    } else {
      return std::nullopt;
    }
  }
  int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
  return secs * kSecond + frac;
}

std::string FormatDateTime(Micros t) {
  int64_t secs = t >= 0 ? t / kSecond : -((-t + kSecond - 1) / kSecond);
  int64_t frac = t - secs * kSecond;
  int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  int64_t rem = secs - days * 86400;
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, y, m, d);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%06lld0Z",
                static_cast<long long>(y), m, d, static_cast<long long>(rem / 3600),
                static_cast<long long>(rem / 60 % 60), static_cast<long long>(rem % 60),
                static_cast<long long>(frac));
  return buf;
}

namespace internal {

namespace {

using query::Value;
namespace json = boost::json;

bool IsNullish(const Value& v) {
  return !v.defined() || v->is_null();
}

Value CaseSearched(std::span<Value> a) {
  for (size_t i = 0; i + 1 < a.size(); i += 2) {
    if (query::IsTrue(a[i])) return std::move(a[i + 1]);
  }
  return std::move(a.back());
}

Value CaseValue(std::span<Value> a) {
  for (size_t i = 1; i + 1 < a.size(); i += 2) {
    if (a[0].defined() && a[i].defined()) {
      auto eq = query::Equal(*a[0], *a[i]);
      if (eq && *eq) return std::move(a[i + 1]);
    }
  }
  return std::move(a.back());
}

// SQL LIKE: % any run, _ one code point, [abc] / [a-c] / [^abc] one of a set.
bool LikeMatch(std::string_view s, std::string_view p) {
  auto next_cp = [](std::string_view t, size_t i) {
    size_t j = i + 1;
    while (j < t.size() && (static_cast<unsigned char>(t[j]) & 0xC0) == 0x80)
      ++j;
    return j;
  };
  size_t si = 0, pi = 0, star_p = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    bool matched = false;
    size_t pn = pi;
    if (pi < p.size() && p[pi] == '%') {
      star_p = ++pi;
      star_s = si;
      continue;
    }
    if (pi < p.size() && p[pi] == '_') {
      matched = true;
      pn = pi + 1;
    } else if (pi < p.size() && p[pi] == '[') {
      size_t close = p.find(']', pi + 1);
      if (close != std::string_view::npos) {
        std::string_view set = p.substr(pi + 1, close - pi - 1);
        bool neg = !set.empty() && set[0] == '^';
        if (neg) set.remove_prefix(1);
        char c = s[si];
        bool in = false;
        for (size_t k = 0; k < set.size(); ++k) {
          if (k + 2 < set.size() && set[k + 1] == '-') {
            if (c >= set[k] && c <= set[k + 2]) in = true;
            k += 2;
          } else if (set[k] == c) {
            in = true;
          }
        }
        matched = in != neg;
        pn = close + 1;
      } else {
        matched = s[si] == '[';
        pn = pi + 1;
      }
    } else if (pi < p.size()) {
      size_t len = next_cp(p, pi) - pi;
      matched = s.substr(si, len) == p.substr(pi, len);
      pn = pi + len;
    }
    if (matched) {
      si = p[pi] == '_' || p[pi] == '[' ? next_cp(s, si) : si + (pn - pi);
      pi = pn;
    } else if (star_p != std::string_view::npos) {
      si = next_cp(s, star_s);
      star_s = si;
      pi = star_p;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '%')
    ++pi;
  return pi == p.size();
}

Value Like(std::span<Value> a) {
  if (!a[0].defined() || !a[1].defined() || !a[0]->is_string() || !a[1]->is_string()) return {};
  return Value::Bool(LikeMatch(a[0]->get_string(), a[1]->get_string()));
}

Value IsNull(std::span<Value> a) {
  return Value::Bool(IsNullish(a[0]));
}

Value Coalesce(std::span<Value> a) {
  for (auto& v : a) {
    if (!IsNullish(v)) return std::move(v);
  }
  return Value(json::value(nullptr));
}

Value NullIf(std::span<Value> a) {
  if (a[0].defined() && a[1].defined()) {
    auto eq = query::Equal(*a[0], *a[1]);
    if (eq && *eq) return Value(json::value(nullptr));
  }
  return std::move(a[0]);
}

}  // namespace

// nullopt: the conversion fails. A null or undefined input is null.
std::optional<json::value> CastTo(const Value& v, std::string_view type) {
  if (IsNullish(v)) return json::value(nullptr);
  const json::value& x = *v;
  if (type == "bigint") {
    if (x.is_int64()) return x;
    if (x.is_uint64()) {
      if (x.get_uint64() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return std::nullopt;
      return json::value(static_cast<int64_t>(x.get_uint64()));
    }
    if (x.is_double()) {
      double d = std::trunc(x.get_double());
      if (!(d >= -9.2e18 && d <= 9.2e18)) return std::nullopt;
      return json::value(static_cast<int64_t>(d));
    }
    if (x.is_bool()) return json::value(int64_t{x.get_bool() ? 1 : 0});
    if (x.is_string()) {
      std::string s(strings::Trim(x.get_string()));
      if (s.empty()) return std::nullopt;
      char* end = nullptr;
      errno = 0;
      long long n = std::strtoll(s.c_str(), &end, 10);
      if (errno != 0 || *end != 0) return std::nullopt;
      return json::value(static_cast<int64_t>(n));
    }
    return std::nullopt;
  }
  if (type == "float") {
    if (x.is_number()) return json::value(query::ToDouble(x));
    if (x.is_bool()) return json::value(x.get_bool() ? 1.0 : 0.0);
    if (x.is_string()) {
      std::string s(strings::Trim(x.get_string()));
      if (s.empty()) return std::nullopt;
      char* end = nullptr;
      double d = std::strtod(s.c_str(), &end);
      if (*end != 0 || !std::isfinite(d)) return std::nullopt;
      return json::value(d);
    }
    return std::nullopt;
  }
  if (type == "nvarchar(max)" || type == "nvarchar") {
    if (x.is_string()) return x;
    if (x.is_bool()) return json::value(x.get_bool() ? "true" : "false");
    return json::value(json::serialize(x));
  }
  if (type == "datetime") {
    if (!x.is_string()) return std::nullopt;
    auto t = ParseDateTime(x.get_string());
    if (!t) return std::nullopt;
    return json::value(FormatDateTime(*t));
  }
  if (type == "bit") {
    if (x.is_bool()) return x;
    if (x.is_number()) return json::value(query::ToDouble(x) != 0);
    if (x.is_string()) {
      std::string s = strings::ToLower(strings::Trim(x.get_string()));
      if (s == "true" || s == "1") return json::value(true);
      if (s == "false" || s == "0") return json::value(false);
    }
    return std::nullopt;
  }
  if (type == "record") return x.is_object() ? std::optional<json::value>(x) : std::nullopt;
  if (type == "array") return x.is_array() ? std::optional<json::value>(x) : std::nullopt;
  return std::nullopt;
}

bool KnownType(std::string_view type) {
  for (std::string_view t :
       {"bigint", "float", "nvarchar(max)", "nvarchar", "datetime", "bit", "record", "array"}) {
    if (t == type) return true;
  }
  return false;
}

namespace {

// CAST and TRY_CAST both give null when the conversion fails (ASA fails CAST per the job's
// error policy; see docs/stream.md).
Value Cast(std::span<Value> a) {
  if (!a[1].defined() || !a[1]->is_string()) return {};
  auto out = CastTo(a[0], a[1]->get_string());
  return Value(out ? std::move(*out) : json::value(nullptr));
}

}  // namespace

const query::FunctionRegistry& StreamFunctions() {
  static const query::FunctionRegistry registry = [] {
    query::FunctionRegistry r = query::FunctionRegistry::Builtins();
    constexpr uint8_t kVar = query::FunctionRegistry::kVariadic;
    r.Add("$CASE", 1, kVar, CaseSearched);
    r.Add("$CASE_VALUE", 2, kVar, CaseValue);
    r.Add("$LIKE", 2, 2, Like);
    r.Add("$IS_NULL", 1, 1, IsNull);
    r.Add("CAST", 2, 2, Cast);
    r.Add("TRY_CAST", 2, 2, Cast);
    r.Add("COALESCE", 1, kVar, Coalesce);
    r.Add("NULLIF", 2, 2, NullIf);
    return r;
  }();
  return registry;
}

}  // namespace internal
}  // namespace orrery::stream
