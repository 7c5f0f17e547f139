#include "hub/certificates.h"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "base/log.h"
#include "base/time.h"
#include "hub/errc.h"
#include "hub/identity.h"
#include "hub/json_fields.h"
#include "pki/pki.h"

namespace orrery::hub {
namespace json = boost::json;

namespace {

constexpr std::string_view kCaSpace = "hub.ca";
constexpr size_t kMaxCertificates = 25;

std::string Encode(const CaCertificate& c) {
  return json::serialize(json::object{{"name", c.name},
                                      {"pem", c.pem},
                                      {"thumbprint", c.thumbprint},
                                      {"subject", c.subject},
                                      {"expiry", c.expiry_unix},
                                      {"verified", c.verified},
                                      {"code", c.verification_code},
                                      {"created", c.created_ms},
                                      {"updated", c.updated_ms},
                                      {"etag", c.etag_counter}});
}

std::optional<CaCertificate> Decode(std::string_view bytes) {
  boost::system::error_code ec;
  json::value v = json::parse(bytes, ec);
  if (ec || !v.is_object()) return std::nullopt;
  auto& o = v.get_object();
  auto str = [&](std::string_view k) { return StringField(o, k); };
  auto num = [&](std::string_view k) { return IntField(o, k); };
  CaCertificate c;
  c.name = str("name");
  c.pem = str("pem");
  c.thumbprint = str("thumbprint");
  c.subject = str("subject");
  c.expiry_unix = num("expiry");
  auto* verified = o.if_contains("verified");
  c.verified = verified && verified->is_bool() && verified->get_bool();
  c.verification_code = str("code");
  c.created_ms = num("created");
  c.updated_ms = num("updated");
  c.etag_counter = static_cast<uint64_t>(num("etag"));
  if (c.name.empty() || c.pem.empty()) return std::nullopt;
  return c;
}

Error NotFound(std::string_view name) {
  return Error(Errc::kCertificateNotFound,
               fmt::format("no CA certificate named '{}' is registered", name));
}

}  // namespace

CaStore::CaStore(store::KvStore* store, std::function<int64_t()> now_ms)
    : store_(store),
      now_ms_(now_ms ? std::move(now_ms) : std::function<int64_t()>(&timeutil::NowMs)) {}

Result<std::unique_ptr<CaStore>> CaStore::Open(store::KvStore* store,
                                               std::function<int64_t()> now_ms) {
  std::unique_ptr<CaStore> s(new CaStore(store, std::move(now_ms)));
  ORRERY_TRY(s->Load());
  return s;
}

Status CaStore::Load() {
  std::lock_guard lock(mu_);
  return store_->Scan(kCaSpace, "", [&](std::string_view, std::string_view value) {
    if (auto c = Decode(value)) {
      certs_[c->name] = std::move(*c);
    } else {
      log::Get("hub")->error("skipped a corrupt CA certificate record");
    }
    return true;
  });
}

void CaStore::Save(const CaCertificate& c, std::function<void(Result<CaCertificate>)> done) {
  store::WriteBatch b;
  b.Put(kCaSpace, c.name, Encode(c));
  store_->WriteAsync(std::move(b), [c, done = std::move(done)](Status st) {
    if (!st) return done(Error(Errc::kUnavailable, st.error().message()));
    done(c);
  });
}

void CaStore::Put(std::string name, std::string pem, bool verified,
                  std::function<void(Result<CaCertificate>)> done) {
  if (auto st = CheckId(name, "certificate name"); !st) return done(st.error());
  auto info = pki::Inspect(pem);
  if (!info) {
    return done(Error(Errc::kInvalidArgument, "the certificate is not a PEM X.509 certificate"));
  }
  if (!info->is_ca) {
    return done(Error(Errc::kInvalidArgument,
                      "the certificate is not a CA certificate (basicConstraints CA:TRUE)"));
  }
  if (info->not_after_unix <= now_ms_() / 1000) {
    return done(Error(Errc::kInvalidArgument, "the certificate has expired"));
  }
  auto thumb = pki::ThumbprintSha1(pem);
  if (!thumb) return done(Error(Errc::kInvalidArgument, thumb.error().message()));
  CaCertificate c;
  c.name = std::move(name);
  c.pem = std::move(pem);
  c.thumbprint = *thumb;
  c.subject = info->subject;
  c.expiry_unix = info->not_after_unix;
  c.verified = verified;
  c.created_ms = c.updated_ms = now_ms_();
  std::lock_guard lock(mu_);
  auto it = certs_.find(c.name);
  if (it == certs_.end() && certs_.size() >= kMaxCertificates) {
    return done(
        Error(Errc::kQuotaExceeded,
              fmt::format("{} CA certificates are registered, the most allowed", certs_.size())));
  }
  if (it != certs_.end()) {
    c.created_ms = it->second.created_ms;
    c.etag_counter = it->second.etag_counter + 1;
  }
  certs_[c.name] = c;
  Save(c, std::move(done));
}

std::optional<CaCertificate> CaStore::Get(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = certs_.find(name);
  if (it == certs_.end()) return std::nullopt;
  return it->second;
}

std::vector<CaCertificate> CaStore::List() const {
  std::lock_guard lock(mu_);
  std::vector<CaCertificate> out;
  for (auto& [n, c] : certs_)
    out.push_back(c);
  return out;
}

void CaStore::Delete(std::string_view name, std::function<void(Status)> done) {
  std::lock_guard lock(mu_);
  auto it = certs_.find(name);
  if (it == certs_.end()) return done(NotFound(name));
  certs_.erase(it);
  store::WriteBatch b;
  b.Delete(kCaSpace, name);
  store_->WriteAsync(std::move(b), [done = std::move(done)](Status st) {
    if (!st) return done(Error(Errc::kUnavailable, st.error().message()));
    done(Ok());
  });
}

void CaStore::GenerateVerificationCode(std::string_view name,
                                       std::function<void(Result<CaCertificate>)> done) {
  std::lock_guard lock(mu_);
  auto it = certs_.find(name);
  if (it == certs_.end()) return done(NotFound(name));
  it->second.verification_code = crypto::HexEncode(crypto::RandomBytes(16), /*upper=*/true);
  it->second.updated_ms = now_ms_();
  ++it->second.etag_counter;
  Save(it->second, std::move(done));
}

void CaStore::Verify(std::string_view name, std::string_view proof_pem,
                     std::function<void(Result<CaCertificate>)> done) {
  std::lock_guard lock(mu_);
  auto it = certs_.find(name);
  if (it == certs_.end()) return done(NotFound(name));
  CaCertificate& c = it->second;
  if (c.verification_code.empty()) {
    return done(Error(Errc::kInvalidArgument,
                      "generate a verification code first (generateVerificationCode)"));
  }
  auto info = pki::Inspect(proof_pem);
  if (!info) return done(Error(Errc::kInvalidArgument, "the proof is not a PEM certificate"));
  if (info->subject_cn != c.verification_code) {
    return done(
        Error(Errc::kInvalidArgument, "the proof's subject CN is not the verification code"));
  }
  auto signed_by = pki::IsSignedBy(proof_pem, c.pem);
  if (!signed_by || !*signed_by) {
    return done(Error(Errc::kInvalidArgument, "the proof is not signed by this CA's key"));
  }
  c.verified = true;
  c.verification_code.clear();
  c.updated_ms = now_ms_();
  ++c.etag_counter;
  Save(c, std::move(done));
}

Result<std::string> CaStore::Authenticate(const std::vector<std::string>& chain_der,
                                          std::string_view device_id) const {
  std::vector<std::string> anchors, names;
  {
    std::lock_guard lock(mu_);
    for (auto& [n, c] : certs_) {
      if (!c.verified) continue;
      anchors.push_back(c.pem);
      names.push_back(n);
    }
  }
  if (anchors.empty()) {
    return Error(Errc::kUnauthorized, "no verified CA certificate is registered with the hub");
  }
  auto leaf = pki::InspectDer(chain_der.front());
  if (!leaf) return Error(Errc::kUnauthorized, "the client certificate cannot be parsed");
  if (leaf->subject_cn != device_id) {
    return Error(Errc::kUnauthorized,
                 fmt::format("the client certificate's subject CN '{}' is not the device id",
                             leaf->subject_cn));
  }
  auto which = pki::VerifyChain(chain_der, anchors, now_ms_() / 1000);
  if (!which) {
    return Error(Errc::kUnauthorized,
                 fmt::format("the client certificate does not chain to a verified CA: {}",
                             which.error().message()));
  }
  return names[*which];
}

}  // namespace orrery::hub
