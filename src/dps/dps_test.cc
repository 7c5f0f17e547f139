#include <future>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "dps/enrollment.h"
#include "dps/enrollment_store.h"
#include "dps/errc.h"
#include "dps/linked_hubs.h"
#include "dps/mqtt_front.h"
#include "dps/provisioning.h"
#include "hub/device_auth.h"
#include "hub/errc.h"
#include "hub/sas.h"
#include "hub/test_util.h"
#include "pki/pki.h"

namespace orrery::dps {
namespace {
namespace json = boost::json;
using hub::testing::FakeClock;
using hub::testing::StoreDir;
using hub::testing::Wait;

constexpr std::string_view kScope = "0ne00ABCDEF";

Enrollment Parse(std::string_view body, bool group, std::string_view id) {
  auto e = EnrollmentFromJson(json::parse(body), group, id);
  EXPECT_TRUE(e) << e.error().message();
  return e ? *e : Enrollment{};
}

TEST(DpsKeys, GroupDerivedKeyIsHmacOfTheRegistrationId) {
  // Independently computed: base64(HMAC-SHA256(b64decode(key), "device-001")).
  auto k = DeriveDeviceKey("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "device-001");
  ASSERT_TRUE(k);
  EXPECT_EQ(*k, "2TjsykFYXonJZPlLAkEcfDES/DhPnVKeGJeRz3rofXU=");
  EXPECT_FALSE(DeriveDeviceKey("not base64!", "x"));
}

TEST(DpsEnrollment, ParsesNormalisesAndRefuses) {
  auto e = Parse(R"({"registrationId":"reg-1","attestation":{"type":"symmetricKey"},
      "initialTwin":{"tags":{"a":1},"properties":{"desired":{"b":2}}},
      "capabilities":{"iotEdge":true},"provisioningStatus":"disabled",
      "reprovisionPolicy":{"updateHubAssignment":false,"migrateDeviceData":false}})",
                 false, "reg-1");
  EXPECT_EQ(e.attestation.type, AttestationType::kSymmetricKey);
  EXPECT_GE(crypto::Base64Decode(e.attestation.primary_key)->size(), 16u);
  EXPECT_NE(e.attestation.primary_key, e.attestation.secondary_key);
  EXPECT_TRUE(e.attestation.keys_generated);
  EXPECT_FALSE(e.enabled);
  EXPECT_TRUE(e.iot_edge);
  EXPECT_FALSE(e.update_hub_assignment);
  auto j = EnrollmentToJson(e, false);
  EXPECT_TRUE(j.at("attestation").at("symmetricKey").at("primaryKey").is_null());
  EXPECT_EQ(j.at("initialTwin").at("tags").at("a"), 1);

