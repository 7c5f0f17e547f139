// OAuth 2.0 access tokens: JWTs signed with ES256 (ECDSA P-256 + SHA-256), shaped like
// Microsoft Entra ID's v2.0 tokens, so that clients of Azure Digital Twins (and later the
// dashboard) authenticate to Orrery the way they do to Azure.
//
//   ORRERY_ASSIGN_OR_RETURN(auto issuer, TokenIssuer::Open(data_dir / "identity"));
//   std::string jwt = issuer->Issue({.subject = id, .audience = aud, .roles = {"owner"}}, now);
//   ORRERY_ASSIGN_OR_RETURN(Claims c, issuer->Verify(jwt, aud, now));   // kUnauthorized
//
// The signing key lives in <dir>/signing-key.pem (0600), created on first use; its public
// half is published as a JWKS (`kid` = the first 16 base64url characters of the SHA-256 of
// the public key). The tenant id (a GUID, as Entra ID's) is in <dir>/tenant, created once.
//
// Thread safety: every method is safe from any thread (the key is immutable after Open; the
// cache of verified signatures has its own mutex).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/json/object.hpp>

#include "base/error.h"

namespace orrery::identity {

enum class Errc {
  kInvalidArgument = 1,  // a malformed request or name
  kUnauthorized,         // a missing, malformed, expired or wrongly signed token or secret
  kForbidden,            // authenticated, without the role needed
  kNotFound,             // no such principal
  kLimitExceeded,        // too many principals
  kIo,                   // the key, tenant or principal file cannot be read or written
};

inline std::error_code make_error_code(Errc e) {
  return MakeErrorCode(e);
}

struct Claims {
  std::string issuer;    // iss
  std::string subject;   // sub (= oid, appid): the principal's client id
  std::string audience;  // aud, e.g. "https://digitaltwins.azure.net"
  std::string tenant;    // tid
  std::vector<std::string> roles;
  int64_t issued_at_s = 0;   // iat (= nbf)
  int64_t expires_at_s = 0;  // exp
};

// base64url without padding (RFC 7515 §2).
std::string Base64UrlEncode(std::string_view bytes);
Result<std::string> Base64UrlDecode(std::string_view text);

class TokenIssuer {
 public:
  static Result<std::unique_ptr<TokenIssuer>> Open(const std::filesystem::path& dir);
  ~TokenIssuer();

  const std::string& tenant() const { return tenant_; }
  const std::string& key_id() const { return kid_; }

  // A signed token for `c` (issuer, tenant and times as given; tenant defaults to ours).
  std::string Issue(const Claims& c) const;
  // Checks the signature (ES256 with our key only; `alg` and `kid` must say so), the audience
  // (one of `audiences`), issuer (when not empty), nbf/exp against `now_s` with 5 minutes of
  // clock skew. kUnauthorized with the reason otherwise. Never logs the token.
  Result<Claims> Verify(std::string_view token, const std::vector<std::string>& audiences,
                        std::string_view issuer, int64_t now_s) const;
  // {"keys":[{"kty":"EC","crv":"P-256","x","y","kid","use":"sig","alg":"ES256"}]}
  boost::json::object Jwks() const;

 private:
  struct Key;
  TokenIssuer() = default;
  // Signature, algorithm and key id only; the claims as signed.
  Result<Claims> VerifySignature(std::string_view token) const;
  std::unique_ptr<Key> key_;
  std::string tenant_, kid_, x_, y_;
  // Tokens whose signature verified → their claims: a client presents one token for up to
  // an hour, and an ECDSA verification costs more than the request it guards. Claims are
  // re-checked on every call; the cache is cleared when it reaches kMaxCachedTokens.
  static constexpr size_t kMaxCachedTokens = 4096;
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, Claims> verified_;  // guarded by cache_mu_
};

}  // namespace orrery::identity

template <>
struct orrery::ErrcTraits<orrery::identity::Errc> {
  static constexpr const char* kName = "identity";
  static std::string Message(orrery::identity::Errc e) {
    using E = orrery::identity::Errc;
    switch (e) {
      case E::kInvalidArgument:
        return "invalid argument";
      case E::kUnauthorized:
        return "unauthorized";
      case E::kForbidden:
        return "forbidden";
      case E::kNotFound:
        return "not found";
      case E::kLimitExceeded:
        return "limit exceeded";
      case E::kIo:
        return "identity file I/O error";
    }
    return "unknown identity error";
  }
};
ORRERY_ERRC(orrery::identity::Errc);
