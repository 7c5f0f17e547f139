#include "hub/registry.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "hub/errc.h"
#include "hub/test_util.h"

namespace orrery::hub {
namespace {
namespace json = boost::json;
using testing::FakeClock;
using testing::StoreDir;
using testing::Wait;

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = dir_.Open();
    Reopen();
  }
  void Reopen() {
    registry_.reset();
    if (store_) store_->Drain();
    auto r = Registry::Open(store_.get(),
                            {.max_devices = 3, .max_modules_per_device = 2, .now_ms = clock_.fn()});
    ASSERT_TRUE(r) << r.error().message();
    registry_ = std::move(*r);
  }
  Result<IdentityView> Create(std::string device, std::string module = "") {
    auto id = IdentityFromJson(json::object{}, device, module);
    EXPECT_TRUE(id);
    return Wait<Result<IdentityView>>([&](auto cb) { registry_->Create(*id, cb); });
  }
  Result<TwinChange> Patch(std::string key, std::string_view patch, std::string if_match = "") {
    return Wait<Result<TwinChange>>(
        [&](auto cb) { registry_->UpdateTwin(key, json::parse(patch).as_object(), if_match, cb); });
  }

  StoreDir dir_;
  FakeClock clock_;
  std::unique_ptr<store::KvStore> store_;
  std::unique_ptr<Registry> registry_;
};

TEST_F(RegistryTest, CreateGetUpdateDeleteWithEtags) {
  auto d = Create("dev1");
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->identity.etag, "MQ==");
  EXPECT_FALSE(d->identity.generation_id.empty());
  auto again = Create("dev1");
  ASSERT_FALSE(again);
  EXPECT_TRUE(again.error().Is(Errc::kDeviceAlreadyExists));

  Identity changed = d->identity;
  changed.enabled = false;
  auto stale =
      Wait<Result<IdentityView>>([&](auto cb) { registry_->Update(changed, "\"bm9wZQ==\"", cb); });
  ASSERT_FALSE(stale);
  EXPECT_TRUE(stale.error().Is(Errc::kPreconditionFailed));
  auto updated =
      Wait<Result<IdentityView>>([&](auto cb) { registry_->Update(changed, "\"MQ==\"", cb); });
  ASSERT_TRUE(updated) << updated.error().message();
  EXPECT_FALSE(updated->identity.enabled);
  EXPECT_EQ(updated->identity.etag, "Mg==");
  EXPECT_EQ(updated->identity.generation_id, d->identity.generation_id);

  ASSERT_TRUE(Create("dev1", "m1"));
  ASSERT_TRUE(Create("dev1", "m2"));
  auto third = Create("dev1", "m3");
  ASSERT_FALSE(third);
  EXPECT_TRUE(third.error().Is(Errc::kQuotaExceeded));
  EXPECT_TRUE(Create("ghost", "m1").error().Is(Errc::kDeviceNotFound));
  EXPECT_EQ(registry_->ListModules("dev1").size(), 2u);
  EXPECT_EQ(registry_->ListDevices(100).size(), 1u);  // modules are not devices

  // Deleting the device deletes its modules.
  auto del = Wait<Status>([&](auto cb) { registry_->Delete("dev1", "", "*", cb); });
  ASSERT_TRUE(del);
  EXPECT_FALSE(registry_->Get("dev1"));
  EXPECT_FALSE(registry_->Get("dev1", "m1"));
  auto gone = Wait<Status>([&](auto cb) { registry_->Delete("dev1", "", "*", cb); });
  EXPECT_TRUE(gone.error().Is(Errc::kDeviceNotFound));
}

TEST_F(RegistryTest, DeviceLimitAndStatistics) {
  ASSERT_TRUE(Create("a"));
  ASSERT_TRUE(Create("b"));
  ASSERT_TRUE(Create("c"));
  auto r = Create("d");
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kQuotaExceeded));
  registry_->SetConnected("b", true);
  auto s = registry_->Statistics();
  EXPECT_EQ(s.total_devices, 3u);
  EXPECT_EQ(s.enabled_devices, 3u);
  EXPECT_EQ(s.connected_devices, 1u);
  EXPECT_EQ(registry_->Get("b")->runtime.connected, true);
}

