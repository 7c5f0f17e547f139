// TLS contexts on OpenSSL 3: TLS 1.2+ only, modern AEAD cipher suites, ECDHE only.
//
// A server context loads a certificate chain and key from files and can Reload() them (on
// SIGHUP): new handshakes use the new files, established connections keep theirs. Clients
// may present a certificate; it is requested, captured, and left for the authenticator to
// judge (devices use self-signed thumbprints or CA chains that only the hub can evaluate).
//
// The OpenSSL/Asio-SSL types are only forward-declared here; include this freely.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "base/error.h"

namespace boost::asio::ssl {
class context;
}

namespace orrery::net {

struct TlsServerOptions {
  std::filesystem::path cert_chain;  // PEM: leaf first, then intermediates
  std::filesystem::path key;         // PEM private key
  bool request_client_cert = true;
};

class TlsServerContext {
 public:
  static Result<std::shared_ptr<TlsServerContext>> Create(TlsServerOptions options);

  // Re-reads the files. On failure the previous certificate stays in use.
  Status Reload();
  // The context for the next handshake. Thread-safe.
  std::shared_ptr<boost::asio::ssl::context> Current() const;
  const TlsServerOptions& options() const { return options_; }

 private:
  explicit TlsServerContext(TlsServerOptions options) : options_(std::move(options)) {}
  TlsServerOptions options_;
  mutable std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_;
};

struct TlsClientOptions {
  std::filesystem::path ca_file;  // trust anchors; empty = the system's default store
  bool verify = true;             // verify the server certificate and host name
  std::filesystem::path cert;     // optional client certificate (PEM) ...
  std::filesystem::path key;      // ... and its key
};

// A client context (HTTPS client, MQTT benchmark clients, tests).
Result<std::shared_ptr<boost::asio::ssl::context>> MakeClientContext(
    const TlsClientOptions& options);

}  // namespace orrery::net
