#include <unistd.h>

#include <filesystem>
#include <future>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "twins/adt_query.h"
#include "twins/errc.h"
#include "twins/model_store.h"
#include "twins/twin_graph.h"

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

// ---------------------------------------------------------------- the twin graph

template <class T, class Start>
Result<T> Wait(Start start) {
  auto p = std::make_shared<std::promise<Result<T>>>();
  auto f = p->get_future();
  start([p](Result<T> r) { p->set_value(std::move(r)); });
  return f.get();
}

const char* kBuilding = R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Building;1",
  "@type":"Interface","extends":"dtmi:ex:Space;1",
  "contents":[{"@type":"Relationship","name":"contains","target":"dtmi:ex:Space;1",
               "properties":[{"@type":"Property","name":"since","schema":"dateTime"}]},
              {"@type":"Relationship","name":"managedBy","maxMultiplicity":1},
              {"@type":"Property","name":"floors","schema":"integer"},
              {"@type":"Property","name":"tags","schema":{"@type":"Map",
                 "mapKey":{"name":"k","schema":"string"},"mapValue":{"name":"v","schema":"string"}}},
              {"@type":"Property","name":"address","schema":{"@type":"Object","fields":[
                 {"name":"street","schema":"string"},{"name":"zip","schema":"integer"}]}},
              {"@type":"Property","name":"kind","schema":{"@type":"Enum","valueSchema":"string",
                 "enumValues":[{"name":"office","enumValue":"office"},{"name":"home","enumValue":"home"}]}}]})";

class TwinGraphTest : public ModelStoreTest {
 protected:
  TwinGraphTest() {
    auto added = models_->Add({M(kBase), M(kSensor), M(kRoom), M(kBuilding)});
    EXPECT_TRUE(added) << added.error().message();
    OpenGraph();
  }
  void OpenGraph() {
    graph_.reset();
    auto g = TwinGraph::Open(kv_.get(), models_.get(), {}, [this] { return now_; });
    ASSERT_TRUE(g) << g.error().message();
    graph_ = std::move(*g);
  }
  void Restart() {
    graph_.reset();
    kv_->Drain();
    Reopen();
    OpenGraph();
  }
  Result<json::object> Put(std::string id, std::string_view body, std::string if_none_match = "") {
    return Wait<json::object>(
        [&](auto done) { graph_->PutTwin(id, M(body).as_object(), if_none_match, done); });
  }
  Result<std::string> Patch(std::string id, std::string_view patch, std::string if_match = "") {
    return Wait<std::string>(
        [&](auto done) { graph_->PatchTwin(id, M(patch).as_array(), if_match, done); });
  }
  Result<json::object> Relate(std::string source, std::string id, std::string_view body) {
    return Wait<json::object>(
        [&](auto done) { graph_->PutRelationship(source, id, M(body).as_object(), "", done); });
  }
  Status DeleteTwin(std::string id) {
    return Wait<void>([&](auto done) { graph_->DeleteTwin(id, "", done); });
  }
  std::unique_ptr<TwinGraph> graph_;
};

const char* kRoomTwin = R"({"$metadata":{"$model":"dtmi:ex:Room;1",
  "name":{"sourceTime":"2026-11-30T10:00:00Z"}},"name":"Room 1","sensor":{"$metadata":{}}})";

