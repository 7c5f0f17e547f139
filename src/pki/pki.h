// Development PKI: a local certificate authority and the certificates Orrery serves with.
//
// `orrery certs init` and the first `orrery serve` (when no certificate is configured) create,
// under <data-dir>/tls/:
//   ca.pem          the development CA certificate — the file clients trust
//   ca-key.pem      its private key (0600)
//   server.pem      the server certificate followed by the CA (a full chain)
//   server-key.pem  its private key (0600)
// Keys are ECDSA P-256 (cheap handshakes for many device connections). The CA lives 10 years,
// server certificates 397 days; a server certificate is reissued when it no longer covers the
// configured host name or expires within 30 days.
//
// Thread safety: free functions, no shared state.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace orrery::pki {

struct CertAndKey {
  std::string cert_pem;
  std::string key_pem;
};

enum class Usage { kServer, kClient };

struct CertRequest {
  std::string common_name;
  std::vector<std::string> dns_names;     // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  // subjectAltName IP entries
  Usage usage = Usage::kServer;
  int days = 397;
  bool is_ca = false;  // an intermediate CA (for X.509 enrollment-group tests)
};

// A self-signed root CA.
Result<CertAndKey> CreateRootCa(std::string_view common_name, int days = 3650);
// A certificate signed by `issuer`.
Result<CertAndKey> IssueCertificate(const CertAndKey& issuer, const CertRequest& request);
// A self-signed leaf certificate (X.509 "selfSigned" device identities).
Result<CertAndKey> CreateSelfSigned(const CertRequest& request);

// SHA-1 and SHA-256 fingerprints of a PEM certificate's DER, upper-case hex (IoT Hub's
// thumbprint format).
Result<std::string> ThumbprintSha1(std::string_view cert_pem);
Result<std::string> ThumbprintSha256(std::string_view cert_pem);

// Facts read from a PEM certificate.
struct CertInfo {
  std::string subject_cn;
  std::string subject;  // the whole subject, one line ("CN=…, O=…")
  bool is_ca = false;   // basicConstraints CA:TRUE
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  int64_t not_after_unix = 0;
};
Result<CertInfo> Inspect(std::string_view cert_pem);
// The same for a DER certificate (what TLS hands over).
Result<CertInfo> InspectDer(std::string_view cert_der);

// Verifies a client's certificate chain (DER, leaf first, then the intermediates it sent)
// against `anchors_pem` (trusted CA certificates; an intermediate CA may be an anchor), at
// `now_unix`, for TLS client use. Returns the index of the anchor the chain ends in, or
// kPermissionDenied with OpenSSL's reason ("certificate has expired", "unable to get local
// issuer certificate", …).
Result<size_t> VerifyChain(const std::vector<std::string>& chain_der,
                           const std::vector<std::string>& anchors_pem, int64_t now_unix);

// Whether `cert_pem` carries a valid signature by the key of `issuer_pem` (proof of
// possession of a CA's private key: the CA signed a certificate the verifier asked for).
Result<bool> IsSignedBy(std::string_view cert_pem, std::string_view issuer_pem);

struct TlsPaths {
  std::filesystem::path ca_cert;
  std::filesystem::path ca_key;
  std::filesystem::path server_cert;
  std::filesystem::path server_key;
};
TlsPaths DevelopmentPaths(const std::filesystem::path& data_dir);

struct EnsureResult {
  TlsPaths paths;
  bool created_ca = false;
  bool issued_server = false;
};

// Creates the development CA and server certificate when missing (or, with force, always),
// and reissues the server certificate when it does not cover `host_name` or is about to
// expire. The server certificate always covers localhost, 127.0.0.1 and ::1 too.
Result<EnsureResult> EnsureDevelopmentCerts(const std::filesystem::path& data_dir,
                                            std::string_view host_name, bool force = false);

}  // namespace orrery::pki
