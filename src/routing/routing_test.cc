#include <unistd.h>

#include <atomic>
#include <climits>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "base/files.h"
#include "eventlog/event_log.h"
#include "net/http_server.h"
#include "net/io_pool.h"
#include "net/test_certs.h"
#include "routing/annotation.h"
#include "routing/config.h"
#include "routing/endpoints.h"
#include "routing/errc.h"
#include "routing/router.h"
#include "routing/service.h"

namespace orrery::routing {
namespace {
namespace json = boost::json;

eventlog::Message Telemetry(std::string device, std::string body,
                            std::vector<std::pair<std::string, std::string>> props = {},
                            bool json_body = true) {
  eventlog::Message m;
  m.body = std::move(body);
  m.properties = std::move(props);
  m.system.connection_device_id = std::move(device);
  m.system.message_source = "Telemetry";
  if (json_body) {
    m.system.content_type = "application/json";
    m.system.content_encoding = "utf-8";
  }
  return m;
}

Result<RoutingConfig> Config(std::string_view text, ConfigLimits limits = {}) {
  return ConfigFromJson(json::parse(text), limits);
}

TEST(AnnotationTest, RoundTripsAndAnswersMembership) {
  Annotation a;
  a.endpoints = {"archive", "events"};
  a.enrichments = {{"archive", {{"site", "b12"}, {"hub", "h"}}}};
  std::string text = EncodeAnnotation(a);
  EXPECT_TRUE(RoutedTo(text, "archive"));
  EXPECT_TRUE(RoutedTo(text, "events"));
  EXPECT_FALSE(RoutedTo(text, "arch"));
  EXPECT_FALSE(RoutedTo(text, "site"));  // an enrichment key is not an endpoint
  auto back = DecodeAnnotation(text);
  EXPECT_EQ(back.endpoints, a.endpoints);
  ASSERT_EQ(back.enrichments.size(), 1u);
  EXPECT_EQ(EnrichmentsFor(text, "archive").size(), 2u);
  EXPECT_TRUE(EnrichmentsFor(text, "events").empty());
  // No annotation: the built-in endpoint only (routing not configured).
  EXPECT_TRUE(RoutedTo("", "events"));
  EXPECT_FALSE(RoutedTo("", "archive"));
  EXPECT_TRUE(RoutedTo(EncodeAnnotation({}), "x") == false);
}

TEST(ConfigTest, ValidatesAndRoundTrips) {
  auto c = Config(R"({
    "endpoints":{"storageContainers":[{"name":"archive","encoding":"json",
                                       "batchFrequencyInSeconds":60}],
                 "webhooks":[{"name":"alerts","url":"https://localhost/hook","secret":"s3"}]},
    "routes":[{"name":"hot","source":"DeviceMessages","condition":"$body.t > 30",
               "endpointNames":["alerts","events"]},
              {"name":"all","condition":"true","endpointNames":["archive"],"isEnabled":false}],
    "fallbackRoute":{"isEnabled":false},
    "enrichments":[{"key":"site","value":"$twin.tags.site","endpointNames":["archive"]}]})");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->routes.size(), 2u);
  EXPECT_FALSE(c->routes[1].enabled);
  EXPECT_FALSE(c->fallback_enabled);
  EXPECT_EQ(c->storage[0].encoding, Encoding::kJson);
  auto shown = ConfigToJson(*c, false);
  EXPECT_EQ(shown["endpoints"].as_object()["webhooks"].as_array()[0].as_object()["secret"],
            "********");
  auto again = ConfigFromJson(ConfigToJson(*c, true), {});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->webhooks[0].secret, "s3");