TEST_F(TwinGraphTest, TwinsAreValidatedAgainstTheirModel) {
  auto room = Put("room1", kRoomTwin);
  ASSERT_TRUE(room) << room.error().message();
  EXPECT_EQ(room->at("$dtId").as_string(), "room1");
  EXPECT_TRUE(room->at("$etag").as_string().starts_with("W/\""));
  auto& meta = room->at("$metadata").as_object();
  EXPECT_EQ(meta.at("$model").as_string(), "dtmi:ex:Room;1");
  EXPECT_EQ(meta.at("$lastUpdateTime").as_string(), "2027-01-15T08:00:00.000Z");
  EXPECT_EQ(meta.at("name").at("lastUpdateTime").as_string(), "2027-01-15T08:00:00.000Z");
  EXPECT_EQ(meta.at("name").at("sourceTime").as_string(), "2026-11-30T10:00:00Z");
  EXPECT_TRUE(room->at("sensor").at("$metadata").is_object());

  auto refused = [&](std::string_view body, std::string_view why) {
    auto r = Put("bad", body);
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error().code(), Errc::kValidationFailed) << r.error().message();
    EXPECT_NE(r.error().message().find(why), std::string::npos) << r.error().message();
  };
  refused(R"({"$metadata":{"$model":"dtmi:ex:Room;1"},"name":"x"})", "component 'sensor'");
  refused(R"({"$metadata":{"$model":"dtmi:ex:Room;1"},"name":5,"sensor":{"$metadata":{}}})",
          "is not a string");
  refused(R"({"$metadata":{"$model":"dtmi:ex:Room;1"},"size":5,"sensor":{"$metadata":{}}})",
          "'size' is not a property");
  refused(R"({"$metadata":{"$model":"dtmi:ex:Room;1"},"sensor":{"$metadata":{},"temperature":1}})",
          "Telemetry");
  refused(R"({"$metadata":{"$model":"dtmi:ex:Nope;1"}})", "does not exist");
  refused(R"({"name":"x"})", "$model");
  refused(R"({"$metadata":{"$model":"dtmi:ex:Building;1"},"floors":2.5})", "not an integer");
  refused(R"({"$metadata":{"$model":"dtmi:ex:Building;1"},"kind":"castle"})",
          "not a value of the enum");
  refused(R"({"$metadata":{"$model":"dtmi:ex:Building;1"},"address":{"town":"x"}})", "not a field");
  refused(R"({"$metadata":{"$model":"dtmi:ex:Building;1"},"tags":{"a":1}})", "not a string");
  refused(fmt::format(R"({{"$metadata":{{"$model":"dtmi:ex:Space;1"}},"name":"{}"}})",
                      std::string(5000, 'x')),
          "the limit is 4096");
  auto ok = Put("b1", R"({"$metadata":{"$model":"dtmi:ex:Building;1"},"floors":3,"kind":"office",
      "address":{"street":"Main","zip":1234},"tags":{"a":"b"},"name":"HQ"})");
  ASSERT_TRUE(ok) << ok.error().message();

  auto again = Put("room1", kRoomTwin, "*");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::kPreconditionFailed);
  ASSERT_TRUE(models_->Decommission("dtmi:ex:Sensor;1"));
  auto old = Put("s1", R"({"$metadata":{"$model":"dtmi:ex:Sensor;1"}})");
  ASSERT_FALSE(old);
  EXPECT_NE(old.error().message().find("decommissioned"), std::string::npos);
}

