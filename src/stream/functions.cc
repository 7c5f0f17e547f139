// Date-times and the functions the ASA dialect adds to the shared library: the desugared
// T-SQL forms ($CASE, $CASE_VALUE, $LIKE, $IS_NULL, CAST, TRY_CAST), COALESCE, NULLIF, the
// date and time functions (DATEADD, DATEDIFF, DATEPART, DATENAME, DATETIMEFROMPARTS, YEAR,
// MONTH, DAY), the record and array functions (GetRecordPropertyValue, GetArrayElement,
// GetArrayLength), GetType and the bitwise operators ($BITAND, $BITOR, $BITXOR, $BITNOT); the
// geospatial functions are in geo.cc.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include <boost/json/serialize.hpp>

#include "base/strings.h"
#include "query/evaluator.h"
#include "stream/geo.h"
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

// "YYYY-MM-DDTHH:MM:SS[.f…]Z", the form of nearly every TIMESTAMP BY value: parsed in one
// pass (ParseDateTime's hot path). nullopt: not exactly that form (the general parser decides).
std::optional<Micros> ParseUtcFast(std::string_view s) {
  if (s.size() < 20 || s.size() > 30 || s.back() != 'Z' || s[4] != '-' || s[7] != '-' ||
      s[10] != 'T' || s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  auto digit = [&](size_t i) { return static_cast<unsigned>(s[i] - '0'); };
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18}) {
    if (digit(i) > 9) return std::nullopt;
  }
  unsigned y = digit(0) * 1000 + digit(1) * 100 + digit(2) * 10 + digit(3);
  unsigned mo = digit(5) * 10 + digit(6), d = digit(8) * 10 + digit(9);
  unsigned h = digit(11) * 10 + digit(12), mi = digit(14) * 10 + digit(15);
  unsigned sec = digit(17) * 10 + digit(18);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) return std::nullopt;
  Micros frac = 0;
  size_t i = 19;
  if (s[i] == '.') {
    Micros scale = 100000;
    for (++i; i + 1 < s.size(); ++i, scale /= 10) {
      if (digit(i) > 9) return std::nullopt;
      frac += digit(i) * scale;
    }
    if (i == 20) return std::nullopt;
  }
  if (i + 1 != s.size()) return std::nullopt;
  int64_t days = DaysFromCivil(y, mo, d);
  return (days * 86400 + h * 3600 + mi * 60 + sec) * kSecond + frac;
}

}  // namespace

std::optional<Micros> ParseDateTime(std::string_view s) {
  if (auto t = ParseUtcFast(s)) return t;
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
  if (y < 0 || y > 9999) {
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%06lld0Z",
                  static_cast<long long>(y), m, d, static_cast<long long>(rem / 3600),
                  static_cast<long long>(rem / 60 % 60), static_cast<long long>(rem % 60),
                  static_cast<long long>(frac));
    return buf;
  }
  // The common case without snprintf (System.Timestamp() of every window row).
  auto put = [](char* at, int64_t v, int width) {
    for (int i = width - 1; i >= 0; --i, v /= 10)
      at[i] = static_cast<char>('0' + v % 10);
  };
  std::memcpy(buf, "0000-00-00T00:00:00.0000000Z", 28);
  put(buf, y, 4);
  put(buf + 5, m, 2);
  put(buf + 8, d, 2);
  put(buf + 11, rem / 3600, 2);
  put(buf + 14, rem / 60 % 60, 2);
  put(buf + 17, rem % 60, 2);
  put(buf + 20, frac, 6);
  return std::string(buf, 28);
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

bool KnownDatePart(std::string_view part);

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