  auto why = [](std::string_view text) {
    auto r = Config(text);
    return r ? std::string("accepted") : r.error().message();
  };
  EXPECT_NE(why(R"({"routes":[{"name":"r","endpointNames":["nowhere"]}]})").find("does not exist"),
            std::string::npos);
  EXPECT_NE(why(R"({"routes":[{"name":"r","source":"Telepathy","endpointNames":["events"]}]})")
                .find("not one of"),
            std::string::npos);
  EXPECT_NE(why(R"({"routes":[{"name":"r","endpointNames":["events"]},)"
                R"({"name":"r","endpointNames":["events"]}]})")
                .find("unique"),
            std::string::npos);
  EXPECT_NE(why(R"({"endpoints":{"storageContainers":[{"name":"events"}]}})").find("built-in"),
            std::string::npos);
  EXPECT_NE(why(R"({"endpoints":{"storageContainers":[{"name":"a","batchFrequencyInSeconds":5}]}})")
                .find("60..720"),
            std::string::npos);
  EXPECT_NE(
      why(R"({"endpoints":{"storageContainers":[{"name":"a","path":"../etc"}]}})").find("relative"),
      std::string::npos);
  EXPECT_NE(why(R"({"endpoints":{"webhooks":[{"name":"w","url":"http://x"}]}})").find("https"),
            std::string::npos);
  EXPECT_NE(why(R"({"enrichments":[{"key":"k","value":"$nope","endpointNames":["events"]}]})")
                .find("$iothubname"),
            std::string::npos);
  EXPECT_NE(why(R"({"endpoints":{"storageContainers":[{"name":"bad name"}]}})").find("letters"),
            std::string::npos);
  // Tests may lower the batch frequency bound.
  EXPECT_TRUE(
      Config(R"({"endpoints":{"storageContainers":[{"name":"a","batchFrequencyInSeconds":1}]}})",
             {.min_batch_frequency_s = 1}));
}

class RouterTest : public ::testing::Test {
 protected:
  RouterTest()
      : router_({.hub_name = "myhub", .twin = [this](std::string_view key) {
                   return key == "dev1" ? twin_ : nullptr;
                 }}) {
    twin_ = std::make_shared<const json::object>(
        json::parse(R"({"deviceId":"dev1","tags":{"site":"b12","floor":3},)"
                    R"("properties":{"desired":{},"reported":{"fw":"2.0"}}})")
            .as_object());
  }
  Annotation Route(eventlog::Message m,
                   hub::MessageSource source = hub::MessageSource::kDeviceMessages) {
    router_.Annotate(m, source);
    return DecodeAnnotation(m.system.route_annotation);
  }
  std::shared_ptr<const json::object> twin_;
  Router router_;
};

TEST_F(RouterTest, WithoutConfigEverythingGoesToTheBuiltInEndpoint) {
  auto m = Telemetry("dev1", R"({"t":1})");
  router_.Annotate(m, hub::MessageSource::kDeviceMessages);
  EXPECT_TRUE(m.system.route_annotation.empty());
  EXPECT_FALSE(router_.Wants(hub::MessageSource::kTwinChangeEvents));
}

TEST_F(RouterTest, ConditionsFallbackDedupeAndEnrichments) {
  auto c = Config(R"({
    "endpoints":{"storageContainers":[{"name":"archive"},{"name":"cold"}]},
    "routes":[{"name":"hot","condition":"$body.t > 30 AND $contentType = 'application/json'",
               "endpointNames":["archive","events"]},
              {"name":"tagged","condition":"$twin.tags.site = 'b12' AND kind = 'x'",
               "endpointNames":["archive"]},
              {"name":"twins","source":"TwinChangeEvents","condition":"true",
               "endpointNames":["cold"]}],
    "enrichments":[{"key":"site","value":"$twin.tags.site","endpointNames":["archive"]},
                   {"key":"hub","value":"$iothubname","endpointNames":["archive","events"]},
                   {"key":"fixed","value":"v1","endpointNames":["cold"]},
                   {"key":"gone","value":"$twin.tags.nothing","endpointNames":["archive"]}]})");
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_TRUE(router_.SetConfig(*c));
  EXPECT_TRUE(router_.Wants(hub::MessageSource::kTwinChangeEvents));
  EXPECT_FALSE(router_.Wants(hub::MessageSource::kDeviceLifecycleEvents));

  // Both routes match: archive once, plus events.
  auto both = Route(Telemetry("dev1", R"({"t":31})", {{"kind", "x"}}));
  EXPECT_EQ(both.endpoints, (std::vector<std::string>{"archive", "events"}));
  auto archive = EnrichmentsFor(EncodeAnnotation(both), "archive");
  EXPECT_EQ(archive,
            (std::vector<std::pair<std::string, std::string>>{{"site", "b12"}, {"hub", "myhub"}}));
  // A body that is not JSON (no content type) never matches $body conditions.
  auto text = Route(Telemetry("dev1", R"({"t":31})", {}, /*json_body=*/false));
  EXPECT_EQ(text.endpoints, (std::vector<std::string>{"events"}));  // fallback
  // No route matches: the fallback route takes it to events.
  auto cold = Route(Telemetry("dev2", R"({"t":1})"));
  EXPECT_EQ(cold.endpoints, (std::vector<std::string>{"events"}));
  // The twin of another device is not b12's.
  auto other = Route(Telemetry("dev2", R"({"t":1})", {{"kind", "x"}}));
  EXPECT_EQ(other.endpoints, (std::vector<std::string>{"events"}));
  // System events go only where a route of their source sends them (no fallback).
  auto event = Route(Telemetry("dev1", "{}"), hub::MessageSource::kTwinChangeEvents);
  EXPECT_EQ(event.endpoints, (std::vector<std::string>{"cold"}));
  auto lifecycle = Route(Telemetry("dev1", "{}"), hub::MessageSource::kDeviceLifecycleEvents);
  EXPECT_TRUE(lifecycle.endpoints.empty());