TEST_F(TwinGraphTest, PatchesAreAtomicWithEtagsAndMetadata) {
  auto room = Put("room1", kRoomTwin);
  ASSERT_TRUE(room);
  std::string etag0(room->at("$etag").as_string());
  now_ += 60'000;
  auto e1 = Patch("room1", R"([{"op":"replace","path":"/name","value":"Room One"}])", etag0);
  ASSERT_TRUE(e1) << e1.error().message();
  EXPECT_NE(*e1, etag0);
  auto twin = graph_->GetTwin("room1");
  ASSERT_TRUE(twin);
  EXPECT_EQ(twin->at("name").as_string(), "Room One");
  EXPECT_EQ(twin->at("$metadata").at("name").at("lastUpdateTime").as_string(),
            "2027-01-15T08:01:00.000Z");
  EXPECT_EQ(twin->at("$metadata").at("$lastUpdateTime").as_string(), "2027-01-15T08:01:00.000Z");

  auto stale = Patch("room1", R"([{"op":"replace","path":"/name","value":"x"}])", etag0);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code(), Errc::kPreconditionFailed);
  // A patch that breaks the model changes nothing, not even its valid first operation.
  auto bad = Patch("room1", R"([{"op":"replace","path":"/name","value":"ok"},
                                {"op":"add","path":"/size","value":3}])");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::kValidationFailed);
  EXPECT_EQ(graph_->GetTwin("room1")->at("name").as_string(), "Room One");
  EXPECT_EQ(Patch("room1", R"([{"op":"remove","path":"/missing"}])").error().code(),
            Errc::kJsonPatchInvalid);
  EXPECT_EQ(Patch("room1", R"([{"op":"replace","path":"/$dtId","value":"x"}])").error().code(),
            Errc::kJsonPatchInvalid);
  EXPECT_EQ(Patch("room1", R"([{"op":"move","from":"/a","path":"/name"}])").error().code(),
            Errc::kJsonPatchInvalid);
  EXPECT_EQ(Patch("nope", R"([{"op":"remove","path":"/name"}])").error().code(),
            Errc::kDigitalTwinNotFound);

  // Remove drops the property and its metadata.
  ASSERT_TRUE(Patch("room1", R"([{"op":"remove","path":"/name"}])"));
  twin = graph_->GetTwin("room1");
  EXPECT_FALSE(twin->contains("name"));
  EXPECT_FALSE(twin->at("$metadata").as_object().contains("name"));
  // Changing the model: Room → Space drops the need for the component, which must go.
  auto migrate =
      Patch("room1", R"([{"op":"replace","path":"/$metadata/$model","value":"dtmi:ex:Space;1"}])");
  ASSERT_FALSE(migrate);
  EXPECT_NE(migrate.error().message().find("sensor"), std::string::npos);
  ASSERT_TRUE(
      Patch("room1", R"([{"op":"replace","path":"/$metadata/$model","value":"dtmi:ex:Space;1"},
                                 {"op":"remove","path":"/sensor"}])"));
  EXPECT_EQ(graph_->GetTwin("room1")->at("$metadata").at("$model").as_string(), "dtmi:ex:Space;1");
}

TEST_F(TwinGraphTest, ComponentsAreReadAndPatched) {
  ASSERT_TRUE(Put("room1", kRoomTwin));
  auto c = graph_->GetComponent("room1", "sensor");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains("$metadata"));
  EXPECT_EQ(graph_->GetComponent("room1", "nope").error().code(), Errc::kComponentNotFound);
  auto bad = Wait<std::string>([&](auto done) {
    graph_->PatchComponent("room1", "sensor",
                           M(R"([{"op":"add","path":"/temperature","value":1}])").as_array(), "",
                           done);
  });
  ASSERT_FALSE(bad);  // telemetry is not state
  EXPECT_EQ(bad.error().code(), Errc::kValidationFailed);
}

