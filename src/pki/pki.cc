#include "pki/pki.h"

#include <arpa/inet.h>

#include <ctime>
#include <memory>

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/crypto.h"
#include "base/files.h"

namespace orrery::pki {
namespace {

template <auto Fn>
struct Deleter {
  template <class T>
  void operator()(T* p) const {
    Fn(p);
  }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;

Error SslError(std::string_view what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown OpenSSL error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return Error(BaseErrc::kInternal, fmt::format("{}: {}", what, buf));
}

Result<X509Ptr> ParseCert(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return SslError("cannot parse certificate");
  return cert;
}

Result<KeyPtr> ParseKey(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return SslError("cannot parse private key");
  return key;
}

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<std::string> CertPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509(bio.get(), cert) != 1) return SslError("cannot write certificate");
  return BioToString(bio.get());
}

Result<std::string> KeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return SslError("cannot write private key");
  }
  return BioToString(bio.get());
}

Status AddExt(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext) return SslError(fmt::format("cannot build extension {}", OBJ_nid2sn(nid)));
  if (X509_add_ext(cert, ext.get(), -1) != 1) return SslError("cannot add extension");
  return Ok();
}

struct Signer {
  X509* cert;     // issuer certificate, or nullptr for self-signed
  EVP_PKEY* key;  // issuer key (the subject's own key when self-signed)
};