namespace {

// ---- date and time

std::optional<Micros> TimeArg(const Value& v) {
  if (!v.defined() || !v->is_string()) return std::nullopt;
  return ParseDateTime(v->get_string());
}

std::optional<int64_t> IntArg(const Value& v) {
  if (!v.defined() || !v->is_number()) return std::nullopt;
  double d = query::ToDouble(*v);
  if (!(d >= -9.2e18 && d <= 9.2e18)) return std::nullopt;
  return static_cast<int64_t>(std::trunc(d));
}

struct Civil {
  int64_t year;
  unsigned month, day;
  int64_t micros_of_day;
};

int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

Civil ToCivil(Micros t) {
  int64_t days = FloorDiv(t, 86400 * kSecond);
  Civil c{};
  CivilFromDays(days, c.year, c.month, c.day);
  c.micros_of_day = t - days * 86400 * kSecond;
  return c;
}

Micros FromCivil(int64_t y, unsigned m, unsigned d, Micros of_day) {
  return DaysFromCivil(y, m, d) * 86400 * kSecond + of_day;
}

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// The date part, as the binder passes it (a lower-cased name): its canonical name or "".
std::string_view Part(const Value& v) {
  if (!v.defined() || !v->is_string()) return "";
  std::string_view p = v->get_string();
  static constexpr std::pair<std::string_view, std::string_view> kParts[] = {
      {"year", "year"},       {"yy", "year"},
      {"yyyy", "year"},       {"quarter", "quarter"},
      {"qq", "quarter"},      {"q", "quarter"},
      {"month", "month"},     {"mm", "month"},
      {"m", "month"},         {"dayofyear", "dayofyear"},
      {"dy", "dayofyear"},    {"y", "dayofyear"},
      {"day", "day"},         {"dd", "day"},
      {"d", "day"},           {"week", "week"},
      {"wk", "week"},         {"ww", "week"},
      {"weekday", "weekday"}, {"dw", "weekday"},
      {"w", "weekday"},       {"hour", "hour"},
      {"hh", "hour"},         {"minute", "minute"},
      {"mi", "minute"},       {"n", "minute"},
      {"second", "second"},   {"ss", "second"},
      {"s", "second"},        {"millisecond", "millisecond"},
      {"ms", "millisecond"},  {"microsecond", "microsecond"},
      {"mcs", "microsecond"}};
  for (auto [alias, name] : kParts) {
    if (p == alias) return name;
  }
  return "";
}

}  // namespace

bool KnownDatePart(std::string_view part) {
  return !Part(Value::String(part)).empty();
}

