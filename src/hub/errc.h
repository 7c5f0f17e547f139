// The hub component's error codes.
#pragma once

#include "base/error.h"

namespace orrery::hub {

enum class Errc {
  kPolicyNotFound = 1,
  kCorruptState,
  kUnauthorized,  // a missing, malformed, expired or wrongly signed credential, or too few rights
};

inline std::error_code make_error_code(Errc e) {
  return MakeErrorCode(e);
}

}  // namespace orrery::hub

template <>
struct orrery::ErrcTraits<orrery::hub::Errc> {
  static constexpr const char* kName = "hub";
  static std::string Message(orrery::hub::Errc e) {
    switch (e) {
      case orrery::hub::Errc::kPolicyNotFound:
        return "shared access policy not found";
      case orrery::hub::Errc::kCorruptState:
        return "corrupt hub state";
      case orrery::hub::Errc::kUnauthorized:
        return "unauthorized";
    }
    return "unknown hub error";
  }
};
ORRERY_ERRC(orrery::hub::Errc);
