#include "twins/errc.h"

namespace orrery::twins {

WireError ToWireError(const Error& error) {
  if (error.code().category() != CategoryOf<Errc>()) return {500, "InternalServerError"};
  switch (static_cast<Errc>(error.code().value())) {
    case Errc::kInvalidArgument:
      return {400, "InvalidArgument"};
    case Errc::kDtdlParserError:
      return {400, "DTDLParserError"};
    case Errc::kModelVersionNotSupported:
      return {400, "ModelVersionNotSupported"};
    case Errc::kModelAlreadyExists:
      return {409, "ModelAlreadyExists"};
    case Errc::kModelNotFound:
      return {404, "ModelNotFound"};
    case Errc::kModelReferencesNotDeleted:
      return {409, "ModelReferencesNotDeleted"};
    case Errc::kJsonPatchInvalid:
      return {400, "JsonPatchInvalid"};
    case Errc::kLimitExceeded:
      return {400, "LimitExceeded"};
    case Errc::kUnauthorized:
      return {401, "Unauthorized"};
    case Errc::kForbidden:
      return {403, "Forbidden"};
    case Errc::kUnavailable:
      return {503, "ServiceUnavailable"};
    case Errc::kCorruptState:
      return {500, "InternalServerError"};
    case Errc::kDigitalTwinNotFound:
      return {404, "DigitalTwinNotFound"};
    case Errc::kRelationshipNotFound:
      return {404, "RelationshipNotFound"};
    case Errc::kComponentNotFound:
      return {404, "ComponentNotFound"};
    case Errc::kPreconditionFailed:
      return {412, "PreconditionFailed"};
    case Errc::kValidationFailed:
      return {400, "ValidationFailed"};
    case Errc::kRelationshipsNotDeleted:
      return {400, "RelationshipsNotDeleted"};
    case Errc::kEventRouteNotFound:
      return {404, "EventRouteNotFound"};
    case Errc::kEventRouteEndpointInvalid:
      return {400, "EventRouteEndpointInvalid"};
    case Errc::kEventRouteFilterInvalid:
      return {400, "EventRouteFilterInvalid"};
    case Errc::kEventRouteIdInvalid:
      return {400, "EventRouteIdInvalid"};
    case Errc::kEndpointNotFound:
      return {404, "EndpointNotFound"};
    case Errc::kEndpointInUse:
      return {409, "EndpointInUse"};
    case Errc::kMappingNotFound:
      return {404, "MappingNotFound"};
    case Errc::kImportJobNotFound:
      return {404, "ImportJobNotFound"};
    case Errc::kDeleteJobNotFound:
      return {404, "DeleteJobNotFound"};
    case Errc::kJobLimitReached:
      return {400, "JobLimitReached"};
  }
  return {500, "InternalServerError"};
}

}  // namespace orrery::twins

std::string orrery::ErrcTraits<orrery::twins::Errc>::Message(orrery::twins::Errc e) {
  using orrery::twins::Errc;
  switch (e) {
    case Errc::kInvalidArgument:
      return "invalid argument";
    case Errc::kDtdlParserError:
      return "the models are not valid DTDL";
    case Errc::kModelVersionNotSupported:
      return "DTDL version not supported";
    case Errc::kModelAlreadyExists:
      return "model already exists";
    case Errc::kModelNotFound:
      return "model not found";
    case Errc::kModelReferencesNotDeleted:
      return "other models reference this model";
    case Errc::kJsonPatchInvalid:
      return "invalid JSON patch";
    case Errc::kLimitExceeded:
      return "limit exceeded";
    case Errc::kUnauthorized:
      return "unauthorized";
    case Errc::kForbidden:
      return "forbidden";
    case Errc::kUnavailable:
      return "service unavailable";
    case Errc::kCorruptState:
      return "corrupt stored state";
    case Errc::kDigitalTwinNotFound:
      return "digital twin not found";
    case Errc::kRelationshipNotFound:
      return "relationship not found";
    case Errc::kComponentNotFound:
      return "component not found";
    case Errc::kPreconditionFailed:
      return "precondition failed";
    case Errc::kValidationFailed:
      return "validation failed";
    case Errc::kRelationshipsNotDeleted:
      return "the twin has relationships";
    case Errc::kEventRouteNotFound:
      return "event route not found";
    case Errc::kEventRouteEndpointInvalid:
      return "the event route's endpoint does not exist";
    case Errc::kEventRouteFilterInvalid:
      return "invalid event route filter";
    case Errc::kEventRouteIdInvalid:
      return "invalid event route id";
    case Errc::kEndpointNotFound:
      return "endpoint not found";
    case Errc::kEndpointInUse:
      return "event routes use this endpoint";
    case Errc::kMappingNotFound:
      return "ingestion rule not found";
    case Errc::kImportJobNotFound:
      return "import job not found";
    case Errc::kDeleteJobNotFound:
      return "delete job not found";
    case Errc::kJobLimitReached:
      return "job limit reached";
  }
  return "unknown twins error";
}
