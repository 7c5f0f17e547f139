#include "dps/errc.h"

#include "hub/errc.h"

namespace orrery::dps {

WireError ToWireError(const Error& error) {
  if (error.code().category() == CategoryOf<hub::Errc>()) {
    auto w = hub::ToWireError(error);
    return {w.status, w.numeric};
  }
  if (error.code().category() != CategoryOf<Errc>()) return {500, 500000};
  switch (static_cast<Errc>(error.code().value())) {
    case Errc::kInvalidArgument:
      return {400, 400004};
    case Errc::kUnauthorized:
      return {401, 401002};
    case Errc::kForbidden:
      return {403, 403002};
    case Errc::kEnrollmentNotFound:
      return {404, 404201};
    case Errc::kRegistrationNotFound:
      return {404, 404202};
    case Errc::kPreconditionFailed:
      return {412, 412002};
    case Errc::kConflict:
      return {409, 409201};
    case Errc::kQuotaExceeded:
      return {403, 403001};
    case Errc::kAllocationFailed:
      return {400, 400209};
    case Errc::kHubFailed:
      return {500, 500201};
    case Errc::kThrottled:
      return {429, 429001};
    case Errc::kCorruptState:
      return {500, 500000};
    case Errc::kUnavailable:
      return {503, 503000};
  }
  return {500, 500000};
}

}  // namespace orrery::dps

std::string orrery::ErrcTraits<orrery::dps::Errc>::Message(orrery::dps::Errc e) {
  using orrery::dps::Errc;
  switch (e) {
    case Errc::kInvalidArgument:
      return "invalid argument";
    case Errc::kUnauthorized:
      return "unauthorized";
    case Errc::kForbidden:
      return "forbidden";
    case Errc::kEnrollmentNotFound:
      return "enrollment not found";
    case Errc::kRegistrationNotFound:
      return "registration not found";
    case Errc::kPreconditionFailed:
      return "precondition failed";
    case Errc::kConflict:
      return "already exists";
    case Errc::kQuotaExceeded:
      return "quota exceeded";
    case Errc::kAllocationFailed:
      return "allocation failed";
    case Errc::kHubFailed:
      return "the assigned hub failed";
    case Errc::kThrottled:
      return "throttled";
    case Errc::kCorruptState:
      return "corrupt provisioning state";
    case Errc::kUnavailable:
      return "unavailable";
  }
  return "unknown dps error";
}