namespace {

Micros FixedUnit(std::string_view part) {
  if (part == "week") return 7 * 86400 * kSecond;
  if (part == "day" || part == "dayofyear" || part == "weekday") return 86400 * kSecond;
  if (part == "hour") return 3600 * kSecond;
  if (part == "minute") return 60 * kSecond;
  if (part == "second") return kSecond;
  if (part == "millisecond") return 1000;
  if (part == "microsecond") return 1;
  return 0;
}

// Adds whole months, clamping the day to the target month's length (T-SQL's DATEADD).
Micros AddMonths(Micros t, int64_t months) {
  Civil c = ToCivil(t);
  int64_t total = c.year * 12 + (c.month - 1) + months;
  int64_t y = FloorDiv(total, 12);
  unsigned m = static_cast<unsigned>(total - y * 12) + 1;
  unsigned d = std::min(c.day, DaysInMonth(y, m));
  return FromCivil(y, m, d, c.micros_of_day);
}

constexpr int64_t kMaxYearSpan = 10'000;  // keeps every result inside years 0..9999-ish

Value DateAdd(std::span<Value> a) {
  std::string_view part = Part(a[0]);
  auto n = IntArg(a[1]);
  auto t = TimeArg(a[2]);
  if (part.empty() || !n || !t || *n > kMaxYearSpan * 366 * 86400LL * 1000 ||
      *n < -kMaxYearSpan * 366 * 86400LL * 1000) {
    return Value(json::value(nullptr));
  }
  Micros out;
  if (part == "year") {
    if (*n > kMaxYearSpan || *n < -kMaxYearSpan) return Value(json::value(nullptr));
    out = AddMonths(*t, *n * 12);
  } else if (part == "quarter" || part == "month") {
    if (*n > kMaxYearSpan * 12 || *n < -kMaxYearSpan * 12) return Value(json::value(nullptr));
    out = AddMonths(*t, part == "quarter" ? *n * 3 : *n);
  } else {
    Micros unit = FixedUnit(part);
    if (unit > 1 && (*n > INT64_MAX / unit / 4 || *n < -(INT64_MAX / unit / 4))) {
      return Value(json::value(nullptr));
    }
    out = *t + *n * unit;
  }
  if (ToCivil(out).year < 1 || ToCivil(out).year > 9999) return Value(json::value(nullptr));
  return Value::String(FormatDateTime(out));
}

// The number of `part` boundaries crossed from a to b (T-SQL's DATEDIFF).
Value DateDiff(std::span<Value> a) {
  std::string_view part = Part(a[0]);
  auto from = TimeArg(a[1]);
  auto to = TimeArg(a[2]);
  if (part.empty() || !from || !to) return Value(json::value(nullptr));
  Civil x = ToCivil(*from), y = ToCivil(*to);
  int64_t out;
  if (part == "year") {
    out = y.year - x.year;
  } else if (part == "quarter") {
    out = (y.year * 4 + (y.month - 1) / 3) - (x.year * 4 + (x.month - 1) / 3);
  } else if (part == "month") {
    out = (y.year * 12 + y.month) - (x.year * 12 + x.month);
  } else if (part == "week") {
    // Weeks start on Sunday; 1970-01-01 was a Thursday (day 4 of its week).
    auto week = [](Micros t) { return FloorDiv(FloorDiv(t, 86400 * kSecond) + 4, 7); };
    out = week(*to) - week(*from);
  } else {
    Micros unit = FixedUnit(part);
    out = FloorDiv(*to, unit) - FloorDiv(*from, unit);
  }
  return Value(json::value(out));
}

std::optional<int64_t> PartOf(std::string_view part, Micros t) {
  Civil c = ToCivil(t);
  if (part == "year") return c.year;
  if (part == "quarter") return (c.month - 1) / 3 + 1;
  if (part == "month") return c.month;
  if (part == "day") return c.day;
  if (part == "dayofyear") {
    return DaysFromCivil(c.year, c.month, c.day) - DaysFromCivil(c.year, 1, 1) + 1;
  }
  int64_t days = FloorDiv(t, 86400 * kSecond);
  if (part == "weekday") return FloorDiv(days + 4, 1) % 7 + 1;  // Sunday = 1
  if (part == "week") {
    int64_t jan1 = DaysFromCivil(c.year, 1, 1);
    int64_t jan1_weekday = ((jan1 + 4) % 7 + 7) % 7;  // 0 = Sunday
    return (days - jan1 + jan1_weekday) / 7 + 1;
  }
  if (part == "hour") return c.micros_of_day / (3600 * kSecond);
  if (part == "minute") return c.micros_of_day / (60 * kSecond) % 60;
  if (part == "second") return c.micros_of_day / kSecond % 60;
  if (part == "millisecond") return c.micros_of_day / 1000 % 1000;
  if (part == "microsecond") return c.micros_of_day % kSecond;
  return std::nullopt;
}

Value DatePart(std::span<Value> a) {
  std::string_view part = Part(a[0]);
  auto t = TimeArg(a[1]);
  if (part.empty() || !t) return Value(json::value(nullptr));
  auto v = PartOf(part, *t);
  return v ? Value(json::value(*v)) : Value(json::value(nullptr));
}

Value DateName(std::span<Value> a) {
  static constexpr std::string_view kMonths[] = {"January",   "February", "March",    "April",
                                                 "May",       "June",     "July",     "August",
                                                 "September", "October",  "November", "December"};
  static constexpr std::string_view kDays[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                               "Thursday", "Friday", "Saturday"};
  std::string_view part = Part(a[0]);
  auto t = TimeArg(a[1]);
  if (part.empty() || !t) return Value(json::value(nullptr));
  auto v = PartOf(part, *t);
  if (!v) return Value(json::value(nullptr));
  if (part == "month") return Value::String(kMonths[*v - 1]);
  if (part == "weekday") return Value::String(kDays[*v - 1]);
  return Value::String(std::to_string(*v));
}

Value DateTimeFromParts(std::span<Value> a) {
  int64_t p[7];
  for (size_t i = 0; i < 7; ++i) {
    auto n = IntArg(a[i]);
    if (!n) return Value(json::value(nullptr));
    p[i] = *n;
  }
  if (p[0] < 1 || p[0] > 9999 || p[1] < 1 || p[1] > 12 || p[2] < 1 ||
      p[2] > DaysInMonth(p[0], static_cast<unsigned>(p[1])) || p[3] < 0 || p[3] > 23 || p[4] < 0 ||
      p[4] > 59 || p[5] < 0 || p[5] > 59 || p[6] < 0 || p[6] > 999) {
    return Value(json::value(nullptr));
  }
  Micros of_day = ((p[3] * 60 + p[4]) * 60 + p[5]) * kSecond + p[6] * 1000;
  return Value::String(FormatDateTime(
      FromCivil(p[0], static_cast<unsigned>(p[1]), static_cast<unsigned>(p[2]), of_day)));
}

template <int kWhich>
Value CivilPart(std::span<Value> a) {
  auto t = TimeArg(a[0]);
  if (!t) return Value(json::value(nullptr));
  Civil c = ToCivil(*t);
  int64_t v = kWhich == 0 ? c.year : kWhich == 1 ? c.month : c.day;
  return Value(json::value(v));
}

// ---- records and arrays

// GetRecordPropertyValue(record, 'a.b.c'): a path of property names into nested records.
Value GetRecordPropertyValue(std::span<Value> a) {
  if (!a[0].defined() || !a[0]->is_object() || !a[1].defined() || !a[1]->is_string()) {
    return Value(json::value(nullptr));
  }
  const json::value* cur = &*a[0];
  for (auto piece : strings::Split(a[1]->get_string(), '.')) {
    if (!cur->is_object()) return Value(json::value(nullptr));
    cur = cur->get_object().if_contains(piece);
    if (!cur) return Value(json::value(nullptr));
  }
  return Value(*cur);
}

// GetMetadataPropertyValue(input, '[User].[name]' | 'EventEnqueuedUtcTime' | 'IoTHub.…'): an
// application property from the event's metadata (kMetadataMember), or a metadata field of
// the event itself. Brackets quote names that contain dots.
Value GetMetadataPropertyValue(std::span<Value> a) {
  if (!a[0].defined() || !a[0]->is_object() || !a[1].defined() || !a[1]->is_string()) {
    return Value(json::value(nullptr));
  }
  std::vector<std::string> parts;
  std::string_view path = a[1]->get_string();
  while (!path.empty()) {
    std::string_view part;
    if (path.front() == '[') {
      size_t close = path.find(']');
      if (close == std::string_view::npos) return Value(json::value(nullptr));
      part = path.substr(1, close - 1);
      path.remove_prefix(close + 1);
    } else {
      size_t dot = path.find('.');
      part = path.substr(0, dot);
      path.remove_prefix(dot == std::string_view::npos ? path.size() : dot);
    }
    parts.emplace_back(part);
    if (!path.empty()) {
      if (path.front() != '.') return Value(json::value(nullptr));
      path.remove_prefix(1);
    }
  }
  if (parts.empty()) return Value(json::value(nullptr));
  const json::object& event = a[0]->get_object();
  const json::value* cur = nullptr;
  size_t from = 0;
  if (strings::IEquals(parts[0], "User") && parts.size() == 2) {
    auto* meta = event.if_contains(kMetadataMember);
    if (!meta || !meta->is_object()) return Value(json::value(nullptr));
    auto* user = meta->get_object().if_contains("User");
    cur = user;
    from = 1;
  } else {
    // EventHub.IoTConnectionDeviceId and friends: the Event Hubs names of IoTHub's fields.
    if (parts.size() == 2 && strings::IEquals(parts[0], "EventHub") &&
        parts[1].starts_with("IoT")) {
      parts = {"IoTHub", parts[1].substr(3)};
    }
    const json::object* obj = &event;
    for (size_t i = 0; i < parts.size(); ++i) {
      const json::value* next = nullptr;
      for (auto& kv : *obj) {
        if (strings::IEquals(kv.key(), parts[i])) next = &kv.value();
      }
      if (!next) return Value(json::value(nullptr));
      if (i + 1 == parts.size()) return Value(*next);
      if (!next->is_object()) return Value(json::value(nullptr));
      obj = &next->get_object();
    }
    return Value(json::value(nullptr));
  }
  for (size_t i = from; cur && i < parts.size(); ++i) {
    if (!cur->is_object()) return Value(json::value(nullptr));
    cur = cur->get_object().if_contains(parts[i]);
  }
  return cur ? Value(*cur) : Value(json::value(nullptr));
}

Value GetArrayElement(std::span<Value> a) {
  auto i = IntArg(a[1]);
  if (!a[0].defined() || !a[0]->is_array() || !i || *i < 0 ||
      static_cast<uint64_t>(*i) >= a[0]->get_array().size()) {
    return Value(json::value(nullptr));
  }
  return Value(a[0]->get_array()[static_cast<size_t>(*i)]);
}

Value GetArrayLength(std::span<Value> a) {
  if (!a[0].defined() || !a[0]->is_array()) return Value(json::value(nullptr));
  return Value(json::value(static_cast<int64_t>(a[0]->get_array().size())));
}

// ASA's type names of a value.
Value GetType(std::span<Value> a) {
  if (IsNullish(a[0])) return Value(json::value(nullptr));
  const json::value& v = *a[0];
  if (v.is_int64() || v.is_uint64()) return Value::String("bigint");
  if (v.is_double()) return Value::String("float");
  if (v.is_bool()) return Value::String("bit");
  if (v.is_object()) return Value::String("record");
  if (v.is_array()) return Value::String("array");
  if (v.is_string() && ParseDateTime(v.get_string()) && v.get_string().size() >= 19) {
    return Value::String("datetime");
  }
  return Value::String("nvarchar(max)");
}

// ---- bitwise (& | ^ ~ on bit and bigint)

// An operand of a bitwise operator: a bit (boolean) or a bigint (an integral number that fits
// int64). nullopt for anything else.
struct BitOperand {
  int64_t value;
  bool is_bit;
};
std::optional<BitOperand> BitArg(const Value& v) {
  if (v->is_bool()) return BitOperand{v->get_bool() ? 1 : 0, true};
  if (auto i = query::ToInt64(*v)) return BitOperand{*i, false};
  return std::nullopt;
}

// ASA: bit op bit is a bit, anything with a bigint is a bigint; null in, null out.
template <int kOp>
Value Bitwise(std::span<Value> a) {
  if (IsNullish(a[0]) || IsNullish(a[1])) return Value(json::value(nullptr));
  auto x = BitArg(a[0]);
  auto y = BitArg(a[1]);
  if (!x || !y) return {};
  int64_t r = kOp == 0   ? (x->value & y->value)
              : kOp == 1 ? (x->value | y->value)
                         : (x->value ^ y->value);
  if (x->is_bit && y->is_bit) return Value::Bool(r != 0);
  return Value(json::value(r));
}

Value BitNot(std::span<Value> a) {
  if (IsNullish(a[0])) return Value(json::value(nullptr));
  auto x = BitArg(a[0]);
  if (!x) return {};
  if (x->is_bit) return Value::Bool(x->value == 0);
  return Value(json::value(~x->value));
}

// Arithmetic as ASA has it: a null operand gives null (a missing one still gives no value);
// otherwise the shared operators'.
bool IsJsonNull(const Value& v) {
  return v.defined() && v->is_null();
}

template <query::BinaryOp kOp>
Value NullArithmetic(std::span<Value> a) {
  if (IsJsonNull(a[0]) || IsJsonNull(a[1])) return Value(json::value(nullptr));
  return query::Arithmetic(kOp, a[0], a[1]);
}

Value NullNegate(std::span<Value> a) {
  if (IsJsonNull(a[0])) return Value(json::value(nullptr));
  json::value zero(int64_t{0});
  return query::Arithmetic(query::BinaryOp::kSub, Value::Borrow(zero), a[0]);
}
}  // namespace

