#include "net/tls.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <boost/asio/ssl/context.hpp>

namespace orrery::net {
namespace {

constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

Error TlsError(std::string_view what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return Error(BaseErrc::kInvalidArgument, fmt::format("{}: {}", what, buf));
}

void Harden(SSL_CTX* ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_cipher_list(ctx, kTls12Ciphers);
  // Idle connections give their read/write buffers back: matters with 100k+ devices.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

int AcceptAnyClientCert(int /*preverify_ok*/, X509_STORE_CTX* /*ctx*/) {
  return 1;
}

Result<std::shared_ptr<boost::asio::ssl::context>> Load(const TlsServerOptions& o) {
  auto ctx = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  Harden(native);
  if (SSL_CTX_use_certificate_chain_file(native, o.cert_chain.c_str()) != 1) {
    return TlsError(fmt::format("cannot load TLS certificate {}", o.cert_chain.string()));
  }
  if (SSL_CTX_use_PrivateKey_file(native, o.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return TlsError(fmt::format("cannot load TLS key {}", o.key.string()));
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return TlsError(fmt::format("TLS key {} does not match certificate {}", o.key.string(),
                                o.cert_chain.string()));
  }
  if (o.request_client_cert) {
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER, AcceptAnyClientCert);
    // Session resumption would skip the client certificate; each handshake must show it.
    SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(native, SSL_OP_NO_TICKET);
  }
  return ctx;
}

}  // namespace

Result<std::shared_ptr<TlsServerContext>> TlsServerContext::Create(TlsServerOptions options) {
  std::shared_ptr<TlsServerContext> c(new TlsServerContext(std::move(options)));
  ORRERY_TRY(c->Reload());
  return c;
}

Status TlsServerContext::Reload() {
  ORRERY_ASSIGN_OR_RETURN(auto ctx, Load(options_));
  std::lock_guard lock(mu_);
  current_ = std::move(ctx);
  return Ok();
}

std::shared_ptr<boost::asio::ssl::context> TlsServerContext::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

Result<std::shared_ptr<boost::asio::ssl::context>> MakeClientContext(
    const TlsClientOptions& options) {
  auto ctx = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  Harden(native);
  if (options.verify) {
    if (options.ca_file.empty()) {
      SSL_CTX_set_default_verify_paths(native);
    } else if (SSL_CTX_load_verify_locations(native, options.ca_file.c_str(), nullptr) != 1) {
      return TlsError(fmt::format("cannot load CA file {}", options.ca_file.string()));
    }
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
  }
  if (!options.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(native, options.cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(native, options.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      return TlsError(fmt::format("cannot load client certificate {}", options.cert.string()));
    }
  }
  return ctx;
}

}  // namespace orrery::net
