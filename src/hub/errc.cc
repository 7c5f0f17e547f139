#include "hub/errc.h"

namespace orrery::hub {

WireError ToWireError(const Error& error) {
  if (error.code().category() != CategoryOf<Errc>()) {
    return {500, "ServerError", 500001};
  }
  switch (static_cast<Errc>(error.code().value())) {
    case Errc::kUnauthorized:
      return {401, "IotHubUnauthorizedAccess", 401002};
    case Errc::kForbidden:
      return {403, "IotHubUnauthorizedAccess", 403004};
    case Errc::kInvalidArgument:
      return {400, "ArgumentInvalid", 400004};
    case Errc::kDeviceNotFound:
      return {404, "DeviceNotFound", 404001};
    case Errc::kModuleNotFound:
      return {404, "ModuleNotFound", 404010};
    case Errc::kPolicyNotFound:
      return {404, "IotHubNotFound", 404000};
    case Errc::kJobNotFound:
      return {404, "JobNotFound", 404002};
    case Errc::kDeviceAlreadyExists:
      return {409, "DeviceAlreadyExists", 409001};
    case Errc::kModuleAlreadyExists:
      return {409, "ModuleAlreadyExists", 409301};
    case Errc::kJobAlreadyExists:
      return {409, "JobAlreadyExists", 409002};
    case Errc::kJobCannotBeCancelled:
      return {400, "JobCancelled", 400015};
    case Errc::kCertificateNotFound:
      return {404, "CertificateNotFound", 404004};
    case Errc::kPreconditionFailed:
      return {412, "PreconditionFailed", 412002};
    case Errc::kTooLarge:
      return {413, "MessageTooLarge", 413001};
    case Errc::kQuotaExceeded:
      return {403, "IotHubQuotaExceeded", 403002};
    case Errc::kDeviceNotOnline:
      return {404, "DeviceNotOnline", 404103};
    case Errc::kTimeout:
      return {504, "GatewayTimeout", 504101};
    case Errc::kDeviceMessageLockLost:
      return {412, "DeviceMessageLockLost", 412001};
    case Errc::kThrottled:
      return {429, "ThrottlingException", 429001};
    case Errc::kCorruptState:
      return {500, "ServerError", 500001};
    case Errc::kUnavailable:
      return {503, "ServiceUnavailable", 503001};
  }
  return {500, "ServerError", 500001};
}

}  // namespace orrery::hub

std::string orrery::ErrcTraits<orrery::hub::Errc>::Message(orrery::hub::Errc e) {
  using orrery::hub::Errc;
  switch (e) {
    case Errc::kPolicyNotFound:
      return "shared access policy not found";
    case Errc::kCorruptState:
      return "corrupt hub state";
    case Errc::kUnauthorized:
      return "unauthorized";
    case Errc::kForbidden:
      return "the credential lacks the permission for this operation";
    case Errc::kInvalidArgument:
      return "invalid argument";
    case Errc::kDeviceNotFound:
      return "device not found";
    case Errc::kModuleNotFound:
      return "module not found";
    case Errc::kDeviceAlreadyExists:
      return "device already exists";
    case Errc::kModuleAlreadyExists:
      return "module already exists";
    case Errc::kPreconditionFailed:
      return "precondition failed: the etag does not match";
    case Errc::kTooLarge:
      return "too large";
    case Errc::kQuotaExceeded:
      return "quota exceeded";
    case Errc::kDeviceNotOnline:
      return "the device is not online";
    case Errc::kTimeout:
      return "timed out waiting for the device";
    case Errc::kDeviceMessageLockLost:
      return "the message lock token is not valid";
    case Errc::kThrottled:
      return "throttled";
    case Errc::kJobNotFound:
      return "job not found";
    case Errc::kJobAlreadyExists:
      return "job already exists";
    case Errc::kJobCannotBeCancelled:
      return "the job cannot be cancelled";
    case Errc::kCertificateNotFound:
      return "certificate not found";
    case Errc::kUnavailable:
      return "service unavailable";
  }
  return "unknown hub error";
}