  auto bad = [](std::string_view body, bool group, std::string_view needle) {
    auto r = EnrollmentFromJson(json::parse(body), group, "id-1");
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error().code(), make_error_code(Errc::kInvalidArgument));
    EXPECT_NE(r.error().message().find(needle), std::string::npos) << r.error().message();
  };
  bad(R"({"attestation":{"type":"tpm","tpm":{"endorsementKey":"x"}}})", false, "TPM");
  bad(R"({})", false, "attestation is required");
  bad(R"({"attestation":{"type":"x509","x509":{}}})", false, "clientCertificates");
  bad(R"({"attestation":{"type":"x509","x509":{"signingCertificates":{}}}})", true,
      "signingCertificates.primary");
  bad(R"({"attestation":{"type":"symmetricKey","symmetricKey":{"primaryKey":"YWJj"}}})", false,
      "16 to 64 bytes");
  bad(R"({"attestation":{"type":"symmetricKey"},"initialTwin":{"properties":{"reported":{}}}})",
      false, "only desired");
  bad(R"({"attestation":{"type":"symmetricKey"},"allocationPolicy":"custom"})", false,
      "webhookUrl");
  bad(R"({"attestation":{"type":"symmetricKey"},"allocationPolicy":"custom",
      "customAllocationDefinition":{"webhookUrl":"http://x/"}})",
      false, "https://");
  bad(R"({"registrationId":"other","attestation":{"type":"symmetricKey"}})", false, "path");
  EXPECT_FALSE(EnrollmentFromJson(json::parse(R"({"attestation":{"type":"symmetricKey"}})"), false,
                                  "has space"));

  // A group's signing certificate must be a CA; a leaf is refused.
  auto root = pki::CreateRootCa("DPS Test Root");
  auto leaf = pki::IssueCertificate(*root, {.common_name = "leaf"});
  json::object att{
      {"type", "x509"},
      {"x509",
       json::object{{"signingCertificates",
                     json::object{{"primary", json::object{{"certificate", leaf->cert_pem}}}}}}}};
  EXPECT_FALSE(EnrollmentFromJson(json::object{{"attestation", att}}, true, "g"));
  att["x509"].as_object()["signingCertificates"].as_object()["primary"].as_object()["certificate"] =
      root->cert_pem;
  auto g = EnrollmentFromJson(json::object{{"attestation", att}}, true, "g");
  ASSERT_TRUE(g) << g.error().message();
  auto stored = DecodeEnrollment(EncodeEnrollment(*g), true);
  ASSERT_TRUE(stored) << stored.error().message();
  EXPECT_EQ(stored->attestation.signing_certificates.at(0).sha1,
            *pki::ThumbprintSha1(root->cert_pem));
  // Sent back as GET shows it (info only), the stored certificate is kept.
  auto echoed = EnrollmentFromJson(EnrollmentToJson(*g), true, "g");
  ASSERT_TRUE(echoed) << echoed.error().message();
  EXPECT_TRUE(echoed->attestation.certificates_elided);
  ResolveOmitted(echoed->attestation, &g->attestation);
  ASSERT_EQ(echoed->attestation.signing_certificates.size(), 1u);
  EXPECT_EQ(echoed->attestation.signing_certificates[0].pem, root->cert_pem);
  // Slot by slot: a new primary with the secondary sent back as info keeps the secondary.
  auto root2 = pki::CreateRootCa("DPS Test Root 2");
  auto two = EnrollmentFromJson(
      json::object{
          {"attestation",
           json::object{
               {"type", "x509"},
               {"x509",
                json::object{
                    {"signingCertificates",
                     json::object{
                         {"primary", json::object{{"certificate", root->cert_pem}}},
                         {"secondary", json::object{{"certificate", root2->cert_pem}}}}}}}}}},
      true, "g");
  ASSERT_TRUE(two);
  auto sent = EnrollmentToJson(*two);
  auto& slots =
      sent["attestation"].as_object()["x509"].as_object()["signingCertificates"].as_object();
  auto root3 = pki::CreateRootCa("DPS Test Root 3");
  slots["primary"] = json::object{{"certificate", root3->cert_pem}};
  auto updated = EnrollmentFromJson(sent, true, "g");
  ASSERT_TRUE(updated) << updated.error().message();
  ResolveOmitted(updated->attestation, &two->attestation);
  ASSERT_EQ(updated->attestation.signing_certificates.size(), 2u);
  EXPECT_EQ(updated->attestation.signing_certificates[0].pem, root3->cert_pem);
  EXPECT_EQ(updated->attestation.signing_certificates[1].pem, root2->cert_pem);
}

class DpsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { kv_ = dir_.Open(); }
  std::unique_ptr<EnrollmentStore> Open(StoreLimits limits = {}) {
    auto s = EnrollmentStore::Open(kv_.get(), limits, clock_.fn());
    EXPECT_TRUE(s) << s.error().message();
    return std::move(*s);
  }
  Result<Enrollment> Put(EnrollmentStore& s, Enrollment e, std::string if_match = {},
                         bool create_only = false) {
    return Wait<Result<Enrollment>>(
        [&](auto cb) { s.Put(std::move(e), if_match, create_only, cb); });
  }
  StoreDir dir_;
  std::unique_ptr<store::KvStore> kv_;
  FakeClock clock_;
};

