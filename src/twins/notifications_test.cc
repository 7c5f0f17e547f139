// Event notifications: the CloudEvents every graph change and telemetry message becomes,
// route filters, the endpoint and route rules, and the outbox that survives a crash.
// Webhook delivery is routing's sink (routing_test); test/integration/twins_serve_test drives
// it through the real binary.
#include "twins/notifications.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "twins/errc.h"
#include "twins/model_store.h"

namespace orrery::twins {
namespace {
namespace json = boost::json;

const char* kSensor =
    R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:n:Sensor;1","@type":"Interface",
  "contents":[{"@type":"Property","name":"reading","schema":"double","writable":true},
              {"@type":"Telemetry","name":"temperature","schema":"double"}]})";
const char* kRoom = R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:n:Room;1","@type":"Interface",
  "contents":[{"@type":"Property","name":"temperature","schema":"double","writable":true},
              {"@type":"Component","name":"sensor","schema":"dtmi:n:Sensor;1"},
              {"@type":"Relationship","name":"next","target":"dtmi:n:Room;1",
               "properties":[{"@type":"Property","name":"distance","schema":"double"}]}]})";

// A received notification: the hub-log message of an EventLog endpoint.
struct Seen {
  std::map<std::string, std::string> attributes;  // cloudEvents:* without the prefix
  json::value data;
};

