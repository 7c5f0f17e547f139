// The scalar function library shared by the dialects, looked up by name ignoring case.
//
// The built-ins are the functions of IoT Hub's query language and routing conditions, with
// the spellings of both generations of its documentation, and a few Cosmos DB-style extras.
// Sources: learn.microsoft.com/azure/iot-hub/iot-hub-devguide-query-language ("Functions":
// IS_DEFINED for twin and job queries; math, type-checking/casting and string functions for
// routing conditions) and …/iot-hub-devguide-routing-query-syntax. docs/query.md lists them
// with their exact semantics.
//
// Rules every function follows: arguments arrive evaluated and may be undefined; a function
// given an argument of the wrong kind returns undefined (the type checks IS_* return false
// instead); functions are pure (the same arguments give the same result, nothing else
// happens), which lets the binder fold calls whose arguments are constants. Strings are
// measured and indexed in code points; LOWER and UPPER change ASCII letters only.
//
// A registry is immutable once built; Builtins() is safe to use from any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "query/value.h"

namespace orrery::query {

// `args` may be moved from (a function returning its argument moves it, so that an owned
// value is never borrowed past its life).
using FunctionImpl = Value (*)(std::span<Value> args);

struct Function {
  std::string name;  // canonical upper-case spelling, for messages
  uint8_t min_args = 0;
  uint8_t max_args = 0;  // kVariadic: no upper bound
  FunctionImpl impl = nullptr;
};

class FunctionRegistry {
 public:
  static constexpr uint8_t kVariadic = 255;

  // The built-in library.
  static const FunctionRegistry& Builtins();

  // Adds (or replaces) a function; `name` in any case.
  void Add(std::string_view name, uint8_t min_args, uint8_t max_args, FunctionImpl impl);
  // Makes `alias` another name of the already added `target`.
  void AddAlias(std::string_view alias, std::string_view target);
  void Remove(std::string_view name);
  // nullptr when there is no such function. The pointer stays valid while the registry
  // lives and the name is not removed or replaced.
  const Function* Find(std::string_view name) const;
  // Every name (aliases included), upper case, sorted.
  std::vector<std::string> Names() const;

 private:
  std::unordered_map<std::string, Function> by_name_;  // key: upper-case name
};

}  // namespace orrery::query
