// The value type of the query engines: a JSON value, or *undefined*.
//
// Design note. Queries over JSON documents (IoT Hub, Cosmos DB, Stream Analytics, Azure
// Digital Twins) know two kinds of "nothing". JSON null is a value like any other: it can be
// stored, compared with null and returned. *Undefined* is not JSON: it is what reading a
// property that is not there yields, and what an operator or function yields when its operands
// do not fit (comparing a string with a number, adding a bool, LOWER of a number). Undefined
// never appears inside an array or an object; a projection that evaluates to undefined is
// left out of its row; a condition is met only when it evaluates to the boolean true, so
// undefined filters a document out. IS_DEFINED(x) is the way to ask.
//
// `Value` is that union, as a small variant of three states:
//   - undefined (the default-constructed state);
//   - borrowed: a `const json::value*` into the document being evaluated or into a constant
//     of the bound query (or one of the two static booleans of Bool()), so that reading a
//     property copies nothing;
//   - owned: a `json::value` computed by an operator or a function.
// A borrowed Value is valid only while its document and its query live; ToJson() copies it
// out. Values are cheap to move; copying an owned one copies the JSON.
//
// Numbers follow JSON/JavaScript: int64, uint64 and double are one kind, compared and
// combined by value (1 = 1.0). Computed numbers are normalised by MakeNumber: a double that
// is integral and within ±2^53 becomes an int64, so results serialise as `2`, not `2E0`.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <variant>

#include <boost/json/value.hpp>

namespace orrery::query {

namespace json = boost::json;

class Value {
 public:
  Value() noexcept = default;  // undefined
  explicit Value(json::value v) noexcept : v_(std::move(v)) {}

  // REQUIRES: `v` outlives the Value and every copy of it.
  static Value Borrow(const json::value& v) noexcept {
    Value out;
    out.v_ = &v;
    return out;
  }
  // Borrows one of two constants: comparisons and logic, the commonest results, build nothing.
  static Value Bool(bool b) noexcept {
    static const json::value kFalse(false), kTrue(true);
    return Borrow(b ? kTrue : kFalse);
  }
  static Value String(std::string_view s) { return Value(json::value(json::string(s))); }

  bool defined() const noexcept { return v_.index() != 0; }
  bool borrowed() const noexcept { return v_.index() == 1; }
  // REQUIRES: defined().
  const json::value& get() const noexcept {
    return v_.index() == 1 ? *std::get<1>(v_) : std::get<2>(v_);
  }
  const json::value& operator*() const noexcept { return get(); }
  const json::value* operator->() const noexcept { return &get(); }
  // nullptr when undefined.
  const json::value* if_defined() const noexcept { return defined() ? &get() : nullptr; }

  // A copy (or, from an rvalue that owns its JSON, the JSON itself). REQUIRES: defined().
  json::value ToJson() const& { return get(); }
  json::value ToJson() && {
    if (v_.index() == 2) return std::move(std::get<2>(v_));
    return get();
  }

 private:
  std::variant<std::monostate, const json::value*, json::value> v_;
};

// The kinds of the type-checking functions (IS_NUMBER…), undefined included.
enum class Kind { kUndefined, kNull, kBool, kNumber, kString, kArray, kObject };
Kind KindOf(const json::value& v);
inline Kind KindOf(const Value& v) {
  return v.defined() ? KindOf(v.get()) : Kind::kUndefined;
}
std::string_view KindName(Kind k);  // "undefined", "null", "boolean", "number", …

// A condition holds only when it is the boolean true (null, undefined, 1, "true" do not).
inline bool IsTrue(const Value& v) {
  return v.defined() && v->is_bool() && v->get_bool();
}

// Equality of two JSON values under the query rules: defined only for values of the same
// primitive kind (null = null, numbers by value, strings ordinally, booleans); nullopt
// (undefined) for different kinds and for arrays and objects.
std::optional<bool> Equal(const json::value& a, const json::value& b);
// Ordering under the same rules (null sorts equal to null, false before true, strings by
// byte, which is code point order for UTF-8): <0, 0 or >0; nullopt where Equal is.
std::optional<int> Compare(const json::value& a, const json::value& b);

// A computed number: int64 when `d` is integral and within ±2^53, otherwise the double.
// Infinite and NaN results are undefined (JSON has no such numbers).
Value MakeNumber(double d);
inline Value MakeNumber(int64_t i) {
  return Value(json::value(i));
}
// The number as a double. REQUIRES: v.is_number().
double ToDouble(const json::value& v);
// The number as an int64 when it is integral and fits, else nullopt (also for non-numbers).
std::optional<int64_t> ToInt64(const json::value& v);

}  // namespace orrery::query