TEST_F(DpsStoreTest, EtagsConflictsQuotaAndRestart) {
  auto s = Open({.max_enrollments = 2, .max_groups = 1});
  auto e = Parse(R"({"attestation":{"type":"symmetricKey"}})", false, "a");
  auto first = Put(*s, e);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->etag, EtagFor(1));
  auto conflict = Put(*s, e, "", true);
  ASSERT_FALSE(conflict);
  EXPECT_EQ(conflict.error().code(), make_error_code(Errc::kConflict));
  auto stale = Put(*s, e, "\"bm9wZQ==\"");
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code(), make_error_code(Errc::kPreconditionFailed));
  clock_.Advance(5000);
  auto second = Put(*s, e, first->etag);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->etag, EtagFor(2));
  EXPECT_EQ(second->created_ms, first->created_ms);
  EXPECT_GT(second->updated_ms, first->updated_ms);
  ASSERT_TRUE(Put(*s, Parse(R"({"attestation":{"type":"symmetricKey"}})", false, "b")));
  auto over = Put(*s, Parse(R"({"attestation":{"type":"symmetricKey"}})", false, "c"));
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code(), make_error_code(Errc::kQuotaExceeded));
  Registration r;
  r.registration_id = "a";
  r.status = RegistrationStatus::kAssigned;
  r.assigned_hub = "localhost";
  ASSERT_TRUE(Wait<Result<Registration>>([&](auto cb) { s->PutRegistration(r, cb); }));

  s.reset();
  auto again = Open();
  auto got = again->Get(false, "a");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->etag, second->etag);
  EXPECT_EQ(got->attestation.primary_key, e.attestation.primary_key);
  ASSERT_TRUE(again->GetRegistration("a"));
  EXPECT_EQ(again->GetRegistration("a")->assigned_hub, "localhost");
  EXPECT_EQ(again->List(false, "", 10).size(), 2u);
  EXPECT_EQ(again->List(false, "a", 10).size(), 1u);
  // Deleting an individual enrollment removes its registration state.
  ASSERT_TRUE(Wait<Status>([&](auto cb) { again->Delete(false, "a", "*", cb); }));
  EXPECT_FALSE(again->GetRegistration("a"));
  EXPECT_FALSE(again->Get(false, "a"));
}

TEST(DpsAllocation, HashedIsStableAndFollowsWeights) {
  LinkedHub a{.host_name = "hub-a", .weight = 1}, b{.host_name = "hub-b", .weight = 3};
  std::vector<const LinkedHub*> hubs{&a, &b};
  int on_b = 0;
  for (int i = 0; i < 4000; ++i) {
    std::string id = "device-" + std::to_string(i);
    size_t pick = ChooseHashed(hubs, id);
    EXPECT_EQ(pick, ChooseHashed(hubs, id));
    on_b += pick == 1;
  }
  EXPECT_NEAR(on_b / 4000.0, 0.75, 0.03);
  // Adding a hub moves only the devices it wins (rendezvous hashing).
  LinkedHub c{.host_name = "hub-c", .weight = 1};
  std::vector<const LinkedHub*> more{&a, &b, &c};
  for (int i = 0; i < 500; ++i) {
    std::string id = "device-" + std::to_string(i);
    size_t now = ChooseHashed(more, id);
    if (now != 2) {
      EXPECT_EQ(now, ChooseHashed(hubs, id));
    }
  }
  auto parsed = ParseLinkedHubs(
      R"([{"connectionString":"HostName=h2:9443;SharedAccessKeyName=p;SharedAccessKey=a2V5","allocationWeight":5}])");
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->at(0).host_name, "h2:9443");
  EXPECT_EQ(parsed->at(0).weight, 5);
  EXPECT_FALSE(ParseLinkedHubs(R"([{"allocationWeight":5}])"));
  EXPECT_FALSE(ParseLinkedHubs("{}"));
}

