// Shared access signature (SAS) tokens, exactly as the Azure IoT SDKs make them
// (azure-iot-wire-contract.md §1.2):
//
//   SharedAccessSignature sr=<resource>&sig=<url-encoded base64 HMAC>&se=<expiry>[&skn=<key name>]
//
// The signature is HMAC-SHA256, keyed with the base64-decoded shared key, over the `sr` value
// *exactly as it appears in the token* (device SDKs URL-encode it, the service SDK does not),
// a newline, and the decimal expiry. Verification therefore never re-derives the string: it
// signs what it received and compares in constant time.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace orrery::hub {

struct SasToken {
  std::string resource_raw;  // `sr` as sent (what was signed)
  std::string resource;      // `sr` URL-decoded: "host", "host/devices/d1", …
  std::string signature;     // `sig` URL-decoded (base64)
  int64_t expiry = 0;        // `se`, seconds since the Unix epoch
  std::string key_name;      // `skn` URL-decoded; empty when absent
};

// Parses a token. Fields may come in any order; unknown fields are ignored. Errors
// (Errc::kUnauthorized) say what is wrong without echoing the signature.
Result<SasToken> ParseSasToken(std::string_view text);

// base64(HMAC-SHA256(base64decode(key), resource_raw + "\n" + expiry)). kInvalidArgument when
// the key is not base64.
Result<std::string> SasSignature(std::string_view resource_raw, int64_t expiry,
                                 std::string_view key_base64);

// True when `token`'s signature was made with `key_base64` (constant-time comparison).
bool SasSignatureMatches(const SasToken& token, std::string_view key_base64);

// Makes a token like azure-iothub's SharedAccessSignature.create: `sr` = `resource` URL-encoded
// when `encode_resource` (device style) or verbatim (service style), and `skn` when non-empty.
Result<std::string> MakeSasToken(std::string_view resource, std::string_view key_base64,
                                 int64_t expiry, std::string_view key_name = {},
                                 bool encode_resource = false);

// A service connection string "HostName=…;SharedAccessKeyName=…;SharedAccessKey=…" (§1.1:
// split on ';', then on the first '='; empty pieces dropped; a repeated key keeps the last).
struct ServiceConnectionString {
  std::string host_name;
  std::string key_name;
  std::string key;  // base64
};
// kInvalidArgument naming what is missing; the key is never echoed.
Result<ServiceConnectionString> ParseServiceConnectionString(std::string_view text);

}  // namespace orrery::hub
