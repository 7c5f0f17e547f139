// The provisioning service core, protocol-neutral (wire contract §5): device attestation
// (symmetric keys — individual, or derived from a group key — and X.509 client certificates,
// individual by thumbprint or group by chain), the registration flow with its operations
// (assigning → assigned / failed / disabled), allocation over the linked hubs (hashed with
// weights, static, custom webhook, geoLatency as the nearest = local hub), reprovisioning
// (update hub assignment, migrate or reset device data, never), and the device's creation on
// its hub with the enrollment's credential kind, initial twin and capabilities.
//
//   devices ─MQTT/HTTPS adapters─▶ Authenticate, Register (202 + operation), OperationStatus
//   service ─REST─▶ enrollments(), the EnrollmentStore
//
// Threads: every method is safe from any thread. Callbacks run on the store's writer thread,
// the HTTP client's executor or the caller's thread: adapters post to their own executors.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/json/object.hpp>

#include "base/error.h"
#include "base/metrics.h"
#include "dps/enrollment.h"
#include "dps/enrollment_store.h"
#include "dps/linked_hubs.h"
#include "net/tls.h"

namespace orrery::hub {
class CaStore;
}
namespace orrery::net {
class HttpClient;
}

namespace orrery::dps {

struct ProvisioningOptions {
  std::string id_scope;      // "0ne…": the first segment of device requests
  std::string service_host;  // the DPS host name (service SAS tokens' sr)
  AllocationPolicy default_allocation = AllocationPolicy::kHashed;
  int retry_after_s = 1;  // what devices are told to wait between status polls
  // A register request is answered with the final status when the assignment finishes within
  // this (the SDKs accept "assigned" on the register answer: one round trip); otherwise with
  // "assigning" and an operation to poll, as DPS always does. 0 = always "assigning".
  std::chrono::milliseconds answer_within{2000};
  size_t max_pending_operations = 100'000;
  int64_t operation_retention_ms = 10 * 60'000;  // finished operations kept in memory
  net::TlsClientOptions webhook_tls;             // custom allocation webhooks
  std::chrono::milliseconds webhook_timeout{10000};
  StoreLimits limits;
  std::function<int64_t()> now_ms;
  // Told of every registration outcome once it is durable and answered, last (any thread;
  // must not block).
  std::function<void(const Registration&)> on_finished;
  metrics::Registry* metrics = nullptr;
};

// Who a device proved to be.
struct Attested {
  std::string registration_id;
  Enrollment enrollment;                   // the individual enrollment or the group it matched
  std::string primary_key, secondary_key;  // symmetric: the device's keys (derived for groups)
  std::vector<std::string> chain_der;      // x509: what the device presented, leaf first
  std::string thumbprint_sha1;             // x509: the leaf's
};

struct DeviceCredentials {
  std::string_view registration_id;
  std::optional<std::string_view> sas_token;  // "SharedAccessSignature sr=…"
  const std::vector<std::string>* client_cert_chain_der = nullptr;  // leaf first
};

class ProvisioningService {
 public:
  // `store` and `cas` (the hub's verified CA certificates, for caReferences; nullable) must
  // outlive the service. `executor` runs webhook calls.
  static Result<std::unique_ptr<ProvisioningService>> Open(ProvisioningOptions options,
                                                           store::KvStore* store,
                                                           const hub::CaStore* cas,
                                                           boost::asio::any_io_executor executor);
  ~ProvisioningService();

  // Adds a linked hub (before serving). The first local hub is also the default for devices
  // whose allocation finds no candidate of their own.
  void AddLinkedHub(LinkedHub hub);
  const std::vector<LinkedHub>& linked_hubs() const { return hubs_; }

  EnrollmentStore& enrollments() { return *store_; }
  const ProvisioningOptions& options() const { return options_; }

  // Whether `scope` is this service's ID scope (case-insensitive, as DPS treats it).
  bool IsScope(std::string_view scope) const;

  // Attestation: the individual enrollment for the registration id takes precedence; else the
  // groups of the credential's kind are tried. kUnauthorized with a message fit for the
  // client (never a key or signature): unknown registration, wrong or expired token, a
  // certificate whose CN is not the registration id, that is not enrolled or does not chain
  // to a group's CA. A disabled enrollment still attests (registration then says disabled).
  Result<Attested> Authenticate(const DeviceCredentials& credentials) const;

  // Starts (or, while one is running, joins) a registration: `done` gets the operation status
  // to answer with — the final {"operationId","status":"assigned"|"failed"|"disabled",
  // "registrationState":…} when it finished within answer_within, else
  // {"operationId":…,"status":"assigning"}. `payload`: the device's custom data (≤ 4 KB
  // JSON). kThrottled when too many operations are pending.
  void Register(Attested device, std::optional<boost::json::value> payload,
                std::function<void(Result<boost::json::object>)> done);

  // An operation's status: {"operationId","status"[,"registrationState"]}. Known while in
  // memory, and afterwards from the stored registration state (so a poll after a restart
  // still answers). kRegistrationNotFound for an unknown operation.
  Result<boost::json::object> OperationStatus(std::string_view registration_id,
                                              std::string_view operation_id) const;

  // Stops webhook calls from starting; pending operations fail.
  void Shutdown();

 private:
  struct Operation;
  ProvisioningService(ProvisioningOptions options, const hub::CaStore* cas,
                      boost::asio::any_io_executor executor);
  void Assign(std::shared_ptr<Operation> op, Attested device,
              std::optional<boost::json::value> payload);
  void Allocate(const Attested& device, const std::optional<Registration>& previous,
                const std::optional<boost::json::value>& payload,
                std::function<void(Result<const LinkedHub*>, std::optional<boost::json::object>,
                                   std::optional<boost::json::value>)>
                    done);
  void CallCustomAllocation(
      const Attested& device, const std::optional<Registration>& previous,
      const std::optional<boost::json::value>& payload, std::vector<const LinkedHub*> candidates,
      std::function<void(Result<const LinkedHub*>, std::optional<boost::json::object>,
                         std::optional<boost::json::value>)>
          done);
  void Finish(const std::shared_ptr<Operation>& op, Registration r);
  const LinkedHub* FindHub(std::string_view host) const;
  Result<DeviceSpec> SpecFor(const Attested& device, const LinkedHub& hub) const;
  void Prune();

  ProvisioningOptions options_;
  const hub::CaStore* cas_;
  boost::asio::any_io_executor executor_;
  std::unique_ptr<EnrollmentStore> store_;
  std::shared_ptr<net::HttpClient> webhooks_;
  std::vector<LinkedHub> hubs_;  // fixed before serving

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Operation>, std::less<>> operations_;  // by id
  std::map<std::string, std::string, std::less<>> running_;  // registration id → operation id
  std::atomic<bool> stopping_{false};

  metrics::ScopedCollector collector_;
  metrics::Counter* assigned_ = nullptr;
  metrics::Counter* failed_ = nullptr;
  metrics::Counter* refused_ = nullptr;
};

}  // namespace orrery::dps
