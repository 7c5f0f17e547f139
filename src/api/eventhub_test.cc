#include "api/eventhub.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>

#include "base/strings.h"
#include "base/time.h"
#include "eventlog/event_log.h"
#include "eventlog/test_util.h"
#include "hub/policies.h"
#include "hub/sas.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/io_pool.h"
#include "net/websocket_client.h"

namespace orrery::api {
namespace {
namespace json = boost::json;
using eventlog::testutil::AppendSync;
using eventlog::testutil::TempDir;
using eventlog::testutil::TestMessage;
using namespace std::chrono_literals;

class EventHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto log = eventlog::EventLog::Open(dir_.path() / "eventlog", {.partitions = 4});
    ASSERT_TRUE(log) << log.error().message();
    log_ = std::move(*log);
    auto policies = hub::PolicyStore::Open(dir_.path());
    ASSERT_TRUE(policies);
    policies_ = std::move(*policies);
    auto router = std::make_shared<net::Router>();
    RegisterEventHubRoutes(*router, {.log = log_.get(),
                                     .policies = policies_.get(),
                                     .metrics = &registry_,
                                     .max_streams = 3,
                                     .blocking = blocking_.get_executor()});
    auto server = net::HttpServer::Start(pool_, {.addresses = {"127.0.0.1"}}, router);
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::move(*server);
    pool_.Start();
  }
  void TearDown() override {
    server_->Stop();
    pool_.Stop();
    pool_.Join();
    blocking_.join();
    log_->Close();
  }

  std::string Token(std::string_view policy = "service") {
    auto p = policies_->Find(policy);
    return *hub::MakeSasToken("localhost", p->primary_key, timeutil::NowMs() / 1000 + 3600, policy);
  }
  net::HttpResponse Call(std::string method, std::string path, std::string body = {},
                         std::optional<std::string> token = std::nullopt) {
    net::Headers h;
    h.Add("Authorization", token.value_or(Token()));
    auto r = net::Fetch(method, Url("http", path), h, std::move(body), {});
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : net::HttpResponse{};
  }
  std::string Url(std::string scheme, std::string path) {
    return fmt::format("{}://127.0.0.1:{}{}", scheme, server_->port(), path);
  }
  Result<std::unique_ptr<net::WebSocketClient>> Stream(std::string query,
                                                       std::optional<std::string> token = {}) {
    net::WebSocketClientOptions o;
    o.headers.Add("Authorization", token.value_or(Token()));
    return net::WebSocketClient::Connect(Url("ws", "/eventhub/events?" + query), o);
  }
  // The next message of type "event" (or any type when `type` is empty), as JSON.
  json::object Next(net::WebSocketClient& c, std::string_view type = "event") {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (true) {
      auto m = c.Read(deadline);
      EXPECT_TRUE(m) << m.error().message();
      if (!m || !*m) {
        ADD_FAILURE() << "no message within 10 s";
        return {};
      }
      auto v = json::parse(**m).as_object();
      if (type.empty() || v.at("type").as_string() == type) return v;
    }
  }
  bool Silent(net::WebSocketClient& c, std::chrono::milliseconds for_how_long) {
    auto m = c.Read(std::chrono::steady_clock::now() + for_how_long);
    return m && !*m;
  }
  void Append(const std::string& device, const std::string& body) {
    auto r = AppendSync(*log_, TestMessage(device, body));
    ASSERT_TRUE(r) << r.error().message();
  }

  TempDir dir_{"eventhub"};
  metrics::Registry registry_;
  net::IoPool pool_{2};
  boost::asio::thread_pool blocking_{1};
  std::unique_ptr<eventlog::EventLog> log_;
  std::unique_ptr<hub::PolicyStore> policies_;
  std::unique_ptr<net::HttpServer> server_;
};