  // Without the fallback, unmatched device messages go nowhere.
  auto nofb = *c;
  nofb.fallback_enabled = false;
  ASSERT_TRUE(router_.SetConfig(nofb));
  EXPECT_TRUE(Route(Telemetry("dev2", R"({"t":1})")).endpoints.empty());

  // Test APIs.
  auto sample = Telemetry("dev1", R"({"t":40})");
  EXPECT_EQ(*router_.TestCondition("$body.t > 30", sample, nullptr), "true");
  EXPECT_EQ(*router_.TestCondition("$body.missing > 30", sample, nullptr), "undefined");
  EXPECT_EQ(*router_.TestCondition("$twin.tags.site = 'b12'", sample, twin_.get()), "true");
  EXPECT_FALSE(router_.TestCondition("$body.t >", sample, nullptr));
  auto matched = router_.TestAll(sample, hub::MessageSource::kDeviceMessages, nullptr);
  ASSERT_EQ(matched.size(), 1u);
  EXPECT_EQ(matched[0].name, "hot");
  // A condition that does not compile is refused, naming the route, and changes nothing.
  auto bad = *c;
  bad.routes[0].condition = "$body.t >";
  auto st = router_.SetConfig(bad);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("route 'hot'"), std::string::npos);
  EXPECT_EQ(Route(Telemetry("dev2", R"({"t":1})")).endpoints.size(), 0u);  // still nofb
}

// ---------------------------------------------------------------- endpoints on a real log

class EndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("orrery-routing-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    OpenLog();
  }
  void TearDown() override {
    log_.reset();
    std::filesystem::remove_all(dir_);
  }
  void OpenLog() {
    auto log = eventlog::EventLog::Open(dir_ / "eventlog", {.partitions = 2});
    ASSERT_TRUE(log) << log.error().message();
    log_ = std::move(*log);
  }
  // Appends annotated messages and waits until they are durable.
  void Append(std::vector<eventlog::Message> messages) {
    std::atomic<size_t> left{messages.size()};
    std::promise<void> done;
    for (auto& m : messages) {
      ASSERT_TRUE(log_->Append(m, [&](const Result<eventlog::Appended>&) {
        if (--left == 0) done.set_value();
      }));
    }
    done.get_future().wait();
  }
  eventlog::Message Routed(std::string device, std::string body, std::vector<std::string> to) {
    auto m = Telemetry(std::move(device), std::move(body));
    Annotation a;
    a.endpoints = std::move(to);
    std::sort(a.endpoints.begin(), a.endpoints.end());
    m.system.route_annotation = EncodeAnnotation(a);
    return m;
  }
  // Every JSON line of every finished file under the archive root.
  std::vector<json::object> ArchivedLines() {
    std::vector<json::object> out;
    if (!std::filesystem::exists(dir_ / "archive")) return out;
    for (auto& f : std::filesystem::recursive_directory_iterator(dir_ / "archive")) {
      if (!f.is_regular_file() || f.path().extension() != ".json") continue;
      std::ifstream in(f.path());
      std::string line;
      while (std::getline(in, line)) {
        if (!line.empty()) out.push_back(json::parse(line).as_object());
      }
    }
    return out;
  }
  EndpointOptions Options() {
    return {.archive_root = dir_ / "archive",
            .dead_letter_root = dir_ / "dead-letter",
            .hub_name = "myhub"};
  }

  std::filesystem::path dir_;
  std::unique_ptr<eventlog::EventLog> log_;
};

// Hands every event to the test at once (nothing pending).
class CollectingSink final : public Sink {
 public:
  void Add(const eventlog::Event& e, StopToken&) override {
    std::lock_guard lock(mu_);
    bodies_.push_back(e.message.body);
    cv_.notify_all();
  }
  void Flush(int64_t, bool, StopToken&) override {}
  std::optional<uint64_t> PendingFrom(uint32_t) const override { return std::nullopt; }
  int64_t NextDeadlineMs() const override { return INT64_MAX; }
  EndpointHealth Health() const override { return {}; }
  bool WaitFor(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return bodies_.size() >= n; });
  }
  std::vector<std::string> bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> bodies_;
};