TEST_F(RegistryTest, TwinsSurviveRestartAndCheckEtags) {
  ASSERT_TRUE(Create("dev1"));
  auto t0 = registry_->GetTwin("dev1");
  ASSERT_TRUE(t0);
  std::string etag0((*t0)["etag"].as_string());
  auto c = Patch("dev1", R"({"tags":{"site":"b12"},"properties":{"desired":{"rate":5}}})",
                 "\"" + etag0 + "\"");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(json::serialize(c->desired_push), R"({"rate":5,"$version":2})");
  auto twin = json::parse(c->twin_json).as_object();
  EXPECT_EQ(twin["tags"].as_object()["site"], "b12");
  EXPECT_EQ(twin["etag"].as_string(), c->etag);
  auto stale = Patch("dev1", R"({"tags":{"site":"x"}})", "\"" + etag0 + "\"");
  ASSERT_FALSE(stale);
  EXPECT_TRUE(stale.error().Is(Errc::kPreconditionFailed));
  auto tags_only = Patch("dev1", R"({"tags":{"floor":2}})", "*");
  ASSERT_TRUE(tags_only);
  EXPECT_TRUE(tags_only->desired_push.empty());  // nothing to push to the device
  EXPECT_TRUE(
      Patch("dev1", R"({"properties":{"reported":{"x":1}}})").error().Is(Errc::kInvalidArgument));
  auto rep = Wait<Result<TwinChange>>([&](auto cb) {
    registry_->UpdateReported("dev1", json::parse(R"({"fw":"2.0"})").as_object(), cb);
  });
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->reported_version, 2);
  registry_->SetModelId("dev1", "dtmi:example:Device;1");

  Reopen();
  auto t = registry_->GetTwin("dev1");
  ASSERT_TRUE(t);
  auto& props = (*t)["properties"].as_object();
  EXPECT_EQ(props["desired"].as_object()["rate"], 5);
  EXPECT_EQ(props["reported"].as_object()["fw"], "2.0");
  EXPECT_EQ((*t)["tags"].as_object()["floor"], 2);
  EXPECT_EQ((*t)["modelId"], "dtmi:example:Device;1");
  EXPECT_EQ((*t)["version"], 5);  // created 1, +desired/tags, +tags, +reported, +model id? no
  auto dev = registry_->GetDeviceTwin("dev1");
  ASSERT_TRUE(dev);
  EXPECT_EQ(json::serialize(*dev), R"({"desired":{"rate":5,"$version":2},)"
                                   R"("reported":{"fw":"2.0","$version":2}})");
  EXPECT_TRUE(Patch("nope", "{}").error().Is(Errc::kDeviceNotFound));
}

TEST_F(RegistryTest, VisitTwinsInKeyOrderAfterAKey) {
  for (auto id : {"c", "a", "b"})
    ASSERT_TRUE(Create(id));
  ASSERT_TRUE(Create("a", "m"));
  std::vector<std::string> devices, modules;
  registry_->VisitTwins(false, "", [&](const std::string& k, const json::object&) {
    devices.push_back(k);
    return true;
  });
  EXPECT_EQ(devices, (std::vector<std::string>{"a", "b", "c"}));
  devices.clear();
  registry_->VisitTwins(false, "a", [&](const std::string& k, const json::object& twin) {
    devices.push_back(std::string(twin.at("deviceId").as_string()));
    return k != "b";
  });
  EXPECT_EQ(devices, (std::vector<std::string>{"b"}));
  registry_->VisitTwins(true, "", [&](const std::string& k, const json::object& twin) {
    modules.push_back(k + "=" + std::string(twin.at("moduleId").as_string()));
    return true;
  });
  EXPECT_EQ(modules, (std::vector<std::string>{"a/m=m"}));
}

}  // namespace
}  // namespace orrery::hub
