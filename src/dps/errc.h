// The provisioning service's error codes, and how each reaches the wire: DPS's HTTP status and
// numeric error code (the same numbers go in MQTT response topics' status and bodies).
#pragma once

#include <string_view>

#include "base/error.h"

namespace orrery::dps {

enum class Errc {
  kInvalidArgument = 1,   // malformed request, id, enrollment or attestation
  kUnauthorized,          // a missing, malformed, expired or wrongly signed credential
  kForbidden,             // a valid credential without the needed permission
  kEnrollmentNotFound,    // no such individual enrollment or enrollment group
  kRegistrationNotFound,  // no such device registration state (or operation)
  kPreconditionFailed,    // If-Match did not match the current etag
  kConflict,              // create of something that exists (bulk "create")
  kQuotaExceeded,         // a count limit (enrollments, groups, pending operations)
  kAllocationFailed,      // no hub could be chosen, or the custom allocation webhook failed
  kHubFailed,             // the assigned hub refused or could not be reached
  kThrottled,
  kCorruptState,
  kUnavailable,  // shutting down, or the store failed
};

inline std::error_code make_error_code(Errc e) {
  return MakeErrorCode(e);
}

struct WireError {
  int status;
  int numeric;  // DPS's errorCode: status * 1000 + detail
};
// dps codes map one to one; hub codes (linked-hub failures) and anything else map sensibly.
WireError ToWireError(const Error& error);

}  // namespace orrery::dps

template <>
struct orrery::ErrcTraits<orrery::dps::Errc> {
  static constexpr const char* kName = "dps";
  static std::string Message(orrery::dps::Errc e);
};
ORRERY_ERRC(orrery::dps::Errc);