// A hub that records what DPS asks of it.
class RecordingHub final : public HubTarget {
 public:
  void Provision(DeviceSpec spec, std::function<void(Status)> done) override {
    std::lock_guard lock(mu);
    if (fail) return done(Error(Errc::kHubFailed, "the hub is down"));
    specs.push_back(spec);
    auto& twin = twins[spec.device_id];
    if (spec.twin) twin = *spec.twin;
    done(Ok());
  }
  void ReadTwin(std::string id, std::function<void(Result<json::object>)> done) override {
    std::lock_guard lock(mu);
    auto it = twins.find(id);
    if (it == twins.end()) return done(Error(hub::Errc::kDeviceNotFound, "no device"));
    done(it->second);
  }
  std::mutex mu;
  bool fail = false;
  std::vector<DeviceSpec> specs;
  std::map<std::string, json::object> twins;
};

class DpsServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kv_ = dir_.Open();
    ProvisioningOptions o{.id_scope = std::string(kScope), .service_host = "localhost"};
    o.now_ms = clock_.fn();
    o.answer_within = std::chrono::milliseconds(answer_within_);
    o.on_finished = [this](const Registration& r) {
      std::lock_guard lock(mu_);
      if (waiting_) {
        waiting_->set_value(r);
        waiting_.reset();
      }
    };
    auto s = ProvisioningService::Open(o, kv_.get(), nullptr, io_.get_executor());
    ASSERT_TRUE(s) << s.error().message();
    svc_ = std::move(*s);
    svc_->AddLinkedHub({.host_name = "hub-a", .local = true, .target = hub_a_});
    svc_->AddLinkedHub({.host_name = "hub-b", .target = hub_b_});
  }
  // Every store callback has run before the service goes.
  void TearDown() override { kv_->Drain(); }

  Enrollment Put(std::string_view body, bool group, std::string_view id) {
    auto r = Wait<Result<Enrollment>>(
        [&](auto cb) { svc_->enrollments().Put(Parse(body, group, id), "", false, cb); });
    EXPECT_TRUE(r) << r.error().message();
    return *r;
  }

  std::string Token(std::string_view rid, std::string_view key, int64_t ttl_s = 3600) {
    auto t = hub::MakeSasToken(std::string(kScope) + "/registrations/" + std::string(rid), key,
                               clock_.fn()() / 1000 + ttl_s, "registration", true);
    return *t;
  }

  Result<Attested> Auth(std::string_view rid, std::string token) {
    return svc_->Authenticate({.registration_id = rid, .sas_token = token});
  }

  // Registers and waits for the durable outcome.
  Registration Register(Attested who, std::optional<json::value> payload = {}) {
    std::promise<Registration> p;
    auto f = p.get_future();
    {
      std::lock_guard lock(mu_);
      waiting_ = std::move(p);
    }
    auto answer = Wait<Result<json::object>>(
        [&](auto cb) { svc_->Register(std::move(who), std::move(payload), cb); });
    EXPECT_TRUE(answer) << answer.error().message();
    EXPECT_EQ(answer->at("status"), "assigning");
    last_operation_ = std::string(answer->at("operationId").as_string());
    return f.get();
  }

  StoreDir dir_;
  std::unique_ptr<store::KvStore> kv_;
  FakeClock clock_;
  boost::asio::io_context io_;
  std::shared_ptr<RecordingHub> hub_a_ = std::make_shared<RecordingHub>();
  std::shared_ptr<RecordingHub> hub_b_ = std::make_shared<RecordingHub>();
  std::unique_ptr<ProvisioningService> svc_;
  std::mutex mu_;
  std::optional<std::promise<Registration>> waiting_;
  std::string last_operation_;
  int answer_within_ = 0;  // registrations answer "assigning" and are polled
};

