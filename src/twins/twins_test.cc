#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "twins/errc.h"
#include "twins/model_store.h"

namespace orrery::twins {
namespace {

namespace json = boost::json;

class ModelStoreTest : public ::testing::Test {
 protected:
  ModelStoreTest() {
    dir_ = std::filesystem::temp_directory_path() /
           ("orrery-twins-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    Reopen();
  }
  ~ModelStoreTest() override {
    models_.reset();
    kv_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen(ModelLimits limits = {}) {
    models_.reset();
    kv_.reset();
    auto kv = store::OpenRocksDb({.path = dir_});
    ASSERT_TRUE(kv) << kv.error().message();
    kv_ = std::move(*kv);
    auto m = ModelStore::Open(kv_.get(), limits, [this] { return now_; });
    ASSERT_TRUE(m) << m.error().message();
    models_ = std::move(*m);
  }
  static json::value M(std::string_view text) { return json::parse(text); }

  std::filesystem::path dir_;
  int64_t now_ = 1'800'000'000'000;
  std::unique_ptr<store::KvStore> kv_;
  std::unique_ptr<ModelStore> models_;
};

const char* kBase =
    R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Space;1","@type":"Interface",
  "displayName":"Space","description":{"en":"A place","de":"Ein Ort"},
  "contents":[{"@type":"Property","name":"name","schema":"string","writable":true}]})";
const char* kSensor =
    R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Sensor;1","@type":"Interface",
  "contents":[{"@type":"Telemetry","name":"temperature","schema":"double"}]})";
const char* kRoom = R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Room;1","@type":"Interface",
  "extends":"dtmi:ex:Space;1",
  "contents":[{"@type":"Component","name":"sensor","schema":"dtmi:ex:Sensor;1"},
              {"@type":"Property","name":"level","schema":"dtmi:ex:Room:Level;1"},
              {"@type":"Relationship","name":"isPartOf","target":"dtmi:ex:Building;1"}],
  "schemas":[{"@id":"dtmi:ex:Room:Level;1","@type":"Enum","valueSchema":"integer",
              "enumValues":[{"name":"low","enumValue":1},{"name":"high","enumValue":2}]}]})";

std::vector<std::string> Ids(const std::vector<ModelRecord>& v) {
  std::vector<std::string> out;
  for (auto& r : v)
    out.push_back(r.id);
  return out;
}

TEST_F(ModelStoreTest, AddsABatchWithDependenciesAndKeepsItAcrossRestarts) {
  std::vector<std::string> details;
  auto added = models_->Add({M(kRoom), M(kSensor), M(kBase)}, &details);
  ASSERT_TRUE(added) << added.error().message() << "\n" << ::testing::PrintToString(details);
  ASSERT_EQ(added->size(), 3u);
  EXPECT_EQ((*added)[0].id, "dtmi:ex:Room;1");
  // What Room extends and its component's Interface; not its own Enum, nor the
  // relationship's target.
  EXPECT_EQ((*added)[0].dependencies,
            (std::vector<std::string>{"dtmi:ex:Sensor;1", "dtmi:ex:Space;1"}));
  EXPECT_TRUE((*added)[1].dependencies.empty());

  Reopen();
  auto room = models_->Get("dtmi:ex:Room;1");
  ASSERT_TRUE(room);
  EXPECT_EQ(room->upload_time_ms, now_);
  EXPECT_EQ(room->dependencies.size(), 2u);
  auto space = models_->Get("dtmi:ex:Space;1");
  ASSERT_TRUE(space);
  EXPECT_EQ(space->display_name.at("en"), "Space");
  EXPECT_EQ(space->description.at("de"), "Ein Ort");
  auto data = ToModelData(*space, false);
  EXPECT_EQ(data.at("uploadTime").as_string(), "2027-01-15T08:00:00.000Z");
  EXPECT_FALSE(data.contains("model"));
  EXPECT_EQ(ToModelData(*space, true).at("model").at("@id").as_string(), "dtmi:ex:Space;1");

  auto all = models_->List({}, "", 100);
  ASSERT_TRUE(all);
  EXPECT_EQ(Ids(*all),
            (std::vector<std::string>{"dtmi:ex:Room;1", "dtmi:ex:Sensor;1", "dtmi:ex:Space;1"}));
  auto page = models_->List({}, "dtmi:ex:Room;1", 1);
  ASSERT_TRUE(page);
  EXPECT_EQ(Ids(*page), std::vector<std::string>{"dtmi:ex:Sensor;1"});
  auto deps = models_->List({.dependencies_for = {"dtmi:ex:Sensor;1"}}, "", 100);
  ASSERT_TRUE(deps);
  EXPECT_EQ(Ids(*deps), std::vector<std::string>{"dtmi:ex:Sensor;1"});
  deps = models_->List({.dependencies_for = {"dtmi:ex:Room;1"}}, "", 100);
  ASSERT_TRUE(deps);
  EXPECT_EQ(deps->size(), 3u);
  auto unknown = models_->List({.dependencies_for = {"dtmi:ex:Nope;1"}}, "", 100);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), Errc::kModelNotFound);
}

TEST_F(ModelStoreTest, ResolvesReferencesToStoredModelsAndTheirSchemas) {
  ASSERT_TRUE(models_->Add({M(kBase)}));
  ASSERT_TRUE(models_->Add({M(kSensor)}));
  Reopen();
  auto added = models_->Add({M(kRoom)});
  ASSERT_TRUE(added) << added.error().message();
  EXPECT_EQ((*added)[0].dependencies.size(), 2u);
}