class NotifierTest : public ::testing::Test {
 protected:
  NotifierTest() {
    dir_ = std::filesystem::temp_directory_path() /
           ("orrery-notify-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    auto kv = store::OpenRocksDb({.path = dir_ / "state"});
    EXPECT_TRUE(kv) << kv.error().message();
    kv_ = std::move(*kv);
    auto m = ModelStore::Open(kv_.get(), {}, [] { return int64_t{1'800'000'000'000}; });
    EXPECT_TRUE(m);
    models_ = std::move(*m);
    std::vector<std::string> details;
    auto added = models_->Add({json::parse(kSensor), json::parse(kRoom)}, &details);
    EXPECT_TRUE(added) << added.error().message();
    auto hub = eventlog::EventLog::Open(dir_ / "hub", {.partitions = 2});
    EXPECT_TRUE(hub) << hub.error().message();
    hub_ = std::move(*hub);
    OpenNotifier();
    auto g =
        TwinGraph::Open(kv_.get(), models_.get(), {}, [] { return int64_t{1'800'000'000'000}; });
    EXPECT_TRUE(g);
    graph_ = std::move(*g);
    graph_->SetObserver(notifier_.get());
  }
  ~NotifierTest() override {
    graph_.reset();
    notifier_.reset();
    hub_->Close();
    kv_->Drain();
    kv_.reset();
    std::filesystem::remove_all(dir_);
  }
  void OpenNotifier() {
    auto n = Notifier::Open(kv_.get(), {.dir = dir_ / "notify",
                                        .source = "twins.example",
                                        .hub_log = hub_.get(),
                                        .log = {.partitions = 1}});
    ASSERT_TRUE(n) << n.error().message();
    notifier_ = std::move(*n);
  }
  void Route(std::string id, std::string filter) {
    if (!notifier_->GetEndpoint("stream")) {
      auto e = EndpointFromJson("stream", json::parse(R"({"endpointType":"EventLog"})"));
      ASSERT_TRUE(e);
      ASSERT_TRUE(notifier_->PutEndpoint(*e));
    }
    auto st = notifier_->PutRoute({id, "stream", filter});
    ASSERT_TRUE(st) << st.error().message();
  }
  template <class T>
  static T Wait(const std::function<void(Done<T>)>& start) {
    std::promise<Result<T>> p;
    start([&](Result<T> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r) << r.error().message();
    if constexpr (std::is_void_v<T>) {
      return;
    } else {
      return r ? std::move(*r) : T{};
    }
  }
  void Put(std::string id, std::string body) {
    Wait<json::object>([&](Done<json::object> d) {
      graph_->PutTwin(id, json::parse(body).as_object(), "", std::move(d));
    });
  }
  // Everything on the hub log (both partitions), after the notifier routed what it holds.
  std::vector<Seen> Received() {
    notifier_->Stop();  // routes everything committed before it returns
    std::vector<Seen> out;
    for (uint32_t p = 0; p < hub_->partition_count(); ++p) {
      auto reader = hub_->OpenReader(p, eventlog::Position::Earliest());
      EXPECT_TRUE(reader);
      auto batch = (*reader)->TryRead(1000);
      EXPECT_TRUE(batch);
      for (auto& e : batch->events) {
        Seen s;
        for (auto& [k, v] : e.message.properties) {
          if (k.starts_with("cloudEvents:")) s.attributes[k.substr(12)] = v;
        }
        s.data = json::parse(e.message.body);
        out.push_back(std::move(s));
      }
    }
    return out;
  }
  static const Seen* Find(const std::vector<Seen>& v, std::string_view type,
                          std::string_view subject) {
    for (auto& s : v) {
      if (s.attributes.at("type") == type && s.attributes.at("subject") == subject) return &s;
    }
    return nullptr;
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::KvStore> kv_;
  std::unique_ptr<ModelStore> models_;
  std::unique_ptr<eventlog::EventLog> hub_;
  std::unique_ptr<Notifier> notifier_;
  std::unique_ptr<TwinGraph> graph_;
};

constexpr const char* kRoom1 =
    R"({"$metadata":{"$model":"dtmi:n:Room;1"},"temperature":20,"sensor":{"$metadata":{}}})";

TEST_F(NotifierTest, EveryGraphChangeBecomesTheCloudEventAdtSends) {
  Route("all", "true");
  Put("r1", kRoom1);
  Put("r2", kRoom1);
  Wait<std::string>([&](Done<std::string> d) {
    graph_->PatchTwin(
        "r1", json::parse(R"([{"op":"replace","path":"/temperature","value":21}])").as_array(), "",
        std::move(d));
  });
  Wait<std::string>([&](Done<std::string> d) {
    graph_->PatchComponent(
        "r1", "sensor", json::parse(R"([{"op":"add","path":"/reading","value":3.5}])").as_array(),
        "", std::move(d));
  });
  Wait<json::object>([&](Done<json::object> d) {
    graph_->PutRelationship(
        "r1", "n1",
        json::parse(R"({"$relationshipName":"next","$targetId":"r2","distance":4})").as_object(),
        "", std::move(d));
  });
  Wait<std::string>([&](Done<std::string> d) {
    graph_->PatchRelationship(
        "r1", "n1", json::parse(R"([{"op":"replace","path":"/distance","value":5}])").as_array(),
        "", std::move(d));
  });
  Wait<void>([&](Done<void> d) { graph_->DeleteRelationship("r1", "n1", "", std::move(d)); });
  // A full replace is an update whose patch is the difference.
  Put("r2", R"({"$metadata":{"$model":"dtmi:n:Room;1"},"sensor":{"$metadata":{}}})");
  Wait<void>([&](Done<void> d) { graph_->DeleteTwin("r2", "", std::move(d)); });

  auto seen = Received();
  EXPECT_EQ(seen.size(), 9u);
  auto* create = Find(seen, "Microsoft.DigitalTwins.Twin.Create", "r1");
  ASSERT_TRUE(create);
  EXPECT_EQ(create->attributes.at("source"), "twins.example");
  EXPECT_EQ(create->attributes.at("specversion"), "1.0");
  EXPECT_EQ(create->attributes.at("datacontenttype"), "application/json");
  EXPECT_EQ(create->attributes.at("traceparent").size(), 55u);
  EXPECT_EQ(create->data.at("$dtId"), "r1");
  EXPECT_TRUE(create->data.at("$etag").is_string());
  EXPECT_EQ(create->data.at("temperature"), 20);

  // Twin updates: {"modelId", "patch"}; a component's paths carry its name.
  std::vector<json::value> patches;
  for (auto& s : seen) {
    if (s.attributes.at("type") == "Microsoft.DigitalTwins.Twin.Update" &&
        s.attributes.at("subject") == "r1") {
      EXPECT_EQ(s.data.at("modelId"), "dtmi:n:Room;1");
      patches.push_back(s.data.at("patch"));
    }
  }
  ASSERT_EQ(patches.size(), 2u);
  EXPECT_EQ(patches[0], json::parse(R"([{"op":"replace","path":"/temperature","value":21}])"));
  EXPECT_EQ(patches[1], json::parse(R"([{"op":"add","path":"/sensor/reading","value":3.5}])"));
  auto* replaced = Find(seen, "Microsoft.DigitalTwins.Twin.Update", "r2");
  ASSERT_TRUE(replaced);
  EXPECT_EQ(replaced->data.at("patch"), json::parse(R"([{"op":"remove","path":"/temperature"}])"));

  auto* rel = Find(seen, "Microsoft.DigitalTwins.Relationship.Create", "r1/relationships/n1");
  ASSERT_TRUE(rel);
  EXPECT_EQ(rel->data.at("$relationshipName"), "next");
  EXPECT_EQ(rel->data.at("$targetId"), "r2");
  EXPECT_EQ(rel->data.at("distance"), 4);
  auto* rel_update =
      Find(seen, "Microsoft.DigitalTwins.Relationship.Update", "r1/relationships/n1");
  ASSERT_TRUE(rel_update);
  EXPECT_EQ(rel_update->data.at("modelId"), "dtmi:n:Room;1");
  EXPECT_EQ(rel_update->data.at("patch"),
            json::parse(R"([{"op":"replace","path":"/distance","value":5}])"));
  auto* rel_delete =
      Find(seen, "Microsoft.DigitalTwins.Relationship.Delete", "r1/relationships/n1");
  ASSERT_TRUE(rel_delete);
  EXPECT_EQ(rel_delete->data.at("distance"), 5);  // as it was when deleted
  auto* deleted = Find(seen, "Microsoft.DigitalTwins.Twin.Delete", "r2");
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->data.at("$dtId"), "r2");
}

TEST_F(NotifierTest, FiltersSelectByAttributesAndBody) {
  Route("hot", "type = 'microsoft.iot.telemetry' AND $body.temperature > 25");
  Route("creates", "type = 'Microsoft.DigitalTwins.Twin.Create' AND STARTS_WITH(subject, 'room')");
  Route("off", "false");
  Put("room1", kRoom1);
  Put("hall", kRoom1);
  auto send = [&](std::string body, std::string id, std::string component = "") {
    std::promise<Status> p;
    notifier_->PublishTelemetry("room1", component, "dtmi:n:Room;1", id, "2026-12-01T10:00:00Z",
                                body, [&](Status st) { p.set_value(st); });
    return p.get_future().get();
  };
  EXPECT_TRUE(send(R"({"temperature":20})", "m1"));
  EXPECT_TRUE(send(R"({"temperature":30})", "m2"));
  EXPECT_TRUE(send(R"({"temperature":31})", "m3", "sensor"));
  auto bad = send("not json", "m4");
  EXPECT_FALSE(bad);
  auto seen = Received();
  std::set<std::string> ids;
  for (auto& s : seen)
    ids.insert(s.attributes.at("id"));
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_TRUE(ids.contains("m2"));
  EXPECT_TRUE(ids.contains("m3"));
  EXPECT_FALSE(ids.contains("m1"));
  const Seen* m2 = nullptr;
  const Seen* m3 = nullptr;
  for (auto& s : seen) {
    if (s.attributes.at("id") == "m2") m2 = &s;
    if (s.attributes.at("id") == "m3") m3 = &s;
  }
  ASSERT_TRUE(m2 && m3);
  EXPECT_EQ(m2->attributes.at("source"), "twins.example/digitaltwins/room1");
  EXPECT_EQ(m2->attributes.at("dataschema"), "dtmi:n:Room;1");
  EXPECT_EQ(m2->attributes.at("telemetrysourcetime"), "2026-12-01T10:00:00Z");
  EXPECT_FALSE(m2->attributes.contains("subject"));
  EXPECT_EQ(m2->data, json::parse(R"({"temperature":30})"));
  EXPECT_EQ(m3->attributes.at("subject"), "sensor");
  // The room's creation matched STARTS_WITH(subject, 'room'); the hall's did not.
  EXPECT_TRUE(Find(seen, "Microsoft.DigitalTwins.Twin.Create", "room1"));
  EXPECT_FALSE(Find(seen, "Microsoft.DigitalTwins.Twin.Create", "hall"));
}

TEST_F(NotifierTest, RoutesTakeEventsRaisedAfterThem) {
  Put("before", kRoom1);  // no route yet: the event goes nowhere (no outbox record either)
  Route("all", "true");
  Put("after", kRoom1);
  auto seen = Received();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].attributes.at("subject"), "after");
  size_t outbox = 0;
  ASSERT_TRUE(kv_->Scan("dt.outbox", "", [&](std::string_view, std::string_view) {
    ++outbox;
    return true;
  }));
  EXPECT_EQ(outbox, 0u);
}