class DpsAnswerTest : public DpsServiceTest {
 protected:
  void SetUp() override {
    answer_within_ = 5000;
    DpsServiceTest::SetUp();
    runner_ = std::thread([this] {
      auto work = boost::asio::make_work_guard(io_);
      io_.run();
    });
  }
  void TearDown() override {
    io_.stop();
    runner_.join();
    DpsServiceTest::TearDown();
  }
  std::thread runner_;
};

TEST_F(DpsAnswerTest, RegisterAnswersWithTheOutcomeWhenItIsQuick) {
  auto e = Put(R"({"attestation":{"type":"symmetricKey"}})", false, "quick-1");
  auto answer = Wait<Result<json::object>>([&](auto cb) {
    svc_->Register(*Auth("quick-1", Token("quick-1", e.attestation.primary_key)), {}, cb);
  });
  ASSERT_TRUE(answer) << answer.error().message();
  EXPECT_EQ(answer->at("status"), "assigned");
  EXPECT_EQ(answer->at("registrationState").at("deviceId"), "quick-1");
}

TEST_F(DpsServiceTest, SymmetricKeyIndividualAndGroupAttestation) {
  auto ind = Put(R"({"attestation":{"type":"symmetricKey"},"deviceId":"dev-x"})", false, "ind-1");
  auto grp = Put(R"({"attestation":{"type":"symmetricKey"}})", true, "grp-1");
  auto ok = Auth("ind-1", Token("ind-1", ind.attestation.secondary_key));
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->enrollment.id, "ind-1");
  EXPECT_FALSE(Auth("ind-1", Token("ind-1", grp.attestation.primary_key)));
  auto derived = *DeriveDeviceKey(grp.attestation.primary_key, "member-7");
  auto member = Auth("member-7", Token("member-7", derived));
  ASSERT_TRUE(member) << member.error().message();
  EXPECT_TRUE(member->enrollment.group);
  EXPECT_EQ(member->primary_key, derived);
  // Another member's key, an expired token, a token for another resource: refused.
  EXPECT_FALSE(Auth("member-8", Token("member-8", derived)));
  auto expired = Auth("member-7", Token("member-7", derived, -1));
  ASSERT_FALSE(expired);
  EXPECT_NE(expired.error().message().find("expired"), std::string::npos);
  EXPECT_FALSE(Auth("member-7", Token("member-8", derived)));
  EXPECT_FALSE(Auth("member-7", "SharedAccessSignature garbage"));
  auto none = svc_->Authenticate({.registration_id = "member-7"});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), make_error_code(Errc::kUnauthorized));
}

TEST_F(DpsServiceTest, RegistrationCreatesTheDeviceWithItsInitialTwinAndAnswersPolls) {
  auto ind = Put(R"({"attestation":{"type":"symmetricKey"},"deviceId":"dev-x","iotHubs":["hub-b"],
      "allocationPolicy":"static","capabilities":{"iotEdge":true},
      "initialTwin":{"tags":{"site":"B"},"properties":{"desired":{"interval":5}}}})",
                 false, "ind-1");
  auto who = Auth("ind-1", Token("ind-1", ind.attestation.primary_key));
  ASSERT_TRUE(who);
  auto r = Register(*who, json::parse(R"({"hello":"world"})"));
  EXPECT_EQ(r.status, RegistrationStatus::kAssigned);
  EXPECT_EQ(r.assigned_hub, "hub-b");
  EXPECT_EQ(r.device_id, "dev-x");
  EXPECT_EQ(r.substatus, "initialAssignment");
  ASSERT_EQ(hub_b_->specs.size(), 1u);
  auto& spec = hub_b_->specs[0];
  EXPECT_EQ(spec.auth.type, hub::AuthType::kSas);
  EXPECT_EQ(spec.auth.primary_key, ind.attestation.primary_key);
  EXPECT_TRUE(spec.iot_edge);
  EXPECT_EQ(spec.twin->at("tags").at("site"), "B");
  auto st = svc_->OperationStatus("ind-1", last_operation_);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->at("status"), "assigned");
  EXPECT_EQ(st->at("registrationState").at("assignedHub"), "hub-b");
  EXPECT_FALSE(svc_->OperationStatus("other", last_operation_));
  EXPECT_FALSE(svc_->OperationStatus("ind-1", "4.nope"));
}

