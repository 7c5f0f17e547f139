// Small cryptographic helpers over OpenSSL 3: base64, HMAC-SHA256, digests, randomness and
// constant-time comparison (every signature check must use ConstantTimeEqual).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace orrery::crypto {

std::string Base64Encode(std::string_view bytes);
// Strict standard-alphabet base64 with padding; fails on anything else.
Result<std::string> Base64Decode(std::string_view text);

std::string HexEncode(std::string_view bytes, bool upper = false);

// Raw 32-byte MAC.
std::string HmacSha256(std::string_view key, std::string_view data);
std::string Sha256(std::string_view data);
std::string Sha1(std::string_view data);

// Cryptographically secure random bytes (aborts if the CSPRNG fails: nothing safe remains).
std::string RandomBytes(size_t n);
// A base64 key of n random bytes, as IoT Hub generates (32 bytes → 44 characters).
std::string RandomKeyBase64(size_t n = 32);
// A random (version 4) UUID in its lower-case 8-4-4-4-12 form.
std::string RandomUuid();

// Compares in time that depends only on the lengths.
bool ConstantTimeEqual(std::string_view a, std::string_view b);

}  // namespace orrery::crypto
