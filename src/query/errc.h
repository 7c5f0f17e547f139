// The query component's error codes. Every parse, bind or limit failure of every dialect
// maps to one of these; the service adapters answer all of them with HTTP 400 and the
// message, which says what was expected and where ("line 1, column 23: expected FROM,
// found 'WHERE'").
#pragma once

#include "base/error.h"

namespace orrery::query {

enum class Errc {
  kSyntax = 1,       // the text is not in the language (lexer or parser)
  kUnknownFunction,  // a call to a function the dialect does not have
  kInvalidQuery,     // well formed but meaningless: wrong arity, bad TOP, ungrouped projection…
  kLimitExceeded,    // longer, deeper or wider than the bounds in query/limits.h
};

inline std::error_code make_error_code(Errc e) {
  return MakeErrorCode(e);
}

}  // namespace orrery::query

template <>
struct orrery::ErrcTraits<orrery::query::Errc> {
  static constexpr const char* kName = "query";
  static std::string Message(orrery::query::Errc e) {
    switch (e) {
      case orrery::query::Errc::kSyntax:
        return "syntax error";
      case orrery::query::Errc::kUnknownFunction:
        return "unknown function";
      case orrery::query::Errc::kInvalidQuery:
        return "invalid query";
      case orrery::query::Errc::kLimitExceeded:
        return "query limit exceeded";
    }
    return "unknown query error";
  }
};
ORRERY_ERRC(orrery::query::Errc);