TEST_F(TwinGraphTest, RelationshipsFollowTheModelAndSurviveRestarts) {
  ASSERT_TRUE(Put("hq", R"({"$metadata":{"$model":"dtmi:ex:Building;1"}})"));
  ASSERT_TRUE(Put("room1", kRoomTwin));
  ASSERT_TRUE(Put("room2", kRoomTwin));
  ASSERT_TRUE(Put("lobby", R"({"$metadata":{"$model":"dtmi:ex:Space;1"}})"));
  // Rooms are Spaces (Room extends Space): a valid target.
  auto r1 = Relate("hq", "c1", R"({"$relationshipName":"contains","$targetId":"room1",
                                   "since":"2020-01-01T00:00:00Z"})");
  ASSERT_TRUE(r1) << r1.error().message();
  EXPECT_EQ(r1->at("$sourceId").as_string(), "hq");
  ASSERT_TRUE(Relate("hq", "c2", R"({"$relationshipName":"contains","$targetId":"room2"})"));
  ASSERT_TRUE(Relate("hq", "c3", R"({"$relationshipName":"contains","$targetId":"lobby"})"));
  auto refused = [&](std::string src, std::string_view body, std::string_view why) {
    auto r = Relate(src, "x", body);
    ASSERT_FALSE(r) << body;
    EXPECT_NE(r.error().message().find(why), std::string::npos) << r.error().message();
  };
  refused("hq", R"({"$relationshipName":"contains","$targetId":"nobody"})", "does not exist");
  refused("hq", R"({"$relationshipName":"owns","$targetId":"room1"})", "not a relationship");
  refused("room1", R"({"$relationshipName":"contains","$targetId":"room2"})", "not a relationship");
  refused("hq", R"({"$relationshipName":"contains","$targetId":"room1","since":"soon"})",
          "date-time");
  refused("hq", R"({"$relationshipName":"contains","$targetId":"room1","weight":1})",
          "not a property of relationship");
  ASSERT_TRUE(Relate("hq", "m1", R"({"$relationshipName":"managedBy","$targetId":"lobby"})"));
  auto second = Relate("hq", "m2", R"({"$relationshipName":"managedBy","$targetId":"room1"})");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), Errc::kLimitExceeded);

  auto contains = graph_->ListRelationships("hq", "contains", "", 10);
  ASSERT_TRUE(contains);
  EXPECT_EQ(contains->size(), 3u);
  auto page = graph_->ListRelationships("hq", "", "c2", 10);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->size(), 2u);  // c3, m1
  auto incoming = graph_->ListIncoming("lobby", "", 10);
  ASSERT_TRUE(incoming);
  ASSERT_EQ(incoming->size(), 2u);
  EXPECT_EQ((*incoming)[0].at("$relationshipLink").as_string(),
            "/digitaltwins/hq/relationships/c3");
  auto next = graph_->ListIncoming("lobby", TwinGraph::IncomingKey((*incoming)[0]), 10);
  ASSERT_TRUE(next);
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].at("$relationshipId").as_string(), "m1");

  auto del = DeleteTwin("lobby");
  ASSERT_FALSE(del);
  EXPECT_EQ(del.error().code(), Errc::kRelationshipsNotDeleted);

  Restart();
  EXPECT_EQ(graph_->twin_count(), 4u);
  EXPECT_EQ(graph_->relationship_count(), 4u);
  EXPECT_EQ(graph_->ListIncoming("lobby", "", 10)->size(), 2u);
  auto patched = Wait<std::string>([&](auto done) {
    graph_->PatchRelationship(
        "hq", "c1",
        M(R"([{"op":"replace","path":"/since","value":"2021-01-01T00:00:00Z"}])").as_array(), "",
        done);
  });
  ASSERT_TRUE(patched) << patched.error().message();
  EXPECT_EQ(graph_->GetRelationship("hq", "c1")->at("since").as_string(), "2021-01-01T00:00:00Z");
  for (const char* id : {"c3", "m1"}) {
    ASSERT_TRUE(Wait<void>([&](auto done) { graph_->DeleteRelationship("hq", id, "", done); }));
  }
  EXPECT_EQ(graph_->GetRelationship("hq", "c3").error().code(), Errc::kRelationshipNotFound);
  ASSERT_TRUE(DeleteTwin("lobby"));
  Restart();
  EXPECT_EQ(graph_->GetTwin("lobby").error().code(), Errc::kDigitalTwinNotFound);
  EXPECT_EQ(graph_->relationship_count(), 2u);
}