Result<CertAndKey> Build(const CertRequest& req, bool root_ca, const Signer* signer) {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return SslError("cannot generate key");
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);

  // 127-bit random serial: positive and unique enough for a development CA.
  unsigned char serial_bytes[16];
  RAND_bytes(serial_bytes, sizeof serial_bytes);
  serial_bytes[0] &= 0x7f;
  BnPtr bn(BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr));
  BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()));

  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);  // tolerate small clock skew
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(req.days) * 86400);
  X509_set_pubkey(cert.get(), key.get());

  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("Orrery"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(req.common_name.c_str()), -1,
                             -1, 0);
  X509* issuer_cert = signer && signer->cert ? signer->cert : cert.get();
  EVP_PKEY* issuer_key = signer && signer->cert ? signer->key : key.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert));

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer_cert, cert.get(), nullptr, nullptr, 0);
  ORRERY_TRY(AddExt(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  if (issuer_cert != cert.get()) {
    ORRERY_TRY(AddExt(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  }
  if (root_ca || req.is_ca) {
    ORRERY_TRY(AddExt(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE"));
    ORRERY_TRY(AddExt(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
  } else {
    ORRERY_TRY(AddExt(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
    ORRERY_TRY(AddExt(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature"));
    ORRERY_TRY(AddExt(cert.get(), &ctx, NID_ext_key_usage,
                      req.usage == Usage::kServer ? "serverAuth" : "clientAuth"));
    std::string san;
    for (auto& d : req.dns_names)
      san += (san.empty() ? "DNS:" : ",DNS:") + d;
    for (auto& ip : req.ip_addresses)
      san += (san.empty() ? "IP:" : ",IP:") + ip;
    if (!san.empty()) ORRERY_TRY(AddExt(cert.get(), &ctx, NID_subject_alt_name, san));
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) return SslError("cannot sign");

  CertAndKey out;
  ORRERY_ASSIGN_OR_RETURN(out.cert_pem, CertPem(cert.get()));
  ORRERY_ASSIGN_OR_RETURN(out.key_pem, KeyPem(key.get()));
  return out;
}

Result<std::string> Fingerprint(std::string_view cert_pem, const EVP_MD* md) {
  ORRERY_ASSIGN_OR_RETURN(X509Ptr cert, ParseCert(cert_pem));
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert.get(), md, buf, &n) != 1) return SslError("cannot digest certificate");
  return crypto::HexEncode(std::string_view(reinterpret_cast<char*>(buf), n), /*upper=*/true);
}

}  // namespace

Result<CertAndKey> CreateRootCa(std::string_view common_name, int days) {
  CertRequest req{.common_name = std::string(common_name), .days = days};
  return Build(req, /*root_ca=*/true, nullptr);
}

Result<CertAndKey> IssueCertificate(const CertAndKey& issuer, const CertRequest& request) {
  ORRERY_ASSIGN_OR_RETURN(X509Ptr cert, ParseCert(issuer.cert_pem));
  ORRERY_ASSIGN_OR_RETURN(KeyPtr key, ParseKey(issuer.key_pem));
  Signer signer{cert.get(), key.get()};
  return Build(request, /*root_ca=*/false, &signer);
}

Result<CertAndKey> CreateSelfSigned(const CertRequest& request) {
  return Build(request, /*root_ca=*/false, nullptr);
}

Result<std::string> ThumbprintSha1(std::string_view cert_pem) {
  return Fingerprint(cert_pem, EVP_sha1());
}
Result<std::string> ThumbprintSha256(std::string_view cert_pem) {
  return Fingerprint(cert_pem, EVP_sha256());
}

namespace {

CertInfo Describe(X509* cert) {
  CertInfo info;
  char cn[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0) {
    info.subject_cn = cn;
  }
  BioPtr subject(BIO_new(BIO_s_mem()));
  if (X509_NAME_print_ex(subject.get(), X509_get_subject_name(cert), 0, XN_FLAG_ONELINE) >= 0) {
    info.subject = BioToString(subject.get());
  }
  info.is_ca = X509_check_ca(cert) == 1;
  NamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (names) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
      if (gn->type == GEN_DNS) {
        const auto* s = gn->d.dNSName;
        info.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                    static_cast<size_t>(ASN1_STRING_length(s)));
      } else if (gn->type == GEN_IPADD) {
        const auto* ip = gn->d.iPAddress;
        int len = ASN1_STRING_length(ip);
        char text[INET6_ADDRSTRLEN] = {};
        if ((len == 4 || len == 16) && inet_ntop(len == 4 ? AF_INET : AF_INET6,
                                                 ASN1_STRING_get0_data(ip), text, sizeof text)) {
          info.ip_addresses.emplace_back(text);
        }
      }
    }
  }
  const ASN1_TIME* na = X509_get0_notAfter(cert);
  std::tm tm{};
  if (ASN1_TIME_to_tm(na, &tm) == 1) info.not_after_unix = timegm(&tm);
  return info;
}

Result<X509Ptr> ParseDer(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) return SslError("cannot parse certificate (DER)");
  return cert;
}

}  // namespace

Result<CertInfo> Inspect(std::string_view cert_pem) {
  ORRERY_ASSIGN_OR_RETURN(X509Ptr cert, ParseCert(cert_pem));
  return Describe(cert.get());
}

Result<CertInfo> InspectDer(std::string_view cert_der) {
  ORRERY_ASSIGN_OR_RETURN(X509Ptr cert, ParseDer(cert_der));
  return Describe(cert.get());
}

Result<size_t> VerifyChain(const std::vector<std::string>& chain_der,
                           const std::vector<std::string>& anchors_pem, int64_t now_unix) {
  if (chain_der.empty()) return Error(BaseErrc::kPermissionDenied, "no client certificate");
  using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
  using CtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;
  struct StackFree {
    void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }  // a macro: no Deleter<>
  };
  using StackPtr = std::unique_ptr<STACK_OF(X509), StackFree>;
  ORRERY_ASSIGN_OR_RETURN(X509Ptr leaf, ParseDer(chain_der.front()));
  std::vector<X509Ptr> intermediates;
  StackPtr untrusted(sk_X509_new_null());
  for (size_t i = 1; i < chain_der.size(); ++i) {
    auto c = ParseDer(chain_der[i]);
    if (!c) continue;  // junk the client sent along does not help it
    sk_X509_push(untrusted.get(), c->get());
    intermediates.push_back(std::move(*c));
  }
  StorePtr store(X509_STORE_new());
  std::vector<X509Ptr> anchors;
  for (auto& pem : anchors_pem) {
    ORRERY_ASSIGN_OR_RETURN(X509Ptr a, ParseCert(pem));
    X509_STORE_add_cert(store.get(), a.get());
    anchors.push_back(std::move(a));
  }
  CtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), untrusted.get()) != 1) {
    return SslError("cannot set up certificate verification");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  // A registered intermediate CA is a trust anchor of its own (IoT Hub accepts those).
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_USE_CHECK_TIME);
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(now_unix));
  X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_CLIENT);
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return Error(BaseErrc::kPermissionDenied, X509_verify_cert_error_string(err));
  }
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx.get());
  X509* top = sk_X509_value(chain, sk_X509_num(chain) - 1);
  for (size_t i = 0; i < anchors.size(); ++i) {
    if (X509_cmp(top, anchors[i].get()) == 0) return i;
  }
  return Error(BaseErrc::kPermissionDenied, "the chain does not end in a registered CA");
}

