// The digital twins service's error codes, and how each reaches the wire: Azure Digital
// Twins' HTTP status and `error.code` string ({"error":{"code","message","details"}}).
#pragma once

#include <string_view>

#include "base/error.h"

namespace orrery::twins {

enum class Errc {
  kInvalidArgument = 1,        // a malformed id, body, parameter or patch
  kDtdlParserError,            // submitted models are not valid DTDL (or incomplete)
  kModelVersionNotSupported,   // a DTDL version this service does not take
  kModelAlreadyExists,         // a model id that is stored already
  kModelNotFound,              // no such model
  kModelReferencesNotDeleted,  // deleting a model other models still reference
  kJsonPatchInvalid,           // a model patch other than decommissioning
  kLimitExceeded,              // a count or size limit (models, batch, dependenciesFor)
  kUnauthorized,               // a missing, malformed, expired or wrongly signed token
  kForbidden,                  // a valid token without the needed role
  kUnavailable,                // shutting down, or the store failed
  kCorruptState,               // a stored record that does not decode
  kDigitalTwinNotFound,        // no such twin
  kRelationshipNotFound,       // no such relationship
  kComponentNotFound,          // no such component on the twin
  kPreconditionFailed,         // If-Match / If-None-Match did not hold
  kValidationFailed,           // a twin or relationship that its model does not allow
  kRelationshipsNotDeleted,    // deleting a twin that still has relationships
  kEventRouteNotFound,         // no such event route
  kEventRouteEndpointInvalid,  // a route naming an endpoint that does not exist
  kEventRouteFilterInvalid,    // a route filter that does not parse
  kEventRouteIdInvalid,        // a malformed event route id
  kEndpointNotFound,           // no such endpoint (Orrery's endpoint API)
  kEndpointInUse,              // deleting an endpoint that routes still name
  kMappingNotFound,            // no such ingestion rule (Orrery's mapping API)
  kImportJobNotFound,          // no such import job
  kDeleteJobNotFound,          // no such delete job
  kJobLimitReached,            // too many jobs stored, or another bulk job is running
};

inline std::error_code make_error_code(Errc e) {
  return MakeErrorCode(e);
}

struct WireError {
  int status;
  std::string_view code;  // ADT's error code, e.g. "ModelNotFound"
};
// twins codes map one to one; anything else is a 500 "InternalServerError".
WireError ToWireError(const Error& error);

}  // namespace orrery::twins

template <>
struct orrery::ErrcTraits<orrery::twins::Errc> {
  static constexpr const char* kName = "twins";
  static std::string Message(orrery::twins::Errc e);
};
ORRERY_ERRC(orrery::twins::Errc);