TEST_F(ModelStoreTest, AnUploadIsAllOrNothing) {
  std::vector<std::string> details;
  // Room needs Sensor, which is neither sent nor stored: nothing is stored, Space included.
  auto r = models_->Add({M(kBase), M(kRoom)}, &details);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kDtdlParserError);
  ASSERT_FALSE(details.empty());
  EXPECT_NE(details[0].find("dtmi:ex:Sensor;1"), std::string::npos) << details[0];
  EXPECT_EQ(models_->size(), 0u);

  details.clear();
  auto bad = models_->Add({M(kSensor), M(R"({"@context":"dtmi:dtdl:context;3",
      "@id":"dtmi:ex:Bad;1","@type":"Interface","contents":[{"@type":"Property","name":"x y",
      "schema":"double"}]})")},
                          &details);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::kDtdlParserError);
  ASSERT_FALSE(details.empty());
  EXPECT_NE(details[0].find("dtmi:dtdl:parsingError:"), std::string::npos) << details[0];
  EXPECT_EQ(ToWireError(bad.error()).code, "DTDLParserError");
  EXPECT_EQ(models_->size(), 0u);

  auto version = models_->Add({M(R"({"@context":"dtmi:dtdl:context;4","@id":"dtmi:ex:V;1",
      "@type":"Interface"})")});
  ASSERT_FALSE(version);
  EXPECT_EQ(version.error().code(), Errc::kModelVersionNotSupported);

  auto not_model = models_->Add({M(R"([1,2])")});
  ASSERT_FALSE(not_model);
  EXPECT_EQ(not_model.error().code(), Errc::kInvalidArgument);
  auto twice = models_->Add({M(kSensor), M(kSensor)});
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code(), Errc::kInvalidArgument);
}

TEST_F(ModelStoreTest, RefusesAnIdThatExists) {
  ASSERT_TRUE(models_->Add({M(kSensor)}));
  auto again = models_->Add({M(kBase), M(kSensor)});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::kModelAlreadyExists);
  EXPECT_NE(again.error().message().find("dtmi:ex:Sensor;1"), std::string::npos);
  EXPECT_EQ(ToWireError(again.error()).status, 409);
  EXPECT_EQ(models_->size(), 1u);
}

TEST_F(ModelStoreTest, DeleteIsRefusedWhileOtherModelsDependOnIt) {
  ASSERT_TRUE(models_->Add({M(kBase), M(kSensor), M(kRoom)}));
  auto st = models_->Delete("dtmi:ex:Space;1");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), Errc::kModelReferencesNotDeleted);
  EXPECT_NE(st.error().message().find("dtmi:ex:Room;1"), std::string::npos);
  EXPECT_EQ(models_->Delete("dtmi:ex:Nope;1").error().code(), Errc::kModelNotFound);
  ASSERT_TRUE(models_->Delete("dtmi:ex:Room;1"));
  ASSERT_TRUE(models_->Delete("dtmi:ex:Space;1"));
  Reopen();
  EXPECT_FALSE(models_->Get("dtmi:ex:Room;1"));
  EXPECT_FALSE(models_->Get("dtmi:ex:Space;1"));
  EXPECT_TRUE(models_->Get("dtmi:ex:Sensor;1"));
  // Room's base is gone: Room no longer resolves.
  std::vector<std::string> details;
  auto r = models_->Add({M(kRoom)}, &details);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kDtdlParserError);
}

TEST_F(ModelStoreTest, DecommissionIsDurable) {
  ASSERT_TRUE(models_->Add({M(kSensor)}));
  ASSERT_TRUE(models_->Decommission("dtmi:ex:Sensor;1"));
  ASSERT_TRUE(models_->Decommission("dtmi:ex:Sensor;1"));
  EXPECT_EQ(models_->Decommission("dtmi:ex:Nope;1").error().code(), Errc::kModelNotFound);
  Reopen();
  auto m = models_->Get("dtmi:ex:Sensor;1");
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->decommissioned);
  EXPECT_TRUE(ToModelData(*m, false).at("decommissioned").as_bool());
}

TEST_F(ModelStoreTest, EnforcesLimits) {
  Reopen({.max_models = 2, .max_batch = 2, .max_model_bytes = 600, .max_dependencies_for = 1});
  auto big = models_->Add({M(kBase), M(kSensor), M(kRoom)});
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code(), Errc::kLimitExceeded);
  json::value large = M(kSensor);
  large.as_object()["comment"] = std::string(600, 'x');
  auto size = models_->Add({large});
  ASSERT_FALSE(size);
  EXPECT_EQ(size.error().code(), Errc::kLimitExceeded);
  EXPECT_NE(size.error().message().find("bytes"), std::string::npos);
  ASSERT_TRUE(models_->Add({M(kSensor)}));
  ASSERT_TRUE(models_->Add({M(R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:A;1",
      "@type":"Interface"})")}));
  auto full = models_->Add({M(R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:B;1",
      "@type":"Interface"})")});
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code(), Errc::kLimitExceeded);
  auto many = models_->List({.dependencies_for = {"dtmi:ex:A;1", "dtmi:ex:Sensor;1"}}, "", 10);
  ASSERT_FALSE(many);
  EXPECT_EQ(many.error().code(), Errc::kLimitExceeded);
}

}  // namespace
}  // namespace orrery::twins