TEST_F(TwinGraphTest, ReadGivesQueriesTheGraphAndItsModelIndex) {
  ASSERT_TRUE(Put("hq", R"({"$metadata":{"$model":"dtmi:ex:Building;1"}})"));
  ASSERT_TRUE(Put("room1", kRoomTwin));
  ASSERT_TRUE(Put("lobby", R"({"$metadata":{"$model":"dtmi:ex:Space;1"}})"));
  ASSERT_TRUE(Relate("hq", "c1", R"({"$relationshipName":"contains","$targetId":"room1"})"));
  ASSERT_TRUE(Relate("hq", "c2", R"({"$relationshipName":"contains","$targetId":"lobby"})"));
  ASSERT_TRUE(Relate("hq", "m1", R"({"$relationshipName":"managedBy","$targetId":"lobby"})"));
  graph_->Read([&](const GraphView& v) {
    std::vector<std::string> ids;
    auto collect = [&](const json::object& o) {
      ids.emplace_back(o.at("$dtId").as_string());
      return true;
    };
    v.ForEachTwinOfModel("dtmi:ex:Space;1", false, collect);
    EXPECT_EQ(ids, (std::vector<std::string>{"hq", "lobby", "room1"}));  // all extend Space
    ids.clear();
    v.ForEachTwinOfModel("dtmi:ex:Space;1", true, collect);
    EXPECT_EQ(ids, std::vector<std::string>{"lobby"});
    EXPECT_TRUE(v.IsOfModel("dtmi:ex:Room;1", "dtmi:ex:Space;1", false));
    EXPECT_FALSE(v.IsOfModel("dtmi:ex:Space;1", "dtmi:ex:Room;1", false));
    size_t n = 0;
    v.ForEachOutgoing("hq", "contains", [&](const json::object&) { return ++n, true; });
    EXPECT_EQ(n, 2u);
    n = 0;
    v.ForEachIncoming("lobby", "", [&](const json::object&) { return ++n, true; });
    EXPECT_EQ(n, 2u);
    n = 0;
    v.ForEachRelationship([&](const json::object&) { return ++n < 2; });  // stops when told
    EXPECT_EQ(n, 2u);
    EXPECT_NE(v.Twin("room1"), nullptr);
    EXPECT_EQ(v.Twin("nobody"), nullptr);
  });
  // The index follows a model change and a delete.
  ASSERT_TRUE(
      Patch("room1", R"([{"op":"replace","path":"/$metadata/$model","value":"dtmi:ex:Space;1"},
                                 {"op":"remove","path":"/sensor"}])"));
  ASSERT_TRUE(Wait<void>([&](auto done) { graph_->DeleteRelationship("hq", "c1", "", done); }));
  graph_->Read([&](const GraphView& v) {
    size_t n = 0;
    v.ForEachTwinOfModel("dtmi:ex:Space;1", true, [&](const json::object&) { return ++n, true; });
    EXPECT_EQ(n, 2u);
  });
}

// The graph's view without its indexes: every start is a scan (the model "index" too).
class ScanView final : public ForwardingGraphView {
 public:
  using ForwardingGraphView::ForwardingGraphView;
  void ForEachTwinOfModel(std::string_view model, bool exact, const Visit& visit) const override {
    v_.ForEachTwin([&](const json::object& t) {
      std::string_view m = t.at("$metadata").at("$model").as_string();
      return !IsOfModel(m, model, exact) || visit(t);
    });
  }
  std::optional<size_t> CountTwinsOfModel(std::string_view, bool) const override {
    return std::nullopt;
  }
  bool ForEachTwinByProperty(const PropertyFilter&, const Visit&) const override { return false; }
  std::optional<size_t> CountTwinsByProperty(const PropertyFilter&, size_t) const override {
    return std::nullopt;
  }
};