TEST_F(DpsServiceTest, ReprovisioningPolicies) {
  auto g = Put(R"({"attestation":{"type":"symmetricKey"},"iotHubs":["hub-a"],
      "initialTwin":{"tags":{"v":1}}})",
               true, "grp");
  auto key = *DeriveDeviceKey(g.attestation.primary_key, "m1");
  auto first = Register(*Auth("m1", Token("m1", key)));
  EXPECT_EQ(first.assigned_hub, "hub-a");
  // The device's data changes on hub-a; then the group moves to hub-b (migrate, the default).
  hub_a_->twins["m1"] = json::object{{"tags", json::object{{"v", 2}}}};
  g.iot_hubs = {"hub-b"};
  ASSERT_TRUE(
      Wait<Result<Enrollment>>([&](auto cb) { svc_->enrollments().Put(g, "", false, cb); }));
  auto moved = Register(*Auth("m1", Token("m1", key)));
  EXPECT_EQ(moved.assigned_hub, "hub-b");
  EXPECT_EQ(moved.substatus, "deviceDataMigrated");
  EXPECT_EQ(hub_b_->twins["m1"].at("tags").at("v"), 2);
  // Back to hub-a without migration: the initial twin again.
  g.iot_hubs = {"hub-a"};
  g.migrate_device_data = false;
  ASSERT_TRUE(
      Wait<Result<Enrollment>>([&](auto cb) { svc_->enrollments().Put(g, "", false, cb); }));
  auto reset = Register(*Auth("m1", Token("m1", key)));
  EXPECT_EQ(reset.assigned_hub, "hub-a");
  EXPECT_EQ(reset.substatus, "deviceDataReset");
  EXPECT_EQ(hub_a_->twins["m1"].at("tags").at("v"), 1);
  // Never reassign: the device stays on hub-a although the group now says hub-b.
  g.iot_hubs = {"hub-b"};
  g.update_hub_assignment = false;
  ASSERT_TRUE(
      Wait<Result<Enrollment>>([&](auto cb) { svc_->enrollments().Put(g, "", false, cb); }));
  auto stay = Register(*Auth("m1", Token("m1", key)));
  EXPECT_EQ(stay.assigned_hub, "hub-a");
}

TEST_F(DpsServiceTest, DisabledEnrollmentsAndFailingHubs) {
  auto off = Put(R"({"attestation":{"type":"symmetricKey"},"provisioningStatus":"disabled"})",
                 false, "off-1");
  auto r = Register(*Auth("off-1", Token("off-1", off.attestation.primary_key)));
  EXPECT_EQ(r.status, RegistrationStatus::kDisabled);
  EXPECT_TRUE(hub_a_->specs.empty() && hub_b_->specs.empty());
  auto st = svc_->OperationStatus("off-1", last_operation_);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->at("status"), "disabled");

  auto down = Put(R"({"attestation":{"type":"symmetricKey"},"iotHubs":["hub-b"]})", false, "d-1");
  hub_b_->fail = true;
  auto failed = Register(*Auth("d-1", Token("d-1", down.attestation.primary_key)));
  EXPECT_EQ(failed.status, RegistrationStatus::kFailed);
  EXPECT_NE(failed.error_message.find("the hub is down"), std::string::npos);
  auto unlinked =
      Put(R"({"attestation":{"type":"symmetricKey"},"iotHubs":["hub-z"]})", false, "u-1");
  auto nohub = Register(*Auth("u-1", Token("u-1", unlinked.attestation.primary_key)));
  EXPECT_EQ(nohub.status, RegistrationStatus::kFailed);
  EXPECT_NE(nohub.error_message.find("not linked"), std::string::npos);
}