Result<bool> IsSignedBy(std::string_view cert_pem, std::string_view issuer_pem) {
  ORRERY_ASSIGN_OR_RETURN(X509Ptr cert, ParseCert(cert_pem));
  ORRERY_ASSIGN_OR_RETURN(X509Ptr issuer, ParseCert(issuer_pem));
  EVP_PKEY* key = X509_get0_pubkey(issuer.get());
  if (!key) return SslError("the issuer certificate has no public key");
  bool ok = X509_verify(cert.get(), key) == 1;
  ERR_clear_error();
  return ok;
}

TlsPaths DevelopmentPaths(const std::filesystem::path& data_dir) {
  auto tls = data_dir / "tls";
  return {tls / "ca.pem", tls / "ca-key.pem", tls / "server.pem", tls / "server-key.pem"};
}

Result<EnsureResult> EnsureDevelopmentCerts(const std::filesystem::path& data_dir,
                                            std::string_view host_name, bool force) {
  EnsureResult result;
  result.paths = DevelopmentPaths(data_dir);
  const TlsPaths& p = result.paths;
  ORRERY_TRY(files::EnsureDirectory(p.ca_cert.parent_path(), std::filesystem::perms::owner_all));

  CertAndKey ca;
  bool have_ca = !force && std::filesystem::exists(p.ca_cert) && std::filesystem::exists(p.ca_key);
  if (have_ca) {
    ORRERY_ASSIGN_OR_RETURN(ca.cert_pem, files::ReadFile(p.ca_cert));
    ORRERY_ASSIGN_OR_RETURN(ca.key_pem, files::ReadFile(p.ca_key));
  } else {
    ORRERY_ASSIGN_OR_RETURN(ca, CreateRootCa("Orrery Development CA"));
    ORRERY_TRY(files::WriteFileAtomic(p.ca_key, ca.key_pem, files::kSecretPerms));
    ORRERY_TRY(files::WriteFileAtomic(p.ca_cert, ca.cert_pem));
    result.created_ca = true;
  }

  bool need_server = result.created_ca || !std::filesystem::exists(p.server_cert) ||
                     !std::filesystem::exists(p.server_key);
  if (!need_server) {
    ORRERY_ASSIGN_OR_RETURN(std::string pem, files::ReadFile(p.server_cert));
    auto info = Inspect(pem);
    bool covers = false;
    if (info) {
      for (auto& d : info->dns_names)
        covers = covers || d == host_name;
      covers = covers && info->not_after_unix > std::time(nullptr) + 30 * 86400;
    }
    need_server = !covers;
  }
  if (need_server) {
    CertRequest req{.common_name = std::string(host_name),
                    .dns_names = {std::string(host_name)},
                    .ip_addresses = {"127.0.0.1", "::1"},
                    .usage = Usage::kServer};
    if (host_name != "localhost") req.dns_names.push_back("localhost");
    ORRERY_ASSIGN_OR_RETURN(CertAndKey server, IssueCertificate(ca, req));
    ORRERY_TRY(files::WriteFileAtomic(p.server_key, server.key_pem, files::kSecretPerms));
    ORRERY_TRY(files::WriteFileAtomic(p.server_cert, server.cert_pem + ca.cert_pem));
    result.issued_server = true;
  }
  return result;
}

}  // namespace orrery::pki
