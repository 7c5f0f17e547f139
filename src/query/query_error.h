// Internal to the query stages: the exception they throw, and the wrapper that turns it
// into an Error at each public entry point, so that no exception crosses one.
#pragma once

#include <exception>
#include <string>
#include <type_traits>
#include <utility>

#include "base/error.h"
#include "query/errc.h"
#include "query/lexer.h"

namespace orrery::query {

class QueryError : public std::exception {
 public:
  QueryError(Errc code, Position pos, std::string message)
      : code_(code), pos_(pos), has_pos_(true), message_(std::move(message)) {}
  QueryError(Errc code, std::string message) : code_(code), message_(std::move(message)) {}

  const char* what() const noexcept override { return message_.c_str(); }
  // "line 1, column 23: expected FROM, found 'WHERE'" (without a position: the message).
  Error ToError() const;

 private:
  Errc code_;
  Position pos_;
  bool has_pos_ = false;
  std::string message_;
};

// Runs `f` and returns its result, or the Error of the QueryError it threw.
template <class F>
auto Catching(F&& f) -> Result<std::invoke_result_t<F>> {
  try {
    if constexpr (std::is_void_v<std::invoke_result_t<F>>) {
      f();
      return {};
    } else {
      return f();
    }
  } catch (const QueryError& e) {
    return e.ToError();
  }
}

}  // namespace orrery::query
