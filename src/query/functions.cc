#include "query/functions.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <numbers>

#include <boost/json/serialize.hpp>

#include "base/strings.h"

namespace orrery::query {

namespace {
std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

void FunctionRegistry::Add(std::string_view name, uint8_t min_args, uint8_t max_args,
                           FunctionImpl impl) {
  std::string upper = Upper(name);
  by_name_[upper] = Function{upper, min_args, max_args, impl};
}

void FunctionRegistry::AddAlias(std::string_view alias, std::string_view target) {
  const Function* f = Find(target);
  if (f == nullptr) return;
  Function copy = *f;
  by_name_[Upper(alias)] = std::move(copy);
}

void FunctionRegistry::Remove(std::string_view name) {
  by_name_.erase(Upper(name));
}

const Function* FunctionRegistry::Find(std::string_view name) const {
  auto it = by_name_.find(Upper(name));
  return it == by_name_.end() ? nullptr : &it->second;
}

std::vector<std::string> FunctionRegistry::Names() const {
  std::vector<std::string> out;
  for (const auto& [name, f] : by_name_)
    out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

// ---- argument helpers ----

const json::value* Num(const Value& v) {
  return v.defined() && v->is_number() ? &v.get() : nullptr;
}
std::optional<std::string_view> Str(const Value& v) {
  if (!v.defined() || !v->is_string()) return std::nullopt;
  return std::string_view(v->get_string());
}
// An integral number argument (1 and 1.0 alike).
std::optional<int64_t> Int(const Value& v) {
  return v.defined() ? ToInt64(v.get()) : std::nullopt;
}

bool IsContinuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}
size_t CodePoints(std::string_view s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return !IsContinuation(c); }));
}
// Byte offset of code point `n` (s.size() when n is at or past the end).
size_t ByteOffset(std::string_view s, size_t n) {
  size_t i = 0;
  for (; i < s.size(); ++i) {
    if (!IsContinuation(static_cast<unsigned char>(s[i]))) {
      if (n == 0) return i;
      --n;
    }
  }
  return s.size();
}
// Code point `n`..`n+count` of `s`.
std::string_view Slice(std::string_view s, size_t n, size_t count) {
  size_t begin = ByteOffset(s, n);
  std::string_view rest = s.substr(begin);
  return rest.substr(0, ByteOffset(rest, count));
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// ---- type checks ----

template <Kind... kKinds>
Value IsKind(std::span<Value> a) {
  Kind k = KindOf(a[0]);
  return Value::Bool(((k == kKinds) || ...));
}

// ---- math ----

// kFn: a captureless lambda double(double), so that the library below reads as a table.
template <auto kFn>
Value Math1(std::span<Value> a) {
  const json::value* x = Num(a[0]);
  if (x == nullptr) return {};
  return MakeNumber(kFn(ToDouble(*x)));
}

// Integers stay exact through the rounding functions.
template <auto kFn>
Value Rounding(std::span<Value> a) {
  const json::value* x = Num(a[0]);
  if (x == nullptr) return {};
  if (!x->is_double()) return std::move(a[0]);
  return MakeNumber(kFn(x->get_double()));
}

Value Abs(std::span<Value> a) {
  const json::value* x = Num(a[0]);
  if (x == nullptr) return {};
  if (x->is_int64() && x->get_int64() != INT64_MIN) return MakeNumber(std::abs(x->get_int64()));
  if (x->is_uint64()) return std::move(a[0]);
  return MakeNumber(std::fabs(ToDouble(*x)));
}

Value Sign(std::span<Value> a) {
  const json::value* x = Num(a[0]);
  if (x == nullptr) return {};
  double d = ToDouble(*x);
  return MakeNumber(int64_t{d > 0 ? 1 : (d < 0 ? -1 : 0)});
}

Value Square(std::span<Value> a) {
  const json::value* x = Num(a[0]);
  if (x == nullptr) return {};
  int64_t r;
  if (x->is_int64() && !__builtin_mul_overflow(x->get_int64(), x->get_int64(), &r)) {
    return MakeNumber(r);
  }
  double d = ToDouble(*x);
  return MakeNumber(d * d);
}

Value Power(std::span<Value> a) {
  const json::value* x = Num(a[0]);
  const json::value* y = Num(a[1]);
  if (x == nullptr || y == nullptr) return {};
  return MakeNumber(std::pow(ToDouble(*x), ToDouble(*y)));
}

Value Log(std::span<Value> a) {
  const json::value* x = Num(a[0]);
  if (x == nullptr) return {};
  double r = std::log(ToDouble(*x));
  if (a.size() > 1) {
    const json::value* base = Num(a[1]);
    if (base == nullptr) return {};
    r /= std::log(ToDouble(*base));
  }
  return MakeNumber(r);
}

Value Pi(std::span<Value>) {
  return MakeNumber(std::numbers::pi);
}

// ---- casts ----

Value AsNumber(std::span<Value> a) {
  if (Num(a[0]) != nullptr) return std::move(a[0]);
  auto s = Str(a[0]);
  if (!s) return {};
  std::string_view t = strings::Trim(*s);
  const char* b = t.data();
  const char* e = t.data() + t.size();
  int64_t i;
  if (auto r = std::from_chars(b, e, i); r.ec == std::errc() && r.ptr == e && !t.empty()) {
    return MakeNumber(i);
  }
  double d;
  if (auto r = std::from_chars(b, e, d); r.ec == std::errc() && r.ptr == e && !t.empty()) {
    return MakeNumber(d);  // "inf" and "nan" parse, and come out undefined
  }
  return {};
}

Value ToStringFn(std::span<Value> a) {
  if (!a[0].defined()) return {};
  const json::value& v = a[0].get();
  if (v.is_string()) return std::move(a[0]);
  if (v.is_double()) {  // shortest round-trip form: 2.5, not serialize's 2.5E0
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v.get_double());
    return Value::String(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
  }
  return Value::String(json::serialize(v));
}

// ---- strings ----

Value Concat(std::span<Value> a) {
  std::string out;
  for (const Value& v : a) {
    auto s = Str(v);
    if (!s) return {};
    out += *s;
  }
  return Value::String(out);
}

Value Length(std::span<Value> a) {
  auto s = Str(a[0]);
  if (!s) return {};
  return MakeNumber(static_cast<int64_t>(CodePoints(*s)));
}

template <bool kUpper>
Value ChangeCase(std::span<Value> a) {
  auto s = Str(a[0]);
  if (!s) return {};
  std::string out(*s);
  for (char& c : out) {
    if (kUpper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (!kUpper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return Value::String(out);
}

Value Substring(std::span<Value> a) {
  auto s = Str(a[0]);
  auto start = Int(a[1]);
  if (!s || !start) return {};
  int64_t length = INT64_MAX;
  if (a.size() > 2) {
    auto l = Int(a[2]);
    if (!l) return {};
    length = *l;
  }
  if (length <= 0) return Value::String("");
  return Value::String(
      Slice(*s, static_cast<size_t>(std::max<int64_t>(*start, 0)), static_cast<size_t>(length)));
}

Value Left(std::span<Value> a) {
  auto s = Str(a[0]);
  auto n = Int(a[1]);
  if (!s || !n) return {};
  return Value::String(Slice(*s, 0, static_cast<size_t>(std::max<int64_t>(*n, 0))));
}

Value Right(std::span<Value> a) {
  auto s = Str(a[0]);
  auto n = Int(a[1]);
  if (!s || !n) return {};
  size_t total = CodePoints(*s);
  size_t keep = std::min(total, static_cast<size_t>(std::max<int64_t>(*n, 0)));
  return Value::String(s->substr(ByteOffset(*s, total - keep)));
}

Value IndexOf(std::span<Value> a) {
  auto s = Str(a[0]);
  auto frag = Str(a[1]);
  if (!s || !frag) return {};
  size_t from = 0;
  if (a.size() > 2) {
    auto start = Int(a[2]);
    if (!start) return {};
    from = ByteOffset(*s, static_cast<size_t>(std::max<int64_t>(*start, 0)));
  }
  size_t at = s->find(*frag, from);
  if (at == std::string_view::npos) return MakeNumber(int64_t{-1});
  return MakeNumber(static_cast<int64_t>(CodePoints(s->substr(0, at))));
}

// STARTSWITH(s, prefix[, ignore_case]) and its kin.
enum class Match { kPrefix, kSuffix, kInfix };
template <Match kMatch>
Value Matches(std::span<Value> a) {
  auto s = Str(a[0]);
  auto part = Str(a[1]);
  if (!s || !part) return {};
  bool ignore_case = false;
  if (a.size() > 2) {
    if (!a[2].defined() || !a[2]->is_bool()) return {};
    ignore_case = a[2]->get_bool();
  }
  std::string hay, needle;
  if (ignore_case) {
    hay = strings::ToLower(*s);
    needle = strings::ToLower(*part);
    s = hay;
    part = needle;
  }
  switch (kMatch) {
    case Match::kPrefix:
      return Value::Bool(s->starts_with(*part));
    case Match::kSuffix:
      return Value::Bool(s->ends_with(*part));
    case Match::kInfix:
      return Value::Bool(s->find(*part) != std::string_view::npos);
  }
  return {};
}

enum class TrimSide { kLeft, kRight, kBoth };
template <TrimSide kSide>
Value TrimFn(std::span<Value> a) {
  auto s = Str(a[0]);
  if (!s) return {};
  std::string_view t = *s;
  if (kSide != TrimSide::kRight) {
    while (!t.empty() && IsSpace(t.front()))
      t.remove_prefix(1);
  }
  if (kSide != TrimSide::kLeft) {
    while (!t.empty() && IsSpace(t.back()))
      t.remove_suffix(1);
  }
  return Value::String(t);
}

Value Replace(std::span<Value> a) {
  auto s = Str(a[0]);
  auto find = Str(a[1]);
  auto with = Str(a[2]);
  if (!s || !find || !with) return {};
  if (find->empty()) return std::move(a[0]);
  std::string out;
  size_t at = 0;
  while (true) {
    size_t next = s->find(*find, at);
    if (next == std::string_view::npos) break;
    out.append(*s, at, next - at);
    out += *with;
    at = next + find->size();
  }
  out.append(*s, at);
  return Value::String(out);
}

// ---- arrays ----

Value ArrayLength(std::span<Value> a) {
  if (!a[0].defined() || !a[0]->is_array()) return {};
  return MakeNumber(static_cast<int64_t>(a[0]->get_array().size()));
}

Value ArrayContains(std::span<Value> a) {
  if (!a[0].defined() || !a[0]->is_array() || !a[1].defined()) return {};
  for (const json::value& item : a[0]->get_array()) {
    if (Equal(item, a[1].get()).value_or(false)) return Value::Bool(true);
  }
  return Value::Bool(false);
}

FunctionRegistry MakeBuiltins() {
  constexpr uint8_t kAny = FunctionRegistry::kVariadic;
  FunctionRegistry r;
  // Type checking (IoT Hub twin queries: IS_DEFINED; routing: all).
  r.Add("IS_DEFINED", 1, 1, [](std::span<Value> a) { return Value::Bool(a[0].defined()); });
  r.Add("IS_NULL", 1, 1, IsKind<Kind::kNull>);
  r.Add("IS_BOOL", 1, 1, IsKind<Kind::kBool>);
  r.Add("IS_NUMBER", 1, 1, IsKind<Kind::kNumber>);
  r.Add("IS_STRING", 1, 1, IsKind<Kind::kString>);
  r.Add("IS_ARRAY", 1, 1, IsKind<Kind::kArray>);
  r.Add("IS_OBJECT", 1, 1, IsKind<Kind::kObject>);
  r.Add("IS_PRIMITIVE", 1, 1, IsKind<Kind::kNull, Kind::kBool, Kind::kNumber, Kind::kString>);
  // Casting.
  r.Add("AS_NUMBER", 1, 1, AsNumber);
  r.Add("TO_STRING", 1, 1, ToStringFn);
  // Math.
  r.Add("ABS", 1, 1, Abs);
  r.Add("CEILING", 1, 1, Rounding<[](double d) { return std::ceil(d); }>);
  r.Add("FLOOR", 1, 1, Rounding<[](double d) { return std::floor(d); }>);
  // Half away from zero, as Cosmos DB's ROUND.
  r.Add("ROUND", 1, 1, Rounding<[](double d) { return std::round(d); }>);
  r.Add("TRUNC", 1, 1, Rounding<[](double d) { return std::trunc(d); }>);
  r.Add("SIGN", 1, 1, Sign);
  r.Add("SQUARE", 1, 1, Square);
  r.Add("SQRT", 1, 1, Math1<[](double d) { return std::sqrt(d); }>);
  r.Add("POWER", 2, 2, Power);
  r.Add("EXP", 1, 1, Math1<[](double d) { return std::exp(d); }>);
  r.Add("LOG", 1, 2, Log);
  r.Add("LOG10", 1, 1, Math1<[](double d) { return std::log10(d); }>);
  r.Add("PI", 0, 0, Pi);
  // Strings.
  r.Add("CONCAT", 2, kAny, Concat);
  r.Add("LENGTH", 1, 1, Length);
  r.Add("LOWER", 1, 1, ChangeCase<false>);
  r.Add("UPPER", 1, 1, ChangeCase<true>);
  r.Add("SUBSTRING", 2, 3, Substring);
  r.Add("LEFT", 2, 2, Left);
  r.Add("RIGHT", 2, 2, Right);
  r.Add("INDEX_OF", 2, 3, IndexOf);
  r.Add("STARTSWITH", 2, 3, Matches<Match::kPrefix>);
  r.Add("ENDSWITH", 2, 3, Matches<Match::kSuffix>);
  r.Add("CONTAINS", 2, 3, Matches<Match::kInfix>);
  r.AddAlias("STARTS_WITH", "STARTSWITH");  // the 2016 documentation's spelling
  r.AddAlias("ENDS_WITH", "ENDSWITH");
  r.Add("LTRIM", 1, 1, TrimFn<TrimSide::kLeft>);
  r.Add("RTRIM", 1, 1, TrimFn<TrimSide::kRight>);
  r.Add("TRIM", 1, 1, TrimFn<TrimSide::kBoth>);
  r.Add("REPLACE", 3, 3, Replace);
  // Arrays.
  r.Add("ARRAY_LENGTH", 1, 1, ArrayLength);
  r.Add("ARRAY_CONTAINS", 2, 2, ArrayContains);
  return r;
}

}  // namespace

const FunctionRegistry& FunctionRegistry::Builtins() {
  static const FunctionRegistry builtins = MakeBuiltins();
  return builtins;
}

}  // namespace orrery::query
