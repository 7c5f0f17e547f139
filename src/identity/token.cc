#include "identity/token.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <optional>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "base/files.h"

namespace orrery::identity {

namespace json = boost::json;

namespace {
constexpr int64_t kClockSkewS = 300;
constexpr size_t kMaxTokenBytes = 16 << 10;

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct SigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string PemOf(EVP_PKEY* key) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<PkeyPtr> LoadOrCreateKey(const std::filesystem::path& file) {
  if (std::filesystem::exists(file)) {
    ORRERY_ASSIGN_OR_RETURN(std::string pem, files::ReadFile(file, 64 << 10));
    std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC ||
        EVP_PKEY_get_bits(key.get()) != 256) {
      return Error(Errc::kIo, fmt::format("{} is not an EC P-256 private key", file.string()));
    }
    return key;
  }
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return Error(Errc::kIo, "cannot generate the token signing key");
  ORRERY_TRY(files::WriteFileAtomic(file, PemOf(key.get()), files::kSecretPerms));
  return key;
}

Result<std::string> LoadOrCreateTenant(const std::filesystem::path& file) {
  if (std::filesystem::exists(file)) {
    ORRERY_ASSIGN_OR_RETURN(std::string t, files::ReadFile(file, 256));
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' '))
      t.pop_back();
    if (t.size() != 36)
      return Error(Errc::kIo, fmt::format("{} does not hold a GUID", file.string()));
    return t;
  }
  std::string t = crypto::RandomUuid();
  ORRERY_TRY(files::WriteFileAtomic(file, t + "\n"));
  return t;
}

std::string BnBytes(const BIGNUM* bn) {
  std::string out(32, '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), 32);
  return out;
}

std::string Str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

int64_t Int(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
  if (v->is_double()) return static_cast<int64_t>(v->get_double());
  return 0;
}

Error Refuse(std::string why) {
  return Error(Errc::kUnauthorized, "invalid bearer token: " + std::move(why));
}
}  // namespace

std::string Base64UrlEncode(std::string_view bytes) {
  std::string s = crypto::Base64Encode(bytes);
  while (!s.empty() && s.back() == '=')
    s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

Result<std::string> Base64UrlDecode(std::string_view text) {
  std::string s(text);
  for (char& c : s) {
    if (c == '-') {
      c = '+';
    } else if (c == '_') {
      c = '/';
    } else if (c == '+' || c == '/' || c == '=') {
      return Error(Errc::kInvalidArgument, "not base64url");
    }
  }
  while (s.size() % 4 != 0)
    s.push_back('=');
  return crypto::Base64Decode(s);
}

struct TokenIssuer::Key {
  PkeyPtr pkey;
};

TokenIssuer::~TokenIssuer() = default;

Result<std::unique_ptr<TokenIssuer>> TokenIssuer::Open(const std::filesystem::path& dir) {
  ORRERY_TRY(files::EnsureDirectory(dir, std::filesystem::perms::owner_all));
  std::unique_ptr<TokenIssuer> t(new TokenIssuer());
  ORRERY_ASSIGN_OR_RETURN(PkeyPtr key, LoadOrCreateKey(dir / "signing-key.pem"));
  ORRERY_ASSIGN_OR_RETURN(t->tenant_, LoadOrCreateTenant(dir / "tenant"));
  BIGNUM *x = nullptr, *y = nullptr;
  if (!EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
      !EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y)) {
    BN_free(x);
    BN_free(y);
    return Error(Errc::kIo, "cannot read the token signing key's public point");
  }
  std::unique_ptr<BIGNUM, BnFree> xp(x), yp(y);
  t->x_ = Base64UrlEncode(BnBytes(x));
  t->y_ = Base64UrlEncode(BnBytes(y));
  t->kid_ = Base64UrlEncode(crypto::Sha256(t->x_ + "." + t->y_)).substr(0, 16);
  t->key_ = std::make_unique<Key>(Key{std::move(key)});
  return t;
}

std::string TokenIssuer::Issue(const Claims& c) const {
  json::object header{{"alg", "ES256"}, {"typ", "JWT"}, {"kid", kid_}};
  json::array roles;
  for (auto& r : c.roles)
    roles.emplace_back(r);
  json::object body{{"aud", c.audience},         {"iss", c.issuer},
                    {"iat", c.issued_at_s},      {"nbf", c.issued_at_s},
                    {"exp", c.expires_at_s},     {"sub", c.subject},
                    {"oid", c.subject},          {"appid", c.subject},
                    {"azp", c.subject},          {"tid", c.tenant.empty() ? tenant_ : c.tenant},
                    {"roles", std::move(roles)}, {"ver", "2.0"}};
  std::string input =
      Base64UrlEncode(json::serialize(header)) + "." + Base64UrlEncode(json::serialize(body));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  size_t der_len = 0;
  std::string der;
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_->pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &der_len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    std::abort();  // signing with a loaded key cannot fail short of memory exhaustion
  }
  der.resize(der_len);
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &der_len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    std::abort();
  }
  // JWS wants r || s (32 bytes each), not the DER sequence OpenSSL produces.
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, SigFree> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)));
  const BIGNUM *r = nullptr, *s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  return input + "." + Base64UrlEncode(BnBytes(r) + BnBytes(s));
}