class PropertyIndexTest : public TwinGraphTest {
 protected:
  // Every row of `text` over the graph's view (indexed) and over ScanView, in pages of `page`;
  // the documents examined by each.
  struct Answer {
    std::string rows;
    uint64_t examined = 0;
  };
  Answer Run(std::string_view text, bool indexed, uint64_t page) {
    auto q = AdtQuery::Parse(text);
    EXPECT_TRUE(q) << text << ": " << (q ? "" : q.error().message());
    Answer a;
    if (!q) return a;
    json::array rows;
    std::string token;
    for (int i = 0; i < 10000; ++i) {
      Result<AdtPage> p = Error(Errc::kUnavailable, "");
      graph_->Read([&](const GraphView& v) {
        ScanView scan(v);
        p = q->Execute(indexed ? static_cast<const GraphView&>(v) : scan, {page, token});
      });
      EXPECT_TRUE(p) << text << ": " << (p ? "" : p.error().message());
      if (!p) break;
      a.examined += p->examined;
      for (auto& r : p->rows)
        rows.push_back(r);
      token = p->continuation;
      if (token.empty()) break;
    }
    a.rows = json::serialize(rows);
    return a;
  }
  // Checks that the indexed and scanned answers agree on every query; returns how many of
  // them examined fewer documents with the indexes.
  int Compare() {
    static const char* kQueries[] = {
        "SELECT * FROM DIGITALTWINS T WHERE T.floors = 3",
        "SELECT * FROM DIGITALTWINS T WHERE T.floors > 2 AND T.floors <= 5",
        "SELECT * FROM DIGITALTWINS T WHERE T.floors BETWEEN 2 AND 4",
        "SELECT * FROM DIGITALTWINS T WHERE T.floors IN [1, 3, 5.0, '3']",
        "SELECT * FROM DIGITALTWINS T WHERE T.floors = -1",
        "SELECT * FROM DIGITALTWINS T WHERE T.floors < 0",
        "SELECT * FROM DIGITALTWINS T WHERE T.floors = '3'",
        "SELECT * FROM DIGITALTWINS T WHERE T.name = 'Space 7'",
        "SELECT * FROM DIGITALTWINS T WHERE T.name = 5",
        "SELECT * FROM DIGITALTWINS T WHERE STARTSWITH(T.name, 'Room 1')",
        "SELECT * FROM DIGITALTWINS T WHERE T.name >= 'Room 3' AND T.name < 'Space'",
        "SELECT * FROM DIGITALTWINS T WHERE T.kind = 'office' AND IS_OF_MODEL(T, "
        "'dtmi:ex:Building;1')",
        "SELECT * FROM DIGITALTWINS WHERE floors = 4",
        "SELECT T.name FROM DIGITALTWINS T WHERE 3 < T.floors",
        "SELECT * FROM DIGITALTWINS T WHERE T.level = 2",
        "SELECT * FROM DIGITALTWINS T WHERE T.level = 2 AND IS_OF_MODEL(T, 'dtmi:ex:Space;1')",
        "SELECT COUNT() FROM DIGITALTWINS T WHERE T.floors >= 0",
        "SELECT TOP(3) * FROM DIGITALTWINS T WHERE T.floors > 1",
        "SELECT * FROM DIGITALTWINS T WHERE T.floors = 3 OR T.floors = 4",
        "SELECT * FROM DIGITALTWINS T WHERE T.address.zip = 1000",
        "SELECT * FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, 'dtmi:ex:Room;1')",
        "SELECT B, R FROM DIGITALTWINS B JOIN R RELATED B.contains WHERE R.name = 'Room 4'",
        "SELECT B.name, R.name AS room FROM DIGITALTWINS B JOIN R RELATED B.contains WHERE "
        "B.floors >= 4",
        "SELECT B, R FROM DIGITALTWINS MATCH (B)-[:contains]->(R) WHERE R.level = 1 AND "
        "B.floors > 1",
        "SELECT B, C FROM DIGITALTWINS MATCH (B)-[C:contains]->(R) WHERE R.name IN ['Room 2', "
        "'Room 5'] AND C.since > '2026'",
        "SELECT R FROM DIGITALTWINS MATCH (B)-[:contains*1..2]-(R) WHERE B.name = 'Space 3'",
    };
    int fewer = 0;
    for (const char* text : kQueries) {
      for (uint64_t page : {1000, 2}) {
        Answer indexed = Run(text, true, page), scanned = Run(text, false, page);
        EXPECT_EQ(indexed.rows, scanned.rows) << text << " (pages of " << page << ")";
        EXPECT_LE(indexed.examined, scanned.examined) << text;
        fewer += page == 1000 && indexed.examined < scanned.examined;
      }
    }
    return fewer;
  }
};