TEST_F(EndpointTest, WrittenVisibilityDeliversBeforeTheSyncAndCheckpointsOnlyDurableRecords) {
  auto options = Options();
  options.visibility = eventlog::Visibility::kWritten;
  EndpointManager manager(log_.get(), options);
  auto sink = std::make_unique<CollectingSink>();
  CollectingSink* seen = sink.get();
  ASSERT_TRUE(manager.AttachConsumer("fast", "fast", std::move(sink)));
  // Park the log's sync thread in the first record's callback: nothing after it is durable.
  // The gate opens when the test ends, however it ends (the log's Close waits for it).
  struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool entered = false, open = false;
  };
  auto gate = std::make_shared<Gate>();
  struct Opener {
    std::shared_ptr<Gate> gate;
    ~Opener() {
      {
        std::lock_guard lock(gate->mu);
        gate->open = true;
      }
      gate->cv.notify_all();
    }
  } opener{gate};
  ASSERT_TRUE(log_->AppendToPartition(0, Telemetry("d", "first"), [gate](const auto&) {
    std::unique_lock lock(gate->mu);
    gate->entered = true;
    gate->cv.notify_all();
    gate->cv.wait(lock, [&] { return gate->open; });
  }));
  {
    std::unique_lock lock(gate->mu);
    gate->cv.wait(lock, [&] { return gate->entered; });
  }
  ASSERT_TRUE(log_->AppendToPartition(0, Telemetry("d", "second"), nullptr));
  ASSERT_TRUE(log_->AppendToPartition(0, Telemetry("d", "third"), nullptr));
  ASSERT_TRUE(seen->WaitFor(3));
  EXPECT_EQ(seen->bodies(), (std::vector<std::string>{"first", "second", "third"}));
  manager.Stop();  // checkpoints what it delivered — as far as it is durable
  EXPECT_EQ(log_->consumer_groups().GetCheckpoint("fast", 0).value(), std::optional<uint64_t>(1));
}

