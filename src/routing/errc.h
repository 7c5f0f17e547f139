// The routing component's error codes.
#pragma once

#include "base/error.h"

namespace orrery::routing {

enum class Errc {
  kInvalidConfig = 1,  // a routing configuration or test request that does not validate
  kDeliveryFailed,     // an endpoint could not take a batch (retried, then dead-lettered)
  kIo,                 // the routing state on disk
};

inline std::error_code make_error_code(Errc e) {
  return MakeErrorCode(e);
}

}  // namespace orrery::routing

template <>
struct orrery::ErrcTraits<orrery::routing::Errc> {
  static constexpr const char* kName = "routing";
  static std::string Message(orrery::routing::Errc e) {
    switch (e) {
      case orrery::routing::Errc::kInvalidConfig:
        return "invalid routing configuration";
      case orrery::routing::Errc::kDeliveryFailed:
        return "endpoint delivery failed";
      case orrery::routing::Errc::kIo:
        return "routing state I/O error";
    }
    return "unknown routing error";
  }
};
ORRERY_ERRC(orrery::routing::Errc);