TEST_F(PropertyIndexTest, IndexedQueriesAnswerAsFullScansThroughChanges) {
  for (int i = 0; i < 30; ++i) {
    if (i % 3 == 0) {
      std::string kind = i % 2 ? "office" : "home";
      ASSERT_TRUE(Put(fmt::format("b{:02d}", i),
                      fmt::format(R"({{"$metadata":{{"$model":"dtmi:ex:Building;1"}},
                        "name":"Building {}","floors":{},"kind":"{}","address":{{"zip":{}}}}})",
                                  i, i % 7 - 1, kind, 1000 + i % 2)));
    } else if (i % 3 == 1) {
      ASSERT_TRUE(
          Put(fmt::format("r{:02d}", i), fmt::format(R"({{"$metadata":{{"$model":"dtmi:ex:Room;1"}},
                        "name":"Room {}","level":{},"sensor":{{"$metadata":{{}}}}}})",
                                                     i % 10, 1 + i % 2)));
    } else {
      ASSERT_TRUE(Put(fmt::format("s{:02d}", i),
                      fmt::format(R"({{"$metadata":{{"$model":"dtmi:ex:Space;1"}},
                        "name":"Space {}"}})",
                                  i % 9)));
    }
  }
  for (int b = 0; b < 30; b += 3) {
    for (int r = 1; r < 30; r += 3) {
      if ((r / 3 + b) % 3 == 0) continue;
      ASSERT_TRUE(Relate(fmt::format("b{:02d}", b), fmt::format("c{:02d}", r),
                         fmt::format(R"({{"$relationshipName":"contains","$targetId":"{}",
                           "since":"202{}-01-01T00:00:00Z"}})",
                                     fmt::format("r{:02d}", r), 4 + r % 4)));
    }
    ASSERT_TRUE(Relate(
        fmt::format("b{:02d}", b), "cs",
        fmt::format(R"({{"$relationshipName":"contains","$targetId":"s{:02d}"}})", (b + 2) % 30)));
  }
  EXPECT_GT(Compare(), 10);
  // Values change, disappear, change type; a twin changes model; twins go and come back.
  ASSERT_TRUE(Patch("b03", R"([{"op":"replace","path":"/floors","value":3}])"));
  ASSERT_TRUE(Patch("b06", R"([{"op":"remove","path":"/floors"}])"));
  ASSERT_TRUE(Patch("b09", R"([{"op":"add","path":"/name","value":"Room 4"}])"));
  ASSERT_TRUE(Patch("r04", R"([{"op":"replace","path":"/name","value":"Space 7"},
                              {"op":"replace","path":"/level","value":2}])"));
  ASSERT_TRUE(Patch("s05", R"([{"op":"replace","path":"/$metadata/$model",
                              "value":"dtmi:ex:Building;1"},{"op":"add","path":"/floors","value":4}])"));
  ASSERT_TRUE(Wait<void>([&](auto done) { graph_->DeleteRelationship("b27", "cs", "", done); }));
  ASSERT_TRUE(DeleteTwin("s29"));
  ASSERT_TRUE(Put("s29", R"({"$metadata":{"$model":"dtmi:ex:Building;1"},"floors":3})"));
  ASSERT_TRUE(Put("b12", R"({"$metadata":{"$model":"dtmi:ex:Building;1"},"name":"Space 7"})"));
  EXPECT_GT(Compare(), 10);
  // The indexes are rebuilt from the store.
  Restart();
  EXPECT_GT(Compare(), 10);
}