TEST_F(DpsServiceTest, X509IndividualByThumbprintAndGroupByChain) {
  auto self = pki::CreateSelfSigned({.common_name = "x-ind", .usage = pki::Usage::kClient});
  json::object ind{
      {"attestation",
       json::object{
           {"type", "x509"},
           {"x509", json::object{{"clientCertificates",
                                  json::object{{"primary", json::object{{"certificate",
                                                                         self->cert_pem}}}}}}}}}};
  ASSERT_TRUE(Wait<Result<Enrollment>>([&](auto cb) {
    svc_->enrollments().Put(*EnrollmentFromJson(ind, false, "x-ind"), "", false, cb);
  }));
  auto root = pki::CreateRootCa("Group Root");
  auto inter = pki::IssueCertificate(*root, {.common_name = "Group Intermediate", .is_ca = true});
  json::object grp{
      {"attestation",
       json::object{
           {"type", "x509"},
           {"x509", json::object{{"signingCertificates",
                                  json::object{{"primary", json::object{{"certificate",
                                                                         inter->cert_pem}}}}}}}}}};
  ASSERT_TRUE(Wait<Result<Enrollment>>([&](auto cb) {
    svc_->enrollments().Put(*EnrollmentFromJson(grp, true, "x-grp"), "", false, cb);
  }));
  auto der = [](const std::string& pem) {
    std::string b64;
    auto begin = pem.find('\n') + 1;
    auto end = pem.find("-----END");
    for (char c : pem.substr(begin, end - begin))
      if (c != '\n') b64 += c;
    return *crypto::Base64Decode(b64);
  };
  std::vector<std::string> chain{der(self->cert_pem)};
  auto a = svc_->Authenticate({.registration_id = "x-ind", .client_cert_chain_der = &chain});
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->thumbprint_sha1, *pki::ThumbprintSha1(self->cert_pem));
  // The certificate's CN must be the registration id.
  EXPECT_FALSE(svc_->Authenticate({.registration_id = "x-other", .client_cert_chain_der = &chain}));
  auto member =
      pki::IssueCertificate(*inter, {.common_name = "x-m1", .usage = pki::Usage::kClient});
  std::vector<std::string> mchain{der(member->cert_pem)};
  auto m = svc_->Authenticate({.registration_id = "x-m1", .client_cert_chain_der = &mchain});
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->enrollment.id, "x-grp");
  auto r = Register(*m);
  ASSERT_EQ(r.status, RegistrationStatus::kAssigned) << r.error_message;
  auto& specs = r.assigned_hub == "hub-a" ? hub_a_->specs : hub_b_->specs;
  ASSERT_EQ(specs.size(), 1u);
  EXPECT_EQ(specs[0].auth.type, hub::AuthType::kSelfSigned);
  EXPECT_EQ(specs[0].auth.primary_thumbprint, *pki::ThumbprintSha1(member->cert_pem));
  // A certificate from elsewhere chains to no group.
  auto stranger = pki::CreateSelfSigned({.common_name = "x-m2", .usage = pki::Usage::kClient});
  std::vector<std::string> schain{der(stranger->cert_pem)};
  EXPECT_FALSE(svc_->Authenticate({.registration_id = "x-m2", .client_cert_chain_der = &schain}));
}

TEST(DpsMqtt, UserNameShape) {
  auto u = ParseDpsUserName(
      "0ne00ABCDEF/registrations/reg1/api-version=2019-03-31&ClientVersion=azure-iot-"
      "provisioning-device%2F1.9.1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->id_scope, "0ne00ABCDEF");
  EXPECT_EQ(u->registration_id, "reg1");
  EXPECT_FALSE(ParseDpsUserName("myhub.azure-devices.net/dev1/?api-version=2021-04-12"));
  EXPECT_FALSE(ParseDpsUserName("scope/registrations//api-version=1"));
  EXPECT_FALSE(ParseDpsUserName("alice"));
  auto body = json::parse(ErrorBody(Error(Errc::kUnauthorized, "no")));
  EXPECT_EQ(body.at("errorCode"), 401002);
}

}  // namespace
}  // namespace orrery::dps