TEST_F(EndpointTest, StorageEndpointArchivesWhatIsRoutedToItAndResumesAfterRestart) {
  auto config = Config(R"({"endpoints":{"storageContainers":[{"name":"archive","encoding":"json",
                            "batchFrequencyInSeconds":1,"fileNameFormat":
                            "{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}"}]}})",
                       {.min_batch_frequency_s = 1});
  ASSERT_TRUE(config) << config.error().message();
  // Messages before the endpoint existed are not its own.
  Append({Routed("d0", R"({"n":-1})", {"archive"})});
  {
    EndpointManager manager(log_.get(), Options());
    ASSERT_TRUE(manager.Apply(*config));
    Append({Routed("d1", R"({"n":1})", {"archive", "events"}),
            Routed("d2", R"({"n":2})", {"events"}), Routed("d3", R"({"n":3})", {"archive"})});
    // Wait for the batch (1 s) to be published.
    for (int i = 0; i < 300 && ArchivedLines().size() < 2; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling the file system
  }
  auto lines = ArchivedLines();
  std::multiset<std::string> devices;
  for (auto& l : lines)
    devices.insert(
        std::string(l["SystemProperties"].as_object()["connectionDeviceId"].as_string()));
  EXPECT_EQ(devices, (std::multiset<std::string>{"d1", "d3"}));
  // A restart (new manager, same groups) continues after what was archived.
  {
    EndpointManager manager(log_.get(), Options());
    ASSERT_TRUE(manager.Apply(*config));
    Append({Routed("d4", R"({"n":4})", {"archive"})});
    for (int i = 0; i < 300 && ArchivedLines().size() < 3; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(ArchivedLines().size(), 3u);
  // Removing the endpoint deletes its consumer group.
  {
    EndpointManager manager(log_.get(), Options());
    ASSERT_TRUE(manager.Apply(RoutingConfig{}));
    EXPECT_FALSE(log_->consumer_groups().Exists("route.archive"));
  }
}

class WebhookTest : public EndpointTest {
 protected:
  void SetUp() override {
    EndpointTest::SetUp();
    auto router = std::make_shared<net::Router>();
    router->Add("POST", "/hook", [this](net::HttpRequest& req, net::Responder r) {
      std::lock_guard lock(mu_);
      ++attempts_;
      if (attempts_ <= fail_first_) {
        r.Send(net::HttpResponse::Text(503, "not yet"));
        return;
      }
      bodies_.push_back(req.body);
      signatures_.push_back(std::string(req.headers.Get("X-Orrery-Signature").value_or("")));
      r.Send(net::HttpResponse::Empty(204));
    });
    auto tls = net::TlsServerContext::Create({certs_.paths.server_cert, certs_.paths.server_key});
    ASSERT_TRUE(tls);
    auto server = net::HttpServer::Start(
        pool_, {.name = "hook", .addresses = {"127.0.0.1"}, .tls = *tls}, router);
    ASSERT_TRUE(server);
    server_ = std::move(*server);
    pool_.Start();
  }
  void TearDown() override {
    server_->Stop();
    pool_.Stop();
    pool_.Join();
    EndpointTest::TearDown();
  }
  Result<RoutingConfig> Hook(int attempts) {
    return Config(fmt::format(
        R"({{"endpoints":{{"webhooks":[{{"name":"alerts","url":"https://localhost:{}/hook",)"
        R"("secret":"k3y","maxBatchSize":2,"maxAttempts":{}}}]}}}})",
        server_->port(), attempts));
  }
  EndpointOptions HookOptions() {
    auto o = Options();
    o.webhook_tls.ca_file = certs_.paths.ca_cert;
    return o;
  }
  size_t Delivered() {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (auto& b : bodies_) {
      json::value batch = json::parse(b);
      n += batch.as_array().size();
    }
    return n;
  }

  net::testing::TestCerts certs_{"routing-hook"};
  net::IoPool pool_{1};
  std::unique_ptr<net::HttpServer> server_;
  std::mutex mu_;
  int attempts_ = 0;
  int fail_first_ = 0;
  std::vector<std::string> bodies_, signatures_;
};

TEST_F(WebhookTest, RetriesUntilTheReceiverRecoversAndSignsEveryBatch) {
  fail_first_ = 2;  // the receiver fails twice, then recovers
  auto config = Hook(10);
  ASSERT_TRUE(config) << config.error().message();
  EndpointManager manager(log_.get(), HookOptions());
  ASSERT_TRUE(manager.Apply(*config));
  Append({Routed("d1", R"({"n":1})", {"alerts"}), Routed("d1", R"({"n":2})", {"alerts"}),
          Routed("d1", R"({"n":3})", {"alerts"}), Routed("d1", R"({"n":4})", {"events"})});
  for (int i = 0; i < 500 && Delivered() < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // waiting for the receiver
  EXPECT_EQ(Delivered(), 3u);
  {
    std::lock_guard lock(mu_);
    ASSERT_FALSE(bodies_.empty());
    for (size_t i = 0; i < bodies_.size(); ++i) {
      EXPECT_EQ(signatures_[i], "sha256=" + WebhookSignature("k3y", bodies_[i]));
      json::value batch = json::parse(bodies_[i]);
      for (auto& rec : batch.as_array()) {
        EXPECT_TRUE(rec.as_object().contains("EnqueuedTimeUtc"));
      }
    }
  }
  // The receiver counts a delivery before its answer reaches the endpoint, which then notes
  // its health: wait for that too.
  auto healthy = [&] {
    auto h = manager.Health();
    return h.size() == 1 && h[0].status == HealthStatus::kHealthy;
  };
  for (int i = 0; i < 500 && !healthy(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // waiting for the endpoint
  auto health = manager.Health();
  ASSERT_EQ(health.size(), 1u);
  EXPECT_EQ(health[0].status, HealthStatus::kHealthy);
}

TEST_F(WebhookTest, DeadLettersAfterMaxAttempts) {
  fail_first_ = 1000;
  auto config = Hook(1);
  ASSERT_TRUE(config);
  EndpointManager manager(log_.get(), HookOptions());
  ASSERT_TRUE(manager.Apply(*config));
  Append({Routed("d1", R"({"n":1})", {"alerts"})});
  // Health is the last thing the endpoint updates after it has written the dead-letter file
  // (atomically), so waiting on it means the file is complete too.
  auto dead = [&] {
    auto h = manager.Health();
    return h.size() == 1 && h[0].status == HealthStatus::kDead && h[0].dead_lettered == 1;
  };
  for (int i = 0; i < 500 && !dead(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // waiting for the endpoint
  auto health = manager.Health();
  ASSERT_EQ(health.size(), 1u);
  EXPECT_EQ(health[0].status, HealthStatus::kDead);
  EXPECT_EQ(health[0].dead_lettered, 1u);
  auto dir = dir_ / "dead-letter" / "alerts";
  ASSERT_TRUE(std::filesystem::exists(dir));
  std::vector<std::filesystem::path> found(std::filesystem::directory_iterator(dir), {});
  ASSERT_EQ(found.size(), 1u);
  auto text = files::ReadFile(found[0]);
  ASSERT_TRUE(text);
  EXPECT_NE(text->find("\"n\":1"), std::string::npos) << *text;
}

}  // namespace
}  // namespace orrery::routing