TEST_F(EventHubTest, RestNeedsAServiceConnectToken) {
  auto none = net::Fetch("GET", Url("http", "/eventhub"), {}, "", {});
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_NE(none->body.find("IotHubUnauthorizedAccess"), std::string::npos);
  auto weak = Call("GET", "/eventhub", "", Token("registryRead"));
  EXPECT_EQ(weak.status, 403);
  EXPECT_NE(weak.body.find("lacks the ServiceConnect permission"), std::string::npos) << weak.body;
  Append("dev-a", "x");
  auto ok = Call("GET", "/eventhub");
  ASSERT_EQ(ok.status, 200) << ok.body;
  auto v = json::parse(ok.body).as_object();
  EXPECT_EQ(v.at("partitionCount").as_int64(), 4);
  EXPECT_EQ(v.at("consumerGroups").as_array().size(), 1u);
  uint32_t p = log_->PartitionFor("dev-a");
  auto part = v.at("partitions").as_array().at(p).as_object();
  EXPECT_FALSE(part.at("isEmpty").as_bool());
  EXPECT_EQ(part.at("lastEnqueuedSequenceNumber").as_int64(), 0);
}

TEST_F(EventHubTest, ConsumerGroupsAndCheckpointsOverRest) {
  EXPECT_EQ(Call("PUT", "/eventhub/consumergroups/analytics").status, 201);
  EXPECT_EQ(Call("PUT", "/eventhub/consumergroups/analytics").status, 409);
  EXPECT_EQ(Call("PUT", "/eventhub/consumergroups/bad%20name").status, 400);
  auto list = Call("GET", "/eventhub/consumergroups");
  EXPECT_NE(list.body.find("\"analytics\""), std::string::npos) << list.body;
  auto put = Call("PUT", "/eventhub/consumergroups/analytics/partitions/2/checkpoint",
                  R"({"sequenceNumber": 17})");
  EXPECT_EQ(put.status, 200) << put.body;
  auto get = Call("GET", "/eventhub/consumergroups/analytics/partitions/2/checkpoint");
  EXPECT_EQ(json::parse(get.body).at("sequenceNumber").as_int64(), 17) << get.body;
  EXPECT_EQ(Call("PUT", "/eventhub/consumergroups/analytics/partitions/9/checkpoint",
                 R"({"sequenceNumber": 1})")
                .status,
            400);
  EXPECT_EQ(Call("PUT", "/eventhub/consumergroups/analytics/partitions/1/checkpoint", "{}").status,
            400);
  EXPECT_EQ(Call("DELETE", "/eventhub/consumergroups/analytics").status, 204);
  EXPECT_EQ(Call("DELETE", "/eventhub/consumergroups/analytics").status, 404);
  EXPECT_EQ(Call("DELETE", "/eventhub/consumergroups/$Default").status, 400);
}

TEST_F(EventHubTest, StreamSendsHistoryThenWakesOnAppendInOrder) {
  Append("dev-a", R"({"t":1})");
  Append("dev-a", std::string("\xff\x00\x01", 3));  // not UTF-8: base64
  uint32_t p = log_->PartitionFor("dev-a");
  auto c = Stream(fmt::format("partition={}&from=earliest", p));
  ASSERT_TRUE(c) << c.error().message();
  auto first = Next(**c);
  EXPECT_EQ(first.at("sequenceNumber").as_int64(), 0);
  EXPECT_EQ(first.at("body").as_string(), R"({"t":1})");
  EXPECT_EQ(first.at("bodyEncoding").as_string(), "utf-8");
  EXPECT_EQ(first.at("properties").at("k").as_string(), "v");
  auto sys = first.at("systemProperties").as_object();
  EXPECT_EQ(sys.at("iothub-connection-device-id").as_string(), "dev-a");
  EXPECT_EQ(sys.at("content-type").as_string(), "application/json");
  EXPECT_TRUE(timeutil::ParseUtcMs(std::string(sys.at("iothub-enqueuedtime").as_string())));
  auto second = Next(**c);
  EXPECT_EQ(second.at("bodyEncoding").as_string(), "base64");
  EXPECT_EQ(second.at("body").as_string(), "/wAB");
  EXPECT_TRUE(Silent(**c, 200ms));
  // Live: appended after the reader caught up, delivered without polling.
  for (int i = 0; i < 20; ++i)
    Append("dev-a", "live-" + std::to_string(i));
  for (int i = 0; i < 20; ++i) {
    auto e = Next(**c);
    EXPECT_EQ(e.at("sequenceNumber").as_int64(), 2 + i);
    EXPECT_EQ(e.at("body").as_string(), "live-" + std::to_string(i));
  }
  EXPECT_NE(registry_.Render().find("orrery_eventhub_streams 1"), std::string::npos);
}

