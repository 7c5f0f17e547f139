// Helpers shared by the hub's HTTPS surfaces (service REST API, device HTTPS API): IoT
// Hub-shaped error responses, JSON bodies, and service-credential checks.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include <boost/json/value.hpp>

#include "base/error.h"
#include "net/http.h"

namespace orrery::hub {
class PolicyStore;
class RateLimiter;
}  // namespace orrery::hub

namespace orrery::api {

// The IoT Hub error body for any Error (hub::ToWireError decides status and codes):
//   {"Message":"ErrorCode:<Code>;<text>","ExceptionMessage":"","errorCode":<n>,
//    "code":"<Code>","message":"<text>"}
net::HttpResponse ErrorResponse(const Error& error);
net::HttpResponse ErrorResponse(int status, std::string_view code, int numeric,
                                std::string_view message);

// 200 (or `status`) with a JSON body.
net::HttpResponse JsonResponse(int status, const boost::json::value& body);

// Parses the request body as JSON: kInvalidArgument (400) for malformed JSON or, unless
// `allow_empty`, an empty body (which then reads as null).
Result<boost::json::value> ParseJsonBody(const net::HttpRequest& request, bool allow_empty = false);

// Checks the Authorization header's service SAS token for `permissions` (any one of them
// suffices when `any` is set), then takes a token from `limits` (nullable) for the policy.
// Returns the refusal to send (401 bad credential, 403 missing permission, 429 throttled with
// Retry-After) or nullopt when allowed.
std::optional<net::HttpResponse> CheckServiceAuth(const hub::PolicyStore& policies,
                                                  const net::HttpRequest& request,
                                                  uint32_t permissions, bool any = false,
                                                  hub::RateLimiter* limits = nullptr);

// 429 ThrottlingException with Retry-After (whole seconds, at least 1) for a wait in ms.
net::HttpResponse ThrottledResponse(int64_t wait_ms, std::string_view who);

// The If-Match header (quotes kept; empty when absent).
std::string IfMatch(const net::HttpRequest& request);

}  // namespace orrery::api
