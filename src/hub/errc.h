// The hub component's error codes, and how each maps onto IoT Hub's wire errors (HTTP status,
// error-code name, numeric error code) so that every adapter reports a failure the same way
// and the Azure SDKs classify it correctly (wire contract §4.2: never 500/503 for an expected
// failure, the SDKs retry those for minutes).
#pragma once

#include <string_view>

#include "base/error.h"

namespace orrery::hub {

enum class Errc {
  kPolicyNotFound = 1,
  kCorruptState,
  kUnauthorized,           // a missing, malformed, expired or wrongly signed credential
  kForbidden,              // a valid credential without the permission the operation needs
  kInvalidArgument,        // malformed request, id or document
  kDeviceNotFound,         // no such device
  kModuleNotFound,         // no such module
  kDeviceAlreadyExists,    // create of an existing device
  kModuleAlreadyExists,    // create of an existing module
  kPreconditionFailed,     // If-Match did not match the current etag
  kTooLarge,               // message, payload or twin section beyond IoT Hub's limits
  kQuotaExceeded,          // a count limit (devices, modules, queue depth, ...)
  kDeviceNotOnline,        // a direct method for a device that is not connected/subscribed
  kTimeout,                // the device did not answer a direct method in time
  kDeviceMessageLockLost,  // a C2D lock token that is unknown, expired or already used
  kThrottled,              // a rate limit
  kJobNotFound,
  kJobAlreadyExists,
  kJobCannotBeCancelled,
  kCertificateNotFound,
  kUnavailable,  // the server is shutting down or the store failed
};

inline std::error_code make_error_code(Errc e) {
  return MakeErrorCode(e);
}

// IoT Hub's view of an error: HTTP status, the code name (in the `Message`'s "ErrorCode:")
// and the numeric code (in `errorCode`, and in MQTT twin error bodies).
struct WireError {
  int status;
  std::string_view code;
  int numeric;
};
// For an Error of any component: hub codes map one to one; anything else (I/O, store) is 500.
WireError ToWireError(const Error& error);

}  // namespace orrery::hub

template <>
struct orrery::ErrcTraits<orrery::hub::Errc> {
  static constexpr const char* kName = "hub";
  static std::string Message(orrery::hub::Errc e);
};
ORRERY_ERRC(orrery::hub::Errc);