TEST_F(EventHubTest, AllPartitionsWithADeviceFilterAndLatest) {
  Append("dev-a", "old");
  auto c = Stream("from=latest&deviceId=dev-b");
  ASSERT_TRUE(c) << c.error().message();
  // Round-trip a no-op command so the stream has surely opened its readers at "latest".
  ASSERT_TRUE((*c)->Write("{\"op\":\"noop\"}\n"));
  EXPECT_EQ(Next(**c, "error").at("message").as_string().find("unknown command"), 0u);
  for (auto d : {"dev-a", "dev-b", "dev-c", "dev-b"})
    Append(d, std::string("from ") + d);
  auto e1 = Next(**c);
  auto e2 = Next(**c);
  for (auto* e : {&e1, &e2}) {
    EXPECT_EQ(e->at("systemProperties").at("iothub-connection-device-id").as_string(), "dev-b");
    EXPECT_EQ(e->at("partition").as_int64(), log_->PartitionFor("dev-b"));
  }
  EXPECT_TRUE(Silent(**c, 200ms));
}

TEST_F(EventHubTest, CheckpointCommandThenResumeFromTheCheckpoint) {
  for (int i = 0; i < 3; ++i)
    Append("dev-a", "m" + std::to_string(i));
  uint32_t p = log_->PartitionFor("dev-a");
  {
    auto c = Stream(fmt::format("partition={}", p));  // from=checkpoint: none yet → earliest
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(Next(**c).at("body").as_string(), "m0");
    EXPECT_EQ(Next(**c).at("body").as_string(), "m1");
    ASSERT_TRUE((*c)->Write(
        fmt::format("{{\"op\":\"checkpoint\",\"partition\":{},\"sequenceNumber\":2}}\n", p)));
    auto ack = Next(**c, "checkpoint");
    EXPECT_EQ(ack.at("sequenceNumber").as_int64(), 2);
    ASSERT_TRUE((*c)->Write(
        fmt::format("{{\"op\":\"checkpoint\",\"partition\":{},\"sequenceNumber\":0}}\n", p + 1)));
    EXPECT_NE(std::string(Next(**c, "error").at("message").as_string()).find("does not read"),
              std::string::npos);
  }
  auto again = Stream(fmt::format("partition={}&from=checkpoint", p));
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(Next(**again).at("body").as_string(), "m2");
}

TEST_F(EventHubTest, BadRequestsAreRefusedBeforeTheUpgrade) {
  auto expect = [&](Result<std::unique_ptr<net::WebSocketClient>> r, std::string_view status,
                    std::string_view text) {
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find(status), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find(text), std::string::npos) << r.error().message();
  };
  expect(Stream("", "SharedAccessSignature sr=x&sig=y&se=1&skn=service"), "HTTP 401", "expired");
  expect(Stream("consumerGroup=nope"), "HTTP 404", "no consumer group 'nope'");
  expect(Stream("partition=4"), "HTTP 400", "partition must be 0..3");
  expect(Stream("from=yesterday"), "HTTP 400", "'from' must be");
  // The query parameter works where headers cannot be set (browsers).
  net::WebSocketClientOptions o;
  auto c = net::WebSocketClient::Connect(
      Url("ws", "/eventhub/events?authorization=" + strings::UrlEncode(Token())), o);
  ASSERT_TRUE(c) << c.error().message();
  // Stream limit (3 in this fixture). A command round trip proves each stream is counted.
  auto s2 = Stream("");
  auto s3 = Stream("");
  ASSERT_TRUE(s2 && s3);
  for (auto* s : {&*c, &*s2, &*s3}) {
    ASSERT_TRUE((*s)->Write("{}\n"));
    Next(**s, "error");
  }
  expect(Stream(""), "HTTP 503", "at most 3 event streams");
}

}  // namespace
}  // namespace orrery::api
