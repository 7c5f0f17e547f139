#include "base/error.h"

#include <stdexcept>

#include <boost/throw_exception.hpp>

namespace orrery {

std::string Error::ToString() const {
  std::string out = message();
  if (!message_.empty() && code_) {
    out += " (";
    out += code_.category().name();
    out += ": ";
    out += code_.message();
    out += ")";
  }
  return out;
}

void throw_exception_from_error(const Error& e, const boost::source_location& loc) {
  boost::throw_with_location(std::runtime_error(e.ToString()), loc);
}

std::string ErrcTraits<BaseErrc>::Message(BaseErrc e) {
  switch (e) {
    case BaseErrc::kInvalidArgument:
      return "invalid argument";
    case BaseErrc::kNotFound:
      return "not found";
    case BaseErrc::kAlreadyExists:
      return "already exists";
    case BaseErrc::kPermissionDenied:
      return "permission denied";
    case BaseErrc::kIo:
      return "I/O error";
    case BaseErrc::kParse:
      return "parse error";
    case BaseErrc::kTooLarge:
      return "too large";
    case BaseErrc::kUnavailable:
      return "unavailable";
    case BaseErrc::kInternal:
      return "internal error";
  }
  return "unknown base error";
}

}  // namespace orrery