const query::FunctionRegistry& StreamFunctions() {
  static const query::FunctionRegistry registry = [] {
    query::FunctionRegistry r = query::FunctionRegistry::Builtins();
    constexpr uint8_t kVar = query::FunctionRegistry::kVariadic;
    r.Add("$CASE", 1, kVar, CaseSearched);
    r.Add("$CASE_VALUE", 2, kVar, CaseValue);
    r.Add("$LIKE", 2, 2, Like);
    r.Add("$ADD", 2, 2, NullArithmetic<query::BinaryOp::kAdd>);
    r.Add("$SUB", 2, 2, NullArithmetic<query::BinaryOp::kSub>);
    r.Add("$MUL", 2, 2, NullArithmetic<query::BinaryOp::kMul>);
    r.Add("$DIV", 2, 2, NullArithmetic<query::BinaryOp::kDiv>);
    r.Add("$MOD", 2, 2, NullArithmetic<query::BinaryOp::kMod>);
    r.Add("$NEG", 1, 1, NullNegate);
    r.Add("$IS_NULL", 1, 1, IsNull);
    r.Add("CAST", 2, 2, Cast);
    r.Add("TRY_CAST", 2, 2, Cast);
    r.Add("COALESCE", 1, kVar, Coalesce);
    r.Add("NULLIF", 2, 2, NullIf);
    r.Add("DATEADD", 3, 3, DateAdd);
    r.Add("DATEDIFF", 3, 3, DateDiff);
    r.Add("DATEPART", 2, 2, DatePart);
    r.Add("DATENAME", 2, 2, DateName);
    r.Add("DATETIMEFROMPARTS", 7, 7, DateTimeFromParts);
    r.Add("YEAR", 1, 1, CivilPart<0>);
    r.Add("MONTH", 1, 1, CivilPart<1>);
    r.Add("DAY", 1, 1, CivilPart<2>);
    r.Add("GETRECORDPROPERTYVALUE", 2, 2, GetRecordPropertyValue);
    r.Add("GETMETADATAPROPERTYVALUE", 2, 2, GetMetadataPropertyValue);
    r.Add("GETARRAYELEMENT", 2, 2, GetArrayElement);
    r.Add("GETARRAYLENGTH", 1, 1, GetArrayLength);
    r.Add("GETTYPE", 1, 1, GetType);
    r.Add("$BITAND", 2, 2, Bitwise<0>);
    r.Add("$BITOR", 2, 2, Bitwise<1>);
    r.Add("$BITXOR", 2, 2, Bitwise<2>);
    r.Add("$BITNOT", 1, 1, BitNot);
    AddGeoFunctions(r);
    return r;
  }();
  return registry;
}

}  // namespace internal
}  // namespace orrery::stream