TEST_F(NotifierTest, TheOutboxRoutesWhatACrashLeftBehind) {
  Route("all", "true");
  // A change whose batch became durable but whose process died before routing it: the
  // outbox record is in the store, nobody was told it committed.
  store::WriteBatch batch;
  notifier_->OnChange({.kind = GraphChange::Kind::kTwinCreate,
                       .twin_id = "ghost",
                       .model_id = "dtmi:n:Room;1",
                       .data = json::object{{"$dtId", "ghost"}},
                       .time_ms = 1'800'000'000'000},
                      batch);
  ASSERT_TRUE(kv_->Write(std::move(batch), store::Durability::kDurable));
  graph_->SetObserver(nullptr);
  notifier_.reset();
  OpenNotifier();
  auto seen = Received();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].attributes.at("subject"), "ghost");
  EXPECT_EQ(seen[0].attributes.at("time"), "2027-01-15T08:00:00.000Z");
  // Routed once: the outbox is empty now, a restart routes nothing again.
  notifier_.reset();
  OpenNotifier();
  EXPECT_EQ(Received().size(), 1u);
}

TEST_F(NotifierTest, RoutesAndEndpointsAreCheckedStoredAndLimited) {
  auto expect = [](Status st, Errc code, std::string_view needle) {
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code(), make_error_code(code)) << st.error().message();
    EXPECT_NE(st.error().message().find(needle), std::string::npos) << st.error().message();
  };
  expect(notifier_->PutRoute({"r", "nowhere", "true"}), Errc::kEventRouteEndpointInvalid,
         "no endpoint 'nowhere'");
  Route("r0", "true");
  expect(notifier_->PutRoute({"r", "stream", "type = "}), Errc::kEventRouteFilterInvalid,
         "line 1, column");
  expect(notifier_->PutRoute({"r", "stream", "  "}), Errc::kEventRouteFilterInvalid, "\"true\"");
  expect(notifier_->PutRoute({"bad id!", "stream", "true"}), Errc::kEventRouteIdInvalid, "bad id!");
  for (int i = 1; i < 6; ++i)
    Route("r" + std::to_string(i), "true");
  expect(notifier_->PutRoute({"r6", "stream", "true"}), Errc::kLimitExceeded, "at most 6");
  EXPECT_TRUE(notifier_->PutRoute({"r5", "stream", "false"}));  // replacing is not adding
  expect(notifier_->DeleteEndpoint("stream"), Errc::kEndpointInUse, "delete it first");
  expect(notifier_->DeleteRoute("r9"), Errc::kEventRouteNotFound, "r9");

  auto http = EndpointFromJson(
      "hook", json::parse(R"({"endpointType":"Webhook","url":"http://example.com/x"})"));
  ASSERT_FALSE(http);
  EXPECT_NE(http.error().message().find("https://"), std::string::npos);
  auto kind = EndpointFromJson("hook", json::parse(R"({"endpointType":"EventGrid"})"));
  ASSERT_FALSE(kind);
  EXPECT_NE(kind.error().message().find("EventGrid"), std::string::npos);
  auto hook = EndpointFromJson("hook", json::parse(R"({"endpointType":"Webhook",
      "url":"https://127.0.0.1:1/hook","secret":"s3cret","maxAttempts":3})"));
  ASSERT_TRUE(hook) << hook.error().message();
  ASSERT_TRUE(notifier_->PutEndpoint(*hook));
  auto shown = EndpointToJson(*notifier_->GetEndpoint("hook"));
  EXPECT_EQ(shown.at("secret"), "********");
  EXPECT_EQ(shown.at("maxAttempts"), 3);

  // Everything is stored.
  graph_->SetObserver(nullptr);
  notifier_.reset();
  OpenNotifier();
  EXPECT_EQ(notifier_->Routes().size(), 6u);
  EXPECT_EQ(notifier_->GetRoute("r5")->filter, "false");
  EXPECT_EQ(notifier_->GetEndpoint("hook")->webhook.secret, "s3cret");
  EXPECT_TRUE(notifier_->DeleteRoute("r0"));
  EXPECT_EQ(notifier_->Routes().size(), 5u);
}

}  // namespace
}  // namespace orrery::twins