Result<Claims> TokenIssuer::Verify(std::string_view token,
                                   const std::vector<std::string>& audiences,
                                   std::string_view issuer, int64_t now_s) const {
  if (token.size() > kMaxTokenBytes) return Refuse("too long");
  std::optional<Claims> cached;
  {
    std::lock_guard lock(cache_mu_);
    if (auto it = verified_.find(std::string(token)); it != verified_.end()) cached = it->second;
  }
  if (!cached) {
    ORRERY_ASSIGN_OR_RETURN(Claims fresh, VerifySignature(token));
    std::lock_guard lock(cache_mu_);
    if (verified_.size() >= kMaxCachedTokens) verified_.clear();
    verified_.emplace(std::string(token), fresh);
    cached = std::move(fresh);
  }
  Claims c = std::move(*cached);
  if (std::find(audiences.begin(), audiences.end(), c.audience) == audiences.end()) {
    return Refuse(fmt::format("audience '{}' is not this service", c.audience));
  }
  if (!issuer.empty() && c.issuer != issuer) return Refuse("issued by someone else");
  if (c.tenant != tenant_) return Refuse("issued for another tenant");
  if (c.expires_at_s + kClockSkewS < now_s) return Refuse("expired");
  if (c.issued_at_s - kClockSkewS > now_s) return Refuse("not valid yet");
  return c;
}

Result<Claims> TokenIssuer::VerifySignature(std::string_view token) const {
  if (token.size() > kMaxTokenBytes) return Refuse("too long");
  size_t d1 = token.find('.');
  size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos) {
    return Refuse("not a JWS compact serialisation");
  }
  auto header_raw = Base64UrlDecode(token.substr(0, d1));
  auto body_raw = Base64UrlDecode(token.substr(d1 + 1, d2 - d1 - 1));
  auto sig_raw = Base64UrlDecode(token.substr(d2 + 1));
  if (!header_raw || !body_raw || !sig_raw) return Refuse("not base64url");
  boost::system::error_code ec;
  json::value header = json::parse(*header_raw, ec);
  if (ec || !header.is_object()) return Refuse("the header is not a JSON object");
  if (Str(header.get_object(), "alg") != "ES256") return Refuse("the algorithm is not ES256");
  if (Str(header.get_object(), "kid") != kid_) return Refuse("signed with an unknown key");
  if (sig_raw->size() != 64) return Refuse("the signature has the wrong length");

  std::unique_ptr<ECDSA_SIG, SigFree> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig_raw->data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig_raw->data()) + 32, 32, nullptr);
  ECDSA_SIG_set0(sig.get(), r, s);  // takes r and s
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_len <= 0) return Refuse("bad signature");
  std::string_view input = token.substr(0, d2);
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  int ok =
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_->pkey.get()) == 1 &&
      EVP_DigestVerify(ctx.get(), der, static_cast<size_t>(der_len),
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  OPENSSL_free(der);
  if (!ok) return Refuse("the signature does not verify");

  json::value body = json::parse(*body_raw, ec);
  if (ec || !body.is_object()) return Refuse("the claims are not a JSON object");
  auto& o = body.get_object();
  Claims c{.issuer = Str(o, "iss"),
           .subject = Str(o, "sub"),
           .audience = Str(o, "aud"),
           .tenant = Str(o, "tid"),
           .issued_at_s = Int(o, "nbf"),
           .expires_at_s = Int(o, "exp")};
  if (auto* roles = o.if_contains("roles"); roles && roles->is_array()) {
    for (auto& role : roles->get_array()) {
      if (role.is_string()) c.roles.emplace_back(role.get_string());
    }
  }
  return c;
}

json::object TokenIssuer::Jwks() const {
  json::object k{{"kty", "EC"}, {"crv", "P-256"}, {"x", x_},       {"y", y_},
                 {"kid", kid_}, {"use", "sig"},   {"alg", "ES256"}};
  return json::object{{"keys", json::array{std::move(k)}}};
}

}  // namespace orrery::identity
