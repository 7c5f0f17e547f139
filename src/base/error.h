// Error values shared by every component.
//
// Each component declares one `enum class Errc` and registers it with ORRERY_ERRC(...) so
// that it converts to std::error_code. Functions that can fail across a module boundary
// return Result<T> (boost::system::result<T, Error>): an Error carries the code (what went
// wrong, for programs: mapped to MQTT reason codes and HTTP statuses by the adapters) and a
// message (for people: context such as a file name or key; never a secret).
#pragma once

#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include <boost/system/result.hpp>

namespace orrery {

// Specialise for each component's Errc: a category name and a message per value.
template <class E>
struct ErrcTraits;

template <class E>
class ErrcCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return ErrcTraits<E>::kName; }
  std::string message(int c) const override { return ErrcTraits<E>::Message(static_cast<E>(c)); }
};

template <class E>
const std::error_category& CategoryOf() {
  static const ErrcCategory<E> category;
  return category;
}

// Components define `make_error_code(Errc)` in their namespace (found by ADL) with this.
template <class E>
std::error_code MakeErrorCode(E e) {
  return {static_cast<int>(e), CategoryOf<E>()};
}

// An error code plus human context.
class Error {
 public:
  Error() = default;
  Error(std::error_code code, std::string message = {})
      : code_(code), message_(std::move(message)) {}
  template <class E>
  requires std::is_error_code_enum_v<E> Error(E e, std::string message = {})
      : Error(make_error_code(e), std::move(message)) {}

  const std::error_code& code() const { return code_; }
  // The context message, or the code's own message when none was given.
  std::string message() const { return message_.empty() ? code_.message() : message_; }
  // "message (category: code message)", for logs.
  std::string ToString() const;

  template <class E>
  requires std::is_error_code_enum_v<E>
  bool Is(E e) const { return code_ == make_error_code(e); }

 private:
  std::error_code code_;
  std::string message_;
};

// Lets boost::system::result<T, Error>::value() throw a readable exception (tests, CLI).
[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

template <class T>
using Result = boost::system::result<T, Error>;
using Status = Result<void>;

inline Status Ok() {
  return {};
}

// Errors of the base component itself (configuration, files, crypto helpers).
enum class BaseErrc {
  kInvalidArgument = 1,
  kNotFound,
  kAlreadyExists,
  kPermissionDenied,
  kIo,
  kParse,
  kTooLarge,
  kUnavailable,
  kInternal,
};

template <>
struct ErrcTraits<BaseErrc> {
  static constexpr const char* kName = "base";
  static std::string Message(BaseErrc e);
};

}  // namespace orrery

// Registers a component's Errc with std::error_code. Use at global namespace, after the
// component has declared `make_error_code(Errc)` (via MakeErrorCode) in its namespace.
#define ORRERY_ERRC(Enum) \
  template <>             \
  struct std::is_error_code_enum<Enum> : std::true_type {}

namespace orrery {
inline std::error_code make_error_code(BaseErrc e) {
  return MakeErrorCode(e);
}
}  // namespace orrery
ORRERY_ERRC(orrery::BaseErrc);

// Propagates the error of a Result-returning expression: `ORRERY_TRY(DoThing());`
#define ORRERY_TRY(expr)                       \
  do {                                         \
    if (auto _orrery_r = (expr); !_orrery_r) { \
      return std::move(_orrery_r).error();     \
    }                                          \
  } while (0)

// Declares `var` from a Result-returning expression or propagates its error.
#define ORRERY_ASSIGN_OR_RETURN(var, expr)                         \
  auto ORRERY_CONCAT(_orrery_r_, __LINE__) = (expr);               \
  if (!ORRERY_CONCAT(_orrery_r_, __LINE__)) {                      \
    return std::move(ORRERY_CONCAT(_orrery_r_, __LINE__)).error(); \
  }                                                                \
  var = std::move(*ORRERY_CONCAT(_orrery_r_, __LINE__))
#define ORRERY_CONCAT_INNER(a, b) a##b
#define ORRERY_CONCAT(a, b) ORRERY_CONCAT_INNER(a, b)
