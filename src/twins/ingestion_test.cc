// Ingestion rules: device telemetry on the hub's log patches the device's twin (by id
// template and by query), a propagation rule carries the change to the containing room, and
// rules are validated and stored.
#include "twins/ingestion.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "twins/errc.h"
#include "twins/model_store.h"
#include "twins/notifications.h"
#include "twins/twin_graph.h"

namespace orrery::twins {
namespace {
namespace json = boost::json;

const char* kSensor =
    R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:i:Sensor;1","@type":"Interface",
  "contents":[{"@type":"Property","name":"temperature","schema":"double","writable":true},
              {"@type":"Property","name":"deviceId","schema":"string","writable":true},
              {"@type":"Property","name":"lastSeen","schema":"dateTime","writable":true}]})";
const char* kRoom = R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:i:Room;1","@type":"Interface",
  "contents":[{"@type":"Property","name":"temperature","schema":"double","writable":true},
              {"@type":"Relationship","name":"hasSensor","target":"dtmi:i:Sensor;1"}]})";

class IngestionTest : public ::testing::Test {
 protected:
  IngestionTest() {
    dir_ = std::filesystem::temp_directory_path() /
           ("orrery-ingest-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    kv_ = std::move(*store::OpenRocksDb({.path = dir_ / "state"}));
    models_ = std::move(*ModelStore::Open(kv_.get(), {}, [] { return int64_t{1}; }));
    std::vector<std::string> details;
    EXPECT_TRUE(models_->Add({json::parse(kSensor), json::parse(kRoom)}, &details));
    hub_ = std::move(*eventlog::EventLog::Open(dir_ / "hub", {.partitions = 2}));
    notifier_ = std::move(*Notifier::Open(
        kv_.get(), {.dir = dir_ / "notify", .source = "t", .log = {.partitions = 1}}));
    graph_ = std::move(*TwinGraph::Open(kv_.get(), models_.get(), {}, [] { return int64_t{1}; }));
    graph_->SetObserver(notifier_.get());
    auto opened = Ingestion::Open(kv_.get(), graph_.get(), notifier_.get(), hub_.get());
    EXPECT_TRUE(opened) << opened.error().message();
    ingestion_ = std::move(*opened);
  }
  ~IngestionTest() override {
    ingestion_->Stop();
    graph_->SetObserver(nullptr);
    notifier_->Stop();
    ingestion_.reset();
    graph_.reset();
    notifier_.reset();
    hub_->Close();
    kv_->Drain();
    kv_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Rule(std::string name, std::string text) {
    auto r = RuleFromJson(name, json::parse(text));
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_TRUE(ingestion_->PutRule(*r));
  }
  void Put(std::string id, std::string body) {
    std::promise<Result<json::object>> p;
    graph_->PutTwin(id, json::parse(body).as_object(), "",
                    [&](Result<json::object> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    ASSERT_TRUE(r) << r.error().message();
  }
  void Relate(std::string source, std::string id, std::string target) {
    std::promise<Result<json::object>> p;
    graph_->PutRelationship(source, id,
                            json::object{{"$relationshipName", "hasSensor"}, {"$targetId", target}},
                            "", [&](Result<json::object> r) { p.set_value(std::move(r)); });
    ASSERT_TRUE(p.get_future().get());
  }
  // Device telemetry as the hub appends it.
  void Telemetry(std::string device, std::string body) {
    eventlog::Message m;
    m.body = std::move(body);
    m.system.content_type = "application/json";
    m.system.content_encoding = "utf-8";
    m.system.connection_device_id = std::move(device);
    m.system.message_source = "Telemetry";
    std::promise<bool> p;
    ASSERT_TRUE(hub_->Append(m, [&](const Result<eventlog::Appended>& r) { p.set_value(!!r); }));
    ASSERT_TRUE(p.get_future().get());
  }
  // Waits (bounded) until `id`'s property `name` is `want`: ingestion runs on its own threads.
  bool Eventually(std::string id, std::string name, json::value want) {
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < end) {
      auto t = graph_->GetTwin(id);
      if (t && t->contains(name) && t->at(name) == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::KvStore> kv_;
  std::unique_ptr<ModelStore> models_;
  std::unique_ptr<eventlog::EventLog> hub_;
  std::unique_ptr<Notifier> notifier_;
  std::unique_ptr<TwinGraph> graph_;
  std::unique_ptr<Ingestion> ingestion_;
};

TEST_F(IngestionTest, TelemetryPatchesTheDeviceTwinAndPropagatesToTheRoom) {
  Put("sensor-1", R"({"$metadata":{"$model":"dtmi:i:Sensor;1"}})");
  Put("room-1", R"({"$metadata":{"$model":"dtmi:i:Room;1"}})");
  Relate("room-1", "s", "sensor-1");
  Rule("device-temperature", R"j({"source":"telemetry","condition":"is_defined($body.temperature)",
      "twinId":"{deviceId}","patch":{"/temperature":"$body.temperature",
      "/lastSeen":"$enqueuedTime"}})j");
  Rule("room-from-sensor", R"({"source":"digitalTwinChange",
      "condition":"$body.modelId = 'dtmi:i:Sensor;1'",
      "relationship":"hasSensor","direction":"incoming",
      "patch":{"/temperature":"$twin.temperature"}})");
  Telemetry("sensor-1", R"({"temperature":21.5})");
  EXPECT_TRUE(Eventually("sensor-1", "temperature", 21.5));
  EXPECT_TRUE(Eventually("room-1", "temperature", 21.5));
  EXPECT_TRUE(graph_->GetTwin("sensor-1")->contains("lastSeen"));
  // A message the condition refuses changes nothing; the next reading propagates again.
  Telemetry("sensor-1", R"({"humidity":40})");
  Telemetry("sensor-1", R"({"temperature":23})");
  EXPECT_TRUE(Eventually("room-1", "temperature", 23));
  EXPECT_EQ(graph_->GetTwin("sensor-1")->at("temperature"), 23);
  // A device without a twin: counted, passed.
  Telemetry("nobody", R"({"temperature":1})");
  Telemetry("sensor-1", R"({"temperature":24})");
  EXPECT_TRUE(Eventually("room-1", "temperature", 24));
  EXPECT_GE(ingestion_->stats().failed, 1u);
  EXPECT_GE(ingestion_->stats().applied, 5u);
}

TEST_F(IngestionTest, ATargetByQuery) {
  Put("thermo-a", R"({"$metadata":{"$model":"dtmi:i:Sensor;1"},"deviceId":"dev-9"})");
  Put("thermo-b", R"({"$metadata":{"$model":"dtmi:i:Sensor;1"},"deviceId":"dev-7"})");
  Rule("by-query", R"({"source":"telemetry",
      "twinQuery":"SELECT T FROM DIGITALTWINS T WHERE T.deviceId = '{deviceId}'",
      "patch":{"/temperature":"$body.t"}})");
  Telemetry("dev-9", R"({"t":30})");
  EXPECT_TRUE(Eventually("thermo-a", "temperature", 30));
  EXPECT_FALSE(graph_->GetTwin("thermo-b")->contains("temperature"));
}

TEST_F(IngestionTest, RulesAreValidatedAndStored) {
  auto bad = [](std::string text, std::string needle) {
    auto r = RuleFromJson("r", json::parse(text));
    ASSERT_FALSE(r) << text;
    EXPECT_NE(r.error().message().find(needle), std::string::npos) << r.error().message();
  };
  bad(R"({"source":"email","twinId":"x","patch":{"/a":1}})", "\"source\" must be");
  bad(R"({"source":"telemetry","patch":{"/a":1}})", "\"twinId\"");
  bad(R"({"source":"telemetry","twinId":"x"})", "\"patch\"");
  bad(R"({"source":"telemetry","twinId":"x","patch":{"a":1}})", "JSON pointer");
  bad(R"({"source":"telemetry","twinId":"x","patch":{"/a":"$bogus"}})", "is not $body");
  bad(R"({"source":"telemetry","twinId":"x","patch":{"/a":"$twin.b"}})", "digitalTwinChange");
  bad(R"({"source":"telemetry","twinId":"x","condition":"a = = 1","patch":{"/a":1}})",
      "line 1, column");
  bad(R"({"source":"telemetry","twinQuery":"SELECT FROM","patch":{"/a":1}})", "twinQuery");
  bad(R"({"source":"digitalTwinChange","patch":{"/a":1}})", "\"relationship\"");
  bad(R"({"source":"telemetry","twinId":"x","patch":{"/a":1},"extra":1})", "unknown member");
  EXPECT_FALSE(RuleFromJson("no spaces", json::parse(R"({})")));

  Rule("keep", R"({"source":"twinChangeEvents","twinId":"{deviceId}",
      "patch":{"/temperature":"$body.properties.reported.temperature"}})");
  auto shown = RuleToJson(*ingestion_->GetRule("keep"));
  EXPECT_EQ(shown.at("source"), "twinChangeEvents");
  EXPECT_EQ(shown.at("patch").at("/temperature"), "$body.properties.reported.temperature");
  EXPECT_EQ(ingestion_->GetRule("none").error().code(), make_error_code(Errc::kMappingNotFound));
  ingestion_->Stop();
  auto again = Ingestion::Open(kv_.get(), graph_.get(), notifier_.get(), hub_.get());
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)->Rules().size(), 1u);
  EXPECT_TRUE((*again)->DeleteRule("keep"));
  EXPECT_FALSE((*again)->DeleteRule("keep"));
  (*again)->Stop();
}

TEST_F(IngestionTest, RulesFromAFileAllOrNothing) {
  auto file = dir_ / "mappings.json";
  std::ofstream(file) << R"({"a":{"source":"telemetry","twinId":"{deviceId}","patch":{"/t":1}},
      "b":{"source":"telemetry","twinId":"x","patch":{"t":1}}})";
  auto bad = ingestion_->LoadFile(file);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("mappings.json: rule 'b'"), std::string::npos)
      << bad.error().message();
  EXPECT_TRUE(ingestion_->Rules().empty());  // nothing from a file with a bad rule
  std::ofstream(file) << R"({"a":{"source":"telemetry","twinId":"{deviceId}","patch":{"/t":1}},
      "b":{"source":"deviceLifecycleEvents","twinId":"{deviceId}","patch":{"/t":2}}})";
  ASSERT_TRUE(ingestion_->LoadFile(file));
  EXPECT_EQ(ingestion_->Rules().size(), 2u);
  EXPECT_EQ(ingestion_->GetRule("b")->source, IngestionRule::Source::kLifecycle);
  EXPECT_FALSE(ingestion_->LoadFile(dir_ / "absent.json"));
}

}  // namespace
}  // namespace orrery::twins
