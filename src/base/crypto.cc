#include "base/crypto.h"

#include <cstdio>
#include <cstdlib>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

namespace orrery::crypto {
namespace {
const unsigned char* U(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), U(bytes),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return Error(BaseErrc::kParse, "invalid base64 length");
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || (c == '=' && i >= text.size() - 2);
    if (!ok) return Error(BaseErrc::kParse, "invalid base64 character");
  }
  if (text.size() >= 2 && text[text.size() - 2] == '=' && text.back() != '=') {
    return Error(BaseErrc::kParse, "invalid base64 padding");
  }
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), U(text),
                          static_cast<int>(text.size()));
  if (n < 0) return Error(BaseErrc::kParse, "invalid base64");
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') ++pad;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::string HexEncode(std::string_view bytes, bool upper) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  // OpenSSL 3's one-shot HMAC() fetches the algorithm on every call, which costs more than
  // the MAC itself for short inputs (every SAS token check): fetch it once. EVP_MAC objects
  // are immutable and safe to share between threads; each call has its own context.
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  static const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string("digest", const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end()};
  std::string out(32, '\0');
  size_t len = 0;
  EVP_MAC_CTX* ctx = mac ? EVP_MAC_CTX_new(mac) : nullptr;
  if (!ctx || EVP_MAC_init(ctx, U(key), key.size(), params) != 1 ||
      EVP_MAC_update(ctx, U(data), data.size()) != 1 ||
      EVP_MAC_final(ctx, reinterpret_cast<unsigned char*>(out.data()), &len, out.size()) != 1) {
    std::abort();  // a broken OpenSSL installation: nothing safe remains
  }
  EVP_MAC_CTX_free(ctx);
  return out;
}

std::string Sha256(std::string_view data) {
  std::string out(32, '\0');
  SHA256(U(data), data.size(), reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string Sha1(std::string_view data) {
  std::string out(20, '\0');
  SHA1(U(data), data.size(), reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    std::fputs("fatal: the system's random number generator failed\n", stderr);
    std::abort();
  }
  return out;
}

std::string RandomKeyBase64(size_t n) {
  return Base64Encode(RandomBytes(n));
}

std::string RandomUuid() {
  std::string b = RandomBytes(16);
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  std::string h = HexEncode(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace orrery::crypto
