#include "dps/provisioning.h"

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "base/log.h"
#include "base/strings.h"
#include "base/time.h"
#include "dps/errc.h"
#include "hub/certificates.h"
#include "hub/device_auth.h"
#include "hub/sas.h"
#include "net/http_client.h"
#include "pki/pki.h"

namespace orrery::dps {
namespace json = boost::json;

namespace {
const std::shared_ptr<spdlog::logger>& Log() {
  static auto l = log::Get("dps");
  return l;
}

Error Unauthorized(std::string message) {
  return Error(Errc::kUnauthorized, std::move(message));
}

bool KeyMatches(const hub::SasToken& token, const std::string& key) {
  return !key.empty() && hub::SasSignatureMatches(token, key);
}
}  // namespace

struct ProvisioningService::Operation {
  std::string id;
  std::string registration_id;
  int64_t started_ms = 0;
  int64_t finished_ms = 0;             // guarded by the service's mu_
  std::optional<json::object> result;  // the final status, guarded by mu_
  // The register request's answer while it waits for the outcome (or its deadline); guarded
  // by mu_, taken exactly once.
  std::function<void(Result<json::object>)> answer;
  std::unique_ptr<boost::asio::steady_timer> deadline;
};

ProvisioningService::ProvisioningService(ProvisioningOptions options, const hub::CaStore* cas,
                                         boost::asio::any_io_executor executor)
    : options_(std::move(options)), cas_(cas), executor_(std::move(executor)) {
  if (!options_.now_ms) options_.now_ms = &timeutil::NowMs;
  if (auto* m = options_.metrics) {
    assigned_ = &m->GetCounter("orrery_dps_registrations_total", "Device registrations by outcome.",
                               {{"result", "assigned"}});
    failed_ = &m->GetCounter("orrery_dps_registrations_total", "Device registrations by outcome.",
                             {{"result", "failed"}});
    refused_ = &m->GetCounter("orrery_dps_registrations_total", "Device registrations by outcome.",
                              {{"result", "disabled"}});
    collector_ = metrics::ScopedCollector(*m, [this](metrics::Sink& s) {
      s.Gauge("orrery_dps_enrollments", "Individual enrollments.", {},
              static_cast<double>(store_->count(false)));
      s.Gauge("orrery_dps_enrollment_groups", "Enrollment groups.", {},
              static_cast<double>(store_->count(true)));
      s.Gauge("orrery_dps_registration_states", "Device registration states.", {},
              static_cast<double>(store_->registration_count()));
    });
  }
}

ProvisioningService::~ProvisioningService() {
  collector_.Reset();
}

Result<std::unique_ptr<ProvisioningService>> ProvisioningService::Open(
    ProvisioningOptions options, store::KvStore* store, const hub::CaStore* cas,
    boost::asio::any_io_executor executor) {
  std::unique_ptr<ProvisioningService> s(
      new ProvisioningService(std::move(options), cas, executor));
  ORRERY_ASSIGN_OR_RETURN(s->store_,
                          EnrollmentStore::Open(store, s->options_.limits, s->options_.now_ms));
  ORRERY_ASSIGN_OR_RETURN(s->webhooks_,
                          net::HttpClient::Create(executor, {.tls = s->options_.webhook_tls,
                                                             .timeout = s->options_.webhook_timeout,
                                                             .max_response_bytes = 64 * 1024}));
  return s;
}

void ProvisioningService::AddLinkedHub(LinkedHub hub) {
  hubs_.push_back(std::move(hub));
}

bool ProvisioningService::IsScope(std::string_view scope) const {
  return strings::IEquals(scope, options_.id_scope);
}

void ProvisioningService::Shutdown() {
  stopping_ = true;
}

// ---------------------------------------------------------------- attestation

Result<Attested> ProvisioningService::Authenticate(const DeviceCredentials& c) const {
  if (auto st = CheckId(c.registration_id, "registration id"); !st) {
    return Unauthorized(st.error().message());
  }
  Attested out;
  out.registration_id = std::string(c.registration_id);
  bool has_cert = c.client_cert_chain_der && !c.client_cert_chain_der->empty();
  bool has_token = c.sas_token && !c.sas_token->empty();
  auto individual = store_->Get(false, c.registration_id);

  if (has_token) {
    auto token = hub::ParseSasToken(*c.sas_token);
    if (!token) return Unauthorized(token.error().message());
    std::string expected = options_.id_scope + "/registrations/" + out.registration_id;
    if (!strings::IEquals(token->resource, expected)) {
      return Unauthorized(fmt::format("the SAS token's resource must be '{}'", expected));
    }
    if (token->expiry <= options_.now_ms() / 1000) {
      return Unauthorized("the SAS token has expired");
    }
    if (individual) {
      if (individual->attestation.type != AttestationType::kSymmetricKey) {
        return Unauthorized(fmt::format(
            "registration '{}' is enrolled for X.509 attestation: present its client certificate",
            out.registration_id));
      }
      if (!KeyMatches(*token, individual->attestation.primary_key) &&
          !KeyMatches(*token, individual->attestation.secondary_key)) {
        return Unauthorized("the SAS token's signature does not verify");
      }
      out.primary_key = individual->attestation.primary_key;
      out.secondary_key = individual->attestation.secondary_key;
      out.enrollment = std::move(*individual);
      return out;
    }
    for (auto& g : store_->Groups(AttestationType::kSymmetricKey)) {
      auto primary = DeriveDeviceKey(g.attestation.primary_key, out.registration_id);
      auto secondary = DeriveDeviceKey(g.attestation.secondary_key, out.registration_id);
      if (!primary || !secondary) continue;
      if (KeyMatches(*token, *primary) || KeyMatches(*token, *secondary)) {
        out.primary_key = *primary;
        out.secondary_key = *secondary;
        out.enrollment = g;
        return out;
      }
    }
    // One message for "not enrolled" and "wrong key": do not confirm which ids are enrolled.
    return Unauthorized("the SAS token's signature does not verify");
  }

  if (!has_cert) {
    return Unauthorized(
        "no credential: send a SAS token (symmetric key) or a TLS client certificate (X.509)");
  }
  const auto& chain = *c.client_cert_chain_der;
  auto leaf = pki::InspectDer(chain.front());
  if (!leaf) return Unauthorized("the client certificate cannot be read");
  if (leaf->subject_cn != out.registration_id) {
    return Unauthorized(fmt::format("the client certificate's CN '{}' is not the registration id",
                                    leaf->subject_cn));
  }
  int64_t now_s = options_.now_ms() / 1000;
  if (leaf->not_after_unix <= now_s) return Unauthorized("the client certificate has expired");
  out.chain_der = chain;
  out.thumbprint_sha1 = hub::ThumbprintSha1Der(chain.front());
  if (individual) {
    if (individual->attestation.type != AttestationType::kX509) {
      return Unauthorized(fmt::format(
          "registration '{}' is enrolled for symmetric-key attestation: send a SAS token",
          out.registration_id));
    }
    std::string sha256 = hub::ThumbprintSha256Der(chain.front());
    for (auto& cert : individual->attestation.client_certificates) {
      if (crypto::ConstantTimeEqual(cert.sha1, out.thumbprint_sha1) ||
          crypto::ConstantTimeEqual(cert.sha256, sha256)) {
        out.enrollment = std::move(*individual);
        return out;
      }
    }
    return Unauthorized("the client certificate is not the enrolled one");
  }
  for (auto& g : store_->Groups(AttestationType::kX509)) {
    std::vector<std::string> anchors;
    for (auto& cert : g.attestation.signing_certificates)
      anchors.push_back(cert.pem);
    for (auto& name : g.attestation.ca_references) {
      if (!cas_) continue;
      auto ca = cas_->Get(name);
      if (ca && ca->verified) anchors.push_back(ca->pem);
    }
    if (anchors.empty()) continue;
    if (pki::VerifyChain(chain, anchors, now_s)) {
      out.enrollment = g;
      return out;
    }
  }
  return Unauthorized(
      "the client certificate is neither enrolled individually nor chains to an enrollment "
      "group's CA");
}

// ---------------------------------------------------------------- registration

void ProvisioningService::Prune() {
  // REQUIRES: mu_ held.
  int64_t cutoff = options_.now_ms() - options_.operation_retention_ms;
  for (auto it = operations_.begin(); it != operations_.end();) {
    if (it->second->result && it->second->finished_ms < cutoff) {
      it = operations_.erase(it);
    } else {
      ++it;
    }
  }
}

void ProvisioningService::Register(Attested device, std::optional<json::value> payload,
                                   std::function<void(Result<json::object>)> done) {
  if (stopping_) return done(Error(Errc::kUnavailable, "the provisioning service is stopping"));
  if (payload && json::serialize(*payload).size() > kMaxPayloadBytes) {
    return done(
        Error(Errc::kInvalidArgument,
              fmt::format("the registration payload is larger than {} bytes", kMaxPayloadBytes)));
  }
  std::shared_ptr<Operation> op;
  {
    std::lock_guard lock(mu_);
    if (auto it = running_.find(device.registration_id); it != running_.end()) {
      return done(json::object{{"operationId", it->second}, {"status", "assigning"}});
    }
    if (running_.size() >= options_.max_pending_operations) {
      return done(
          Error(Errc::kThrottled,
                fmt::format("{} registrations are in progress; retry later", running_.size())));
    }
    if (operations_.size() >= options_.max_pending_operations) Prune();
    op = std::make_shared<Operation>();
    op->id = "4." + crypto::HexEncode(crypto::RandomBytes(8)) + "." +
             crypto::HexEncode(crypto::RandomBytes(16));
    op->registration_id = device.registration_id;
    op->started_ms = options_.now_ms();
    operations_[op->id] = op;
    running_[device.registration_id] = op->id;
    if (options_.answer_within.count() > 0) {
      op->answer = std::move(done);
      op->deadline = std::make_unique<boost::asio::steady_timer>(executor_);
    }
  }
  if (!op->answer) {
    done(json::object{{"operationId", op->id}, {"status", "assigning"}});
  } else {
    // Past the deadline the device is told to poll instead. The timer lives on executor_
    // only (armed and cancelled there).
    boost::asio::post(executor_, [this, op] {
      op->deadline->expires_after(options_.answer_within);
      op->deadline->async_wait([this, op](const boost::system::error_code&) {
        std::function<void(Result<json::object>)> answer;
        {
          std::lock_guard lock(mu_);
          answer = std::move(op->answer);
          op->answer = nullptr;
        }
        if (answer) answer(json::object{{"operationId", op->id}, {"status", "assigning"}});
      });
    });
  }
  Assign(op, std::move(device), std::move(payload));
}

Result<json::object> ProvisioningService::OperationStatus(std::string_view registration_id,
                                                          std::string_view operation_id) const {
  {
    std::lock_guard lock(mu_);
    auto it = operations_.find(operation_id);
    if (it != operations_.end() && it->second->registration_id == registration_id) {
      if (!it->second->result) {
        return json::object{{"operationId", it->second->id}, {"status", "assigning"}};
      }
      return *it->second->result;
    }
  }
  auto r = store_->GetRegistration(registration_id);
  if (r && r->operation_id == operation_id) {
    return json::object{{"operationId", r->operation_id},
                        {"status", RegistrationStatusName(r->status)},
                        {"registrationState", RegistrationToJson(*r)}};
  }
  return Error(Errc::kRegistrationNotFound, fmt::format("no operation '{}' for registration '{}'",
                                                        operation_id, registration_id));
}

const LinkedHub* ProvisioningService::FindHub(std::string_view host) const {
  for (auto& h : hubs_) {
    if (strings::IEquals(h.host_name, host)) return &h;
  }
  return nullptr;
}

Result<DeviceSpec> ProvisioningService::SpecFor(const Attested& device,
                                                const LinkedHub& hub) const {
  DeviceSpec spec;
  const Enrollment& e = device.enrollment;
  spec.device_id = !e.group && !e.device_id.empty() ? e.device_id : device.registration_id;
  spec.iot_edge = e.iot_edge;
  if (e.attestation.type == AttestationType::kSymmetricKey) {
    spec.auth.type = hub::AuthType::kSas;
    spec.auth.primary_key = device.primary_key;
    spec.auth.secondary_key = device.secondary_key;
    return spec;
  }
  if (!e.group) {
    // The device's enrolled certificates, by thumbprint (IoT Hub's selfSigned kind).
    spec.auth.type = hub::AuthType::kSelfSigned;
    auto& certs = e.attestation.client_certificates;
    spec.auth.primary_thumbprint = certs.at(0).sha1;
    spec.auth.secondary_thumbprint = certs.size() > 1 ? certs[1].sha1 : certs[0].sha1;
    return spec;
  }
  // A group member: CA authentication where the hub trusts the CA the chain reaches (the local
  // hub's verified CAs); elsewhere the presented certificate by thumbprint.
  if (hub.local && cas_ && cas_->Authenticate(device.chain_der, spec.device_id)) {
    spec.auth.type = hub::AuthType::kCertificateAuthority;
    return spec;
  }
  spec.auth.type = hub::AuthType::kSelfSigned;
  spec.auth.primary_thumbprint = device.thumbprint_sha1;
  spec.auth.secondary_thumbprint = device.thumbprint_sha1;
  return spec;
}

void ProvisioningService::Allocate(
    const Attested& device, const std::optional<Registration>& previous,
    const std::optional<json::value>& payload,
    std::function<void(Result<const LinkedHub*>, std::optional<json::object>,
                       std::optional<json::value>)>
        done) {
  const Enrollment& e = device.enrollment;
  if (previous && previous->status == RegistrationStatus::kAssigned && !e.update_hub_assignment) {
    // Reprovisioning "never": the device stays where it is while that hub is linked.
    if (auto* h = FindHub(previous->assigned_hub)) return done(h, std::nullopt, std::nullopt);
  }
  std::vector<const LinkedHub*> candidates;
  std::vector<std::string> named = e.iot_hubs;
  if (named.empty() && !e.iot_hub_host_name.empty()) named.push_back(e.iot_hub_host_name);
  if (!named.empty()) {
    for (auto& n : named) {
      auto* h = FindHub(n);
      if (!h) {
        return done(Error(Errc::kAllocationFailed,
                          fmt::format("the enrollment names hub '{}', which is not linked", n)),
                    std::nullopt, std::nullopt);
      }
      candidates.push_back(h);
    }
  } else {
    for (auto& h : hubs_) {
      if (h.apply_allocation_policy) candidates.push_back(&h);
    }
  }
  if (candidates.empty()) {
    return done(Error(Errc::kAllocationFailed, "no linked hub is available for this enrollment"),
                std::nullopt, std::nullopt);
  }
  AllocationPolicy policy =
      e.allocation == AllocationPolicy::kDefault ? options_.default_allocation : e.allocation;
  switch (policy) {
    case AllocationPolicy::kStatic:
      if (candidates.size() != 1 && named.size() != 1) {
        return done(Error(Errc::kAllocationFailed,
                          "allocationPolicy static needs the enrollment to name one hub"),
                    std::nullopt, std::nullopt);
      }
      return done(candidates.front(), std::nullopt, std::nullopt);
    case AllocationPolicy::kGeoLatency:
      // On one machine the local hub is the nearest one.
      for (auto* h : candidates) {
        if (h->local) return done(h, std::nullopt, std::nullopt);
      }
      [[fallthrough]];
    case AllocationPolicy::kDefault:
    case AllocationPolicy::kHashed: {
      std::vector<const LinkedHub*> weighted;
      for (auto* h : candidates) {
        if (h->weight > 0) weighted.push_back(h);
      }
      if (weighted.empty()) {
        return done(Error(Errc::kAllocationFailed, "every candidate hub has allocation weight 0"),
                    std::nullopt, std::nullopt);
      }
      return done(weighted[ChooseHashed(weighted, device.registration_id)], std::nullopt,
                  std::nullopt);
    }
    case AllocationPolicy::kCustom:
      return CallCustomAllocation(device, previous, payload, std::move(candidates),
                                  std::move(done));
  }
}

void ProvisioningService::CallCustomAllocation(
    const Attested& device, const std::optional<Registration>& previous,
    const std::optional<json::value>& payload, std::vector<const LinkedHub*> candidates,
    std::function<void(Result<const LinkedHub*>, std::optional<json::object>,
                       std::optional<json::value>)>
        done) {
  const Enrollment& e = device.enrollment;
  // DPS's custom allocation request: the enrollment (without secrets), the device's runtime
  // context, and the hubs it may choose from.
  json::object context{{"registrationId", device.registration_id}};
  if (previous && previous->status == RegistrationStatus::kAssigned) {
    context["currentIotHubHostName"] = previous->assigned_hub;
    context["currentDeviceId"] = previous->device_id;
  }
  if (e.attestation.type == AttestationType::kX509) {
    context["x509"] = json::object{
        {"clientCertificate", json::object{{"sha1Thumbprint", device.thumbprint_sha1}}}};
  } else {
    context["symmetricKey"] = json::object();
  }
  if (payload) context["payload"] = *payload;
  json::array linked;
  for (auto* h : candidates)
    linked.emplace_back(h->host_name);
  json::object body{{e.group ? "enrollmentGroup" : "individualEnrollment",
                     EnrollmentToJson(e, /*with_keys=*/false)},
                    {"deviceRuntimeContext", std::move(context)},
                    {"linkedHubs", std::move(linked)}};
  net::HttpRequest req;
  req.method = "POST";
  req.headers.Set("Content-Type", "application/json; charset=utf-8");
  req.headers.Set("Accept", "application/json");
  req.body = json::serialize(body);
  std::string url = e.webhook_url;
  webhooks_->Send(url, std::move(req),
                  [url, candidates = std::move(candidates),
                   done = std::move(done)](Result<net::HttpResponse> r) {
                    auto fail = [&](std::string why) {
                      done(Error(Errc::kAllocationFailed,
                                 fmt::format("custom allocation webhook {}: {}", url, why)),
                           std::nullopt, std::nullopt);
                    };
                    if (!r) return fail(r.error().message());
                    if (r->status < 200 || r->status > 299) {
                      return fail(fmt::format("answered HTTP {}", r->status));
                    }
                    boost::system::error_code ec;
                    auto v = json::parse(r->body, ec);
                    if (ec || !v.is_object()) return fail("answered something that is not JSON");
                    auto& o = v.get_object();
                    auto* host = o.if_contains("iotHubHostName");
                    if (!host || !host->is_string()) return fail("answered no iotHubHostName");
                    const LinkedHub* chosen = nullptr;
                    for (auto* h : candidates) {
                      if (strings::IEquals(h->host_name, host->get_string())) chosen = h;
                    }
                    if (!chosen) {
                      return fail(fmt::format("chose hub '{}', which is not a linked candidate",
                                              std::string_view(host->get_string())));
                    }
                    std::optional<json::object> twin;
                    if (auto* t = o.if_contains("initialTwin"); t && t->is_object()) {
                      twin = t->get_object();
                    }
                    std::optional<json::value> out_payload;
                    if (auto* p = o.if_contains("payload"); p && !p->is_null()) {
                      if (json::serialize(*p).size() > kMaxPayloadBytes) {
                        return fail("answered a payload larger than 4 KB");
                      }
                      out_payload = *p;
                    }
                    done(chosen, std::move(twin), std::move(out_payload));
                  });
}

void ProvisioningService::Assign(std::shared_ptr<Operation> op, Attested device,
                                 std::optional<json::value> payload) {
  auto previous = store_->GetRegistration(device.registration_id);
  Registration base;
  base.registration_id = device.registration_id;
  base.operation_id = op->id;
  base.group_id = device.enrollment.group ? device.enrollment.id : "";
  base.attestation = device.enrollment.attestation.type;
  base.thumbprint = device.thumbprint_sha1;
  if (previous) {
    base.device_id = previous->device_id;
    base.assigned_hub = previous->assigned_hub;
  }
  if (!device.enrollment.enabled) {
    base.status = RegistrationStatus::kDisabled;
    base.error_code = 401003;
    base.error_message = fmt::format("the {} '{}' is disabled",
                                     device.enrollment.group ? "enrollment group" : "enrollment",
                                     device.enrollment.id);
    return Finish(op, std::move(base));
  }
  auto fail = [this, op](Registration r, const Error& e) {
    r.status = RegistrationStatus::kFailed;
    r.error_code = ToWireError(e).numeric;
    r.error_message = e.message();
    Log()->warn("registration '{}' failed: {}", r.registration_id, e.message());
    Finish(op, std::move(r));
  };
  auto shared = std::make_shared<Attested>(std::move(device));
  Allocate(
      *shared, previous, payload,
      [this, op, shared, previous, base, fail](Result<const LinkedHub*> chosen,
                                               std::optional<json::object> custom_twin,
                                               std::optional<json::value> custom_payload) mutable {
        if (!chosen) return fail(std::move(base), chosen.error());
        const LinkedHub& hub = **chosen;
        auto spec = SpecFor(*shared, hub);
        if (!spec) return fail(std::move(base), spec.error());
        const Enrollment& e = shared->enrollment;
        std::optional<json::object> initial = custom_twin ? custom_twin : e.initial_twin;
        bool prev_assigned = previous && previous->status == RegistrationStatus::kAssigned &&
                             !previous->assigned_hub.empty();
        bool same = prev_assigned && strings::IEquals(previous->assigned_hub, hub.host_name) &&
                    previous->device_id == spec->device_id;
        base.assigned_hub = hub.host_name;
        base.device_id = spec->device_id;
        base.payload = std::move(custom_payload);
        auto provision = [this, op, fail, hub_target = hub.target, base](
                             DeviceSpec device_spec, std::string substatus) mutable {
          base.substatus = std::move(substatus);
          hub_target->Provision(std::move(device_spec), [this, op, fail, base](Status st) mutable {
            if (!st) return fail(std::move(base), st.error());
            base.status = RegistrationStatus::kAssigned;
            Finish(op, std::move(base));
          });
        };
        if (!prev_assigned) {
          spec->twin = initial;
          spec->replace_twin = false;  // an existing device's other twin data stays
          return provision(std::move(*spec), "initialAssignment");
        }
        if (same) {
          if (e.update_hub_assignment && !e.migrate_device_data) {
            spec->twin = initial.value_or(json::object());
            return provision(std::move(*spec), "deviceDataReset");
          }
          return provision(std::move(*spec), "initialAssignment");
        }
        // Moving hubs: migrate the twin from the old hub, or start over from the enrollment's.
        const LinkedHub* old = FindHub(previous->assigned_hub);
        if (e.migrate_device_data && old) {
          old->target->ReadTwin(previous->device_id, [moved = std::move(*spec), provision,
                                                      initial](Result<json::object> twin) mutable {
            if (twin) {
              moved.twin = std::move(*twin);
              return provision(std::move(moved), "deviceDataMigrated");
            }
            moved.twin = initial.value_or(json::object());
            provision(std::move(moved), "deviceDataReset");
          });
          return;
        }
        spec->twin = initial.value_or(json::object());
        provision(std::move(*spec), "deviceDataReset");
      });
}

void ProvisioningService::Finish(const std::shared_ptr<Operation>& op, Registration r) {
  store_->PutRegistration(std::move(r), [this, op](Result<Registration> stored) {
    // Copied first: once the answer is out, the service may be destroyed (tests, shutdown),
    // so nothing below the answer touches `this`.
    std::function<void(const Registration&)> finished = options_.on_finished;
    json::object result;
    if (stored) {
      result = {{"operationId", op->id},
                {"status", RegistrationStatusName(stored->status)},
                {"registrationState", RegistrationToJson(*stored)}};
      auto* counter = stored->status == RegistrationStatus::kAssigned   ? assigned_
                      : stored->status == RegistrationStatus::kDisabled ? refused_
                                                                        : failed_;
      if (counter) counter->Inc();
    } else {
      // The outcome could not be recorded: report failure so the device tries again.
      json::object state{{"registrationId", op->registration_id},
                         {"status", "failed"},
                         {"errorCode", ToWireError(stored.error()).numeric},
                         {"errorMessage", stored.error().message()}};
      result = {{"operationId", op->id}, {"status", "failed"}, {"registrationState", state}};
      if (failed_) failed_->Inc();
    }
    std::function<void(Result<json::object>)> answer;
    {
      std::lock_guard lock(mu_);
      op->result = result;
      op->finished_ms = options_.now_ms();
      if (auto it = running_.find(op->registration_id);
          it != running_.end() && it->second == op->id) {
        running_.erase(it);
      }
      answer = std::move(op->answer);
      op->answer = nullptr;
    }
    if (answer) {
      // The timer's handler may still run; it finds no answer left to give.
      boost::asio::post(executor_, [op] {
        if (op->deadline) op->deadline->cancel();
      });
      answer(std::move(result));
    }
    // Last: whoever is told may tear the service down.
    if (finished && stored) finished(*stored);
  });
}

}  // namespace orrery::dps
