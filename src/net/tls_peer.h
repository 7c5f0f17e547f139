// net-internal: facts about a TLS peer after the handshake.
#pragma once

#include <string>
#include <vector>

#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace orrery::net::detail {

inline std::string ToDer(X509* cert) {
  int len = i2d_X509(cert, nullptr);
  if (len <= 0) return {};
  std::string der(static_cast<size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_X509(cert, &p);
  return der;
}

// The client's chain as DER, leaf first (OpenSSL's server-side chain omits the leaf).
inline std::vector<std::string> PeerChain(SSL* ssl) {
  std::vector<std::string> out;
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (!leaf) return out;
  out.push_back(ToDer(leaf));
  if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl)) {
    for (int i = 0; i < sk_X509_num(chain); ++i) {
      X509* c = sk_X509_value(chain, i);
      if (X509_cmp(c, leaf) != 0) out.push_back(ToDer(c));
    }
  }
  return out;
}

inline std::string ServerName(SSL* ssl) {
  const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  return sni ? sni : "";
}

// SSL_set_tlsext_host_name is a macro with an old-style cast; keep the warning out of callers.
inline void SetServerName(SSL* ssl, const char* host) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
  SSL_set_tlsext_host_name(ssl, host);
#pragma GCC diagnostic pop
}

}  // namespace orrery::net::detail
