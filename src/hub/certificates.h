// The hub's registered X.509 CA certificates (IoT Hub's "Certificates"): devices whose
// authentication type is certificateAuthority authenticate with a client certificate that
// chains to one of these *verified* CAs and whose subject CN is the device id.
//
// A CA is verified either when it is uploaded with isVerified (the operator vouches for it)
// or by proof of possession: the hub issues a random verification code, and the operator
// uploads a certificate with CN = that code, signed by the CA's private key.
//
// Stored in the state store ("hub.ca", by name); every change is durable before `done`.
// Thread safety: all methods are safe from any thread; callbacks run on the store's writer
// thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "store/kv_store.h"

namespace orrery::hub {

struct CaCertificate {
  std::string name;
  std::string pem;
  std::string thumbprint;  // SHA-1, upper-case hex
  std::string subject;
  int64_t expiry_unix = 0;
  bool verified = false;
  std::string verification_code;  // while a proof of possession is pending
  int64_t created_ms = 0, updated_ms = 0;
  uint64_t etag_counter = 1;
};

class CaStore {
 public:
  static Result<std::unique_ptr<CaStore>> Open(store::KvStore* store,
                                               std::function<int64_t()> now_ms = {});

  // Adds or replaces a CA certificate (PEM, must be a CA: basicConstraints CA:TRUE, not
  // expired). Replacing keeps nothing of the old one. kInvalidArgument for anything else;
  // at most 25 certificates (IoT Hub's limit) → kQuotaExceeded.
  void Put(std::string name, std::string pem, bool verified,
           std::function<void(Result<CaCertificate>)> done);
  std::optional<CaCertificate> Get(std::string_view name) const;
  std::vector<CaCertificate> List() const;
  void Delete(std::string_view name, std::function<void(Status)> done);
  // A fresh verification code for the proof of possession.
  void GenerateVerificationCode(std::string_view name,
                                std::function<void(Result<CaCertificate>)> done);
  // Checks the proof: `proof_pem`'s CN is the pending code and the CA signed it.
  void Verify(std::string_view name, std::string_view proof_pem,
              std::function<void(Result<CaCertificate>)> done);

  // For device authentication: the name of the verified CA the chain (DER, leaf first)
  // leads to, when the leaf's subject CN is `device_id`. kUnauthorized with the reason.
  Result<std::string> Authenticate(const std::vector<std::string>& chain_der,
                                   std::string_view device_id) const;

 private:
  CaStore(store::KvStore* store, std::function<int64_t()> now_ms);
  Status Load();
  void Save(const CaCertificate& c, std::function<void(Result<CaCertificate>)> done);

  store::KvStore* store_;
  std::function<int64_t()> now_ms_;
  mutable std::mutex mu_;
  std::map<std::string, CaCertificate, std::less<>> certs_;  // guarded by mu_
};

}  // namespace orrery::hub