TEST_F(TwinGraphTest, APatchIsValidatedWhereItChangesTheTwin) {
  ASSERT_TRUE(Put("room1", kRoomTwin));
  ASSERT_TRUE(Put("hq", R"({"$metadata":{"$model":"dtmi:ex:Building;1"},"floors":2})"));
  auto refused = [](const Result<std::string>& r) {
    return !r && r.error().code() == Errc::kValidationFailed;
  };
  // What a patch touches is checked as a whole twin's member would be …
  EXPECT_TRUE(refused(Patch("hq", R"([{"op":"replace","path":"/floors","value":"two"}])")));
  EXPECT_TRUE(refused(Patch("hq", R"([{"op":"add","path":"/height","value":3}])")));
  EXPECT_TRUE(refused(Patch("hq", R"([{"op":"add","path":"/address","value":{"zip":"x"}}])")));
  EXPECT_TRUE(refused(Patch("hq", R"([{"op":"add","path":"/contains","value":1}])")));
  EXPECT_TRUE(refused(Patch("room1", R"([{"op":"remove","path":"/sensor"}])")));
  EXPECT_TRUE(refused(Patch("room1", R"([{"op":"replace","path":"/sensor","value":{}}])")));
  EXPECT_TRUE(refused(Patch("room1", R"([{"op":"add","path":"/sensor/temperature","value":1}])")));
  EXPECT_TRUE(refused(Patch("room1", R"([{"op":"add","path":"/level","value":3}])")));  // enum
  // … and nothing was applied.
  auto hq = graph_->GetTwin("hq");
  ASSERT_TRUE(hq);
  EXPECT_EQ(json::serialize(hq->at("floors")), "2");
  EXPECT_FALSE(hq->contains("address"));
  EXPECT_TRUE(Patch("hq", R"([{"op":"add","path":"/address","value":{"zip":75001}},
                             {"op":"replace","path":"/floors","value":3}])"));
  EXPECT_TRUE(Patch("room1", R"([{"op":"add","path":"/level","value":2}])"));
  // A new model validates the whole twin against it: floors and address are not Space's.
  EXPECT_TRUE(refused(Patch("hq", R"([{"op":"replace","path":"/$metadata/$model",
                                     "value":"dtmi:ex:Space;1"}])")));
  // The size limit counts the stored document: 8 values of 4,000 bytes fit in 32 KB, a 9th not.
  ASSERT_TRUE(Patch("hq", R"([{"op":"add","path":"/tags","value":{}}])"));
  std::string big(4000, 'x');
  int accepted = 0;
  for (int i = 0; i < 12; ++i) {
    accepted +=
        Patch("hq", fmt::format(R"([{{"op":"add","path":"/tags/k{}","value":"{}"}}])", i, big))
            .has_value();
  }
  EXPECT_EQ(accepted, 8);
  hq = graph_->GetTwin("hq");
  ASSERT_TRUE(hq);
  EXPECT_EQ(hq->at("tags").as_object().size(), 8u);
  EXPECT_LE(json::serialize(*hq).size(), 32u << 10);
  // A top-level patch (applied in place) over the limit is undone entirely.
  json::object nine;
  for (int i = 0; i < 9; ++i)
    nine[fmt::format("n{}", i)] = big;
  json::array too_big{json::object{{"op", "replace"}, {"path", "/floors"}, {"value", 7}},
                      json::object{{"op", "remove"}, {"path", "/address"}},
                      json::object{{"op", "replace"}, {"path", "/tags"}, {"value", nine}}};
  auto r = Wait<std::string>([&](auto done) { graph_->PatchTwin("hq", too_big, "", done); });
  EXPECT_TRUE(refused(r));
  auto after = graph_->GetTwin("hq");
  ASSERT_TRUE(after);
  EXPECT_TRUE(*after == *hq);  // the same members (an undo may reorder them)
  // In place, a value is stamped as a whole-twin change would stamp it; an equal value is not.
  now_ += 1000;
  ASSERT_TRUE(Patch("hq", R"([{"op":"replace","path":"/floors","value":7},
                             {"op":"add","path":"/kind","value":"home"},
                             {"op":"remove","path":"/address"}])"));
  ASSERT_TRUE(Patch("hq", R"([{"op":"replace","path":"/floors","value":7}])"));
  after = graph_->GetTwin("hq");
  ASSERT_TRUE(after);
  const json::object& meta = after->at("$metadata").as_object();
  std::string t = meta.at("$lastUpdateTime").as_string().c_str();
  EXPECT_NE(t, hq->at("$metadata").at("$lastUpdateTime").as_string());
  EXPECT_EQ(meta.at("floors").at("lastUpdateTime").as_string(), t);
  EXPECT_EQ(meta.at("kind").at("lastUpdateTime").as_string(), t);
  EXPECT_EQ(meta.at("tags"), hq->at("$metadata").at("tags"));
  EXPECT_FALSE(meta.contains("address"));
  EXPECT_FALSE(after->contains("address"));
}

}  // namespace
}  // namespace orrery::twins
