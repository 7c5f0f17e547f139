// The broker over real TCP connections on loopback, driven by a raw-packet test client.
#include "mqtt/broker.h"

#include <unistd.h>

#include <condition_variable>

#include <gtest/gtest.h>

#include "mqtt/testing/test_client.h"
#include "net/io_pool.h"
#include "net/stream_server.h"

namespace orrery::mqtt {
namespace {
using testing::TestClient;
using namespace std::chrono_literals;

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b)
    s.push_back(static_cast<char>(x));
  return s;
}

// Counts disconnects the broker has fully processed, so tests can wait for them.
class DisconnectCounter final : public ConnectionObserver {
 public:
  void OnConnected(const ClientInfo&) override {}
  void OnDisconnected(const ClientInfo&) override {
    std::lock_guard l(mu_);
    ++count_;
    cv_.notify_all();
  }
  bool WaitFor(int n) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, std::chrono::seconds(5), [&] { return count_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
};

class BrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("orrery-broker-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    options_.now_ms = [this] { return NowMs() + clock_offset_ms_.load(); };
    options_.metrics = &registry_;
    options_.housekeeping_interval = std::chrono::hours(1);  // tests call Sweep() themselves
  }
  void TearDown() override {
    StopBroker();
    std::filesystem::remove_all(dir_);
  }

  void StartBroker(bool with_store = true, std::shared_ptr<ConfigAuth> auth = nullptr) {
    if (with_store) {
      auto s = store::OpenRocksDb({.path = dir_ / "state"});
      ASSERT_TRUE(s) << s.error().message();
      store_ = std::move(*s);
    }
    if (!auth)
      auth = std::make_shared<ConfigAuth>(true, std::vector<ConfigAuth::User>{},
                                          std::vector<ConfigAuth::Acl>{});
    pool_ = std::make_unique<net::IoPool>(2);
    broker_ =
        std::make_unique<Broker>(options_, store_.get(), auth, auth, pool_->Get(0).get_executor());
    ASSERT_TRUE(broker_->Load());
    broker_->SetObserver(disconnects_);
    broker_->Start();
    auto server = net::StreamServer::Start(
        *pool_, {.name = "mqtt", .addresses = {"127.0.0.1"}, .port = port_},
        [b = broker_.get()](net::StreamPtr s) { b->Accept(std::move(s)); });
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::move(*server);
    port_ = server_->port();
    pool_->Start();
  }

  void StopBroker() {
    if (!pool_) return;
    server_->Stop();
    broker_->Shutdown();
    pool_->Stop();
    pool_->Join();
    if (store_) store_->Drain();  // its callbacks hold connections whose timers need the pool
    server_.reset();
    broker_.reset();
    pool_.reset();
    store_.reset();
  }

  uint64_t Counter(const std::string& text) {
    std::string all = registry_.Render();
    auto pos = all.find("\n" + text + " ");
    if (pos == std::string::npos) return 0;
    return std::stoull(all.substr(pos + text.size() + 2));
  }

  std::filesystem::path dir_;
  BrokerOptions options_;
  metrics::Registry registry_;
  std::atomic<int64_t> clock_offset_ms_{0};
  std::shared_ptr<DisconnectCounter> disconnects_ = std::make_shared<DisconnectCounter>();
  std::unique_ptr<store::KvStore> store_;
  std::unique_ptr<net::IoPool> pool_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<net::StreamServer> server_;
  uint16_t port_ = 0;
};

TEST_F(BrokerTest, Qos012RoundTripsInBothVersions) {
  StartBroker(false);
  for (Version v : {Version::k311, Version::k5}) {
    TestClient sub(port_), pub(port_);
    ASSERT_EQ(sub.Connect("sub", v).reason, Reason::kSuccess);
    ASSERT_EQ(pub.Connect("pub", v).reason, Reason::kSuccess);
    EXPECT_EQ(sub.Subscribe("t/+", 2), Reason::kGrantedQos2);
    for (uint8_t qos : {0, 1, 2}) {
      EXPECT_EQ(pub.Publish("t/" + std::to_string(qos), "m" + std::to_string(qos), qos),
                Reason::kSuccess);
      auto m = sub.ReceivePublish();
      ASSERT_TRUE(m) << "qos " << int(qos);
      EXPECT_EQ(m->topic, "t/" + std::to_string(qos));
      EXPECT_EQ(m->payload, "m" + std::to_string(qos));
      EXPECT_EQ(m->qos, qos);
      EXPECT_FALSE(m->retain);
    }
  }
}

TEST_F(BrokerTest, QosIsDowngradedToTheSubscription) {
  StartBroker(false);
  TestClient sub(port_), pub(port_);
  sub.Connect("sub");
  pub.Connect("pub");
  EXPECT_EQ(sub.Subscribe("a", 0), Reason::kSuccess);
  pub.Publish("a", "x", 2);
  auto m = sub.ReceivePublish();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->qos, 0);
}

TEST_F(BrokerTest, V5ReportsNoMatchingSubscribers) {
  StartBroker(false);
  TestClient pub(port_);
  pub.Connect("pub", Version::k5);
  EXPECT_EQ(pub.Publish("nobody/listens", "x", 1), Reason::kNoMatchingSubscribers);
}

TEST_F(BrokerTest, RetainedMessagesAreDeliveredOnSubscribeAndCleared) {
  StartBroker(false);
  TestClient pub(port_);
  pub.Connect("pub");
  pub.Publish("status/dev1", "online", 1, true);
  {
    TestClient sub(port_);
    sub.Connect("sub");
    sub.Subscribe("status/#", 1);
    auto m = sub.ReceivePublish();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "online");
    EXPECT_TRUE(m->retain);
    // A live publish to a subscriber without Retain As Published has retain cleared.
    pub.Publish("status/dev1", "busy", 1, true);
    m = sub.ReceivePublish();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "busy");
    EXPECT_FALSE(m->retain);
  }
  pub.Publish("status/dev1", "", 1, true);  // empty payload deletes
  TestClient late(port_);
  late.Connect("late");
  late.Subscribe("status/#", 1);
  EXPECT_FALSE(late.ReceivePublish(300ms));
  EXPECT_EQ(broker_->retained_count(), 0u);
}

TEST_F(BrokerTest, V5SubscriptionOptions) {
  StartBroker(false);
  TestClient c(port_), other(port_);
  c.Connect("self", Version::k5);
  other.Connect("other", Version::k5);
  other.Publish("r/1", "kept", 1, true);  // QoS 1: retained before we subscribe
  // Retain handling 2: no retained messages at subscribe time.
  EXPECT_EQ(c.Subscribe("r/#", 1, 0, {.retain_handling = 2}), Reason::kGrantedQos1);
  EXPECT_FALSE(c.ReceivePublish(200ms));
  // No Local: our own publishes are not delivered back.
  EXPECT_EQ(c.Subscribe("loop", 1, 0, {.no_local = true}), Reason::kGrantedQos1);
  c.Publish("loop", "mine", 1);
  EXPECT_FALSE(c.ReceivePublish(200ms));
  other.Publish("loop", "theirs", 1);
  auto m = c.ReceivePublish();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload, "theirs");
  // Retain As Published and Subscription Identifiers (two overlapping subscriptions →
  // one delivery carrying both identifiers).
  EXPECT_EQ(c.Subscribe("x/+", 1, 7, {.retain_as_published = true}), Reason::kGrantedQos1);
  EXPECT_EQ(c.Subscribe("x/#", 0, 9), Reason::kSuccess);
  other.Publish("x/y", "both", 1, true);
  m = c.ReceivePublish();
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->retain);
  EXPECT_EQ(m->qos, 1);
  auto ids = m->properties.subscription_identifiers;
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<uint32_t>{7, 9}));
  EXPECT_FALSE(c.ReceivePublish(200ms)) << "overlapping subscriptions must deliver once";
}

TEST_F(BrokerTest, RequestResponsePropertiesAndUserPropertiesTravel) {
  StartBroker(false);
  TestClient responder(port_), requester(port_);
  responder.Connect("responder", Version::k5);
  requester.Connect("requester", Version::k5);
  responder.Subscribe("svc/req", 1);
  requester.Subscribe("svc/resp/requester", 1);
  Properties p;
  p.response_topic = "svc/resp/requester";
  p.correlation_data = std::string("\x01\x02", 2);
  p.content_type = "application/json";
  p.user_properties = {{"trace", "abc"}, {"trace", "def"}};
  requester.Publish("svc/req", "{}", 1, false, p);
  auto req = responder.ReceivePublish();
  ASSERT_TRUE(req);
  EXPECT_EQ(req->properties.response_topic, "svc/resp/requester");
  EXPECT_EQ(req->properties.correlation_data, std::string("\x01\x02", 2));
  EXPECT_EQ(req->properties.content_type, "application/json");
  EXPECT_EQ(req->properties.user_properties, p.user_properties);
  Properties rp;
  rp.correlation_data = req->properties.correlation_data;
  responder.Publish(*req->properties.response_topic, "ok", 1, false, rp);
  auto resp = requester.ReceivePublish();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->payload, "ok");
  EXPECT_EQ(resp->properties.correlation_data, std::string("\x01\x02", 2));
}

TEST_F(BrokerTest, InboundTopicAliases) {
  StartBroker(false);
  TestClient sub(port_), pub(port_);
  sub.Connect("sub", Version::k5);
  auto ca = pub.Connect("pub", Version::k5);
  EXPECT_EQ(ca.properties.topic_alias_maximum, 64);
  sub.Subscribe("long/topic/name", 0);
  Properties p;
  p.topic_alias = 3;
  pub.Publish("long/topic/name", "first", 0, false, p);
  pub.Publish("", "second", 0, false, p);
  EXPECT_EQ(sub.ReceivePublish()->payload, "first");
  auto m = sub.ReceivePublish();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->topic, "long/topic/name");
  EXPECT_EQ(m->payload, "second");
  // An alias above the maximum is a protocol violation: DISCONNECT 0x94.
  p.topic_alias = 65;
  pub.Publish("x", "bad", 0, false, p);
  auto d = pub.Receive();
  ASSERT_TRUE(d && std::holds_alternative<Disconnect>(*d));
  EXPECT_EQ(std::get<Disconnect>(*d).reason, Reason::kTopicAliasInvalid);
  EXPECT_TRUE(pub.WaitClosed());
}

TEST_F(BrokerTest, WillIsPublishedOnAbruptCloseButNotOnDisconnect) {
  StartBroker(false);
  TestClient watcher(port_);
  watcher.Connect("watcher");
  watcher.Subscribe("wills/#", 1);
  {
    TestClient dying(port_);
    Connect c;
    c.client_id = "dying";
    c.will = Will{.topic = "wills/dying", .payload = "gone", .qos = 1};
    ASSERT_EQ(dying.Connect(c).reason, Reason::kSuccess);
    dying.Close();  // no DISCONNECT
  }
  auto m = watcher.ReceivePublish();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->topic, "wills/dying");
  EXPECT_EQ(m->payload, "gone");
  {
    TestClient polite(port_);
    Connect c;
    c.client_id = "polite";
    c.will = Will{.topic = "wills/polite", .payload = "gone"};
    polite.Connect(c);
    polite.Send(Disconnect{});
    EXPECT_TRUE(polite.WaitClosed());
  }
  EXPECT_FALSE(watcher.ReceivePublish(300ms));
}

TEST_F(BrokerTest, WillDelayIsCancelledByReconnect) {
  StartBroker(false);
  TestClient watcher(port_);
  watcher.Connect("watcher");
  watcher.Subscribe("wills/#", 0);
  Connect c;
  c.version = Version::k5;
  c.client_id = "flaky";
  c.clean_start = false;
  c.properties.session_expiry_interval = 600;
  c.will = Will{.topic = "wills/flaky", .payload = "gone"};
  c.will->properties.will_delay_interval = 30;
  {
    TestClient a(port_);
    a.Connect(c);
    a.Close();
  }
  ASSERT_TRUE(disconnects_->WaitFor(1));
  broker_->Sweep();  // within the delay: nothing yet
  EXPECT_FALSE(watcher.ReceivePublish(200ms));
  TestClient b(port_);
  EXPECT_TRUE(b.Connect(c).session_present);  // reconnecting cancels that will for good
  clock_offset_ms_ = 60'000;
  broker_->Sweep();
  EXPECT_FALSE(watcher.ReceivePublish(200ms));
  // Drop again and let the delay pass: now it is published.
  b.Close();
  ASSERT_TRUE(disconnects_->WaitFor(2));
  clock_offset_ms_ = 80'000;
  broker_->Sweep();
  EXPECT_FALSE(watcher.ReceivePublish(200ms));
  clock_offset_ms_ = 100'000;
  broker_->Sweep();
  auto m = watcher.ReceivePublish();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->topic, "wills/flaky");
}

TEST_F(BrokerTest, PersistentSessionKeepsSubscriptionsAndQueuesWhileOffline) {
  StartBroker(true);
  TestClient pub(port_);
  pub.Connect("pub");
  {
    TestClient dev(port_);
    auto ca = dev.Connect("dev", Version::k311, /*clean=*/false);
    EXPECT_FALSE(ca.session_present);
    dev.Subscribe("c2d/dev", 1);
    dev.Send(Disconnect{});
    EXPECT_TRUE(dev.WaitClosed());
  }
  EXPECT_EQ(pub.Publish("c2d/dev", "while-offline-1", 1), Reason::kSuccess);
  EXPECT_EQ(pub.Publish("c2d/dev", "while-offline-2", 2), Reason::kSuccess);
  // Reconnect without re-subscribing (what the Azure SDK does after a token renewal).
  TestClient dev(port_);
  auto ca = dev.Connect("dev", Version::k311, false);
  EXPECT_TRUE(ca.session_present);
  auto m1 = dev.ReceivePublish();
  auto m2 = dev.ReceivePublish();
  ASSERT_TRUE(m1 && m2);
  EXPECT_EQ(m1->payload, "while-offline-1");
  EXPECT_EQ(m2->payload, "while-offline-2");
  pub.Publish("c2d/dev", "live", 1);
  EXPECT_EQ(dev.ReceivePublish()->payload, "live");
}

TEST_F(BrokerTest, CleanSessionDiscardsState) {
  StartBroker(true);
  {
    TestClient dev(port_);
    dev.Connect("dev", Version::k311, false);
    dev.Subscribe("x", 1);
  }
  TestClient dev(port_);
  EXPECT_FALSE(dev.Connect("dev", Version::k311, true).session_present);
  TestClient pub(port_);
  pub.Connect("pub");
  pub.Publish("x", "y", 1);
  EXPECT_FALSE(dev.ReceivePublish(300ms));
}

TEST_F(BrokerTest, SessionsQueuesAndRetainedSurviveABrokerRestart) {
  StartBroker(true);
  {
    TestClient dev(port_), pub(port_);
    dev.Connect("dev", Version::k5, false);
    dev.Subscribe("jobs/#", 2, 42);
    dev.Send(Disconnect{});
    EXPECT_TRUE(dev.WaitClosed());
    pub.Connect("pub");
    ASSERT_EQ(pub.Publish("jobs/1", "queued-before-restart", 1), Reason::kSuccess);
    ASSERT_EQ(pub.Publish("config/x", "retained-before-restart", 1, true), Reason::kSuccess);
  }
  StopBroker();
  StartBroker(true);
  TestClient dev(port_);
  auto ca = dev.Connect("dev", Version::k5, false);
  EXPECT_TRUE(ca.session_present);
  auto m = dev.ReceivePublish();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload, "queued-before-restart");
  EXPECT_EQ(m->properties.subscription_identifiers, std::vector<uint32_t>{42});
  // The subscription itself survived too.
  TestClient pub(port_);
  pub.Connect("pub");
  pub.Publish("jobs/2", "after-restart", 1);
  EXPECT_EQ(dev.ReceivePublish()->payload, "after-restart");
  TestClient sub(port_);
  sub.Connect("sub");
  sub.Subscribe("config/#", 0);
  EXPECT_EQ(sub.ReceivePublish()->payload, "retained-before-restart");
}

TEST_F(BrokerTest, UnacknowledgedMessagesAreResentWithDupOnReconnect) {
  StartBroker(true);
  TestClient pub(port_);
  pub.Connect("pub");
  {
    TestClient dev(port_);
    dev.Connect("dev", Version::k311, false);
    dev.Subscribe("t", 1);
    pub.Publish("t", "unacked", 1);
    auto m = dev.ReceivePublish(5s, /*ack=*/false);
    ASSERT_TRUE(m);
    EXPECT_FALSE(m->dup);
    dev.Close();
  }
  TestClient dev(port_);
  EXPECT_TRUE(dev.Connect("dev", Version::k311, false).session_present);
  auto m = dev.ReceivePublish();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload, "unacked");
  EXPECT_TRUE(m->dup);
}

TEST_F(BrokerTest, SessionExpiryEndsOfflineSessions) {
  StartBroker(true);
  Connect c;
  c.version = Version::k5;
  c.client_id = "short";
  c.clean_start = false;
  c.properties.session_expiry_interval = 10;
  {
    TestClient a(port_);
    a.Connect(c);
    a.Subscribe("s", 1);
    a.Send(Disconnect{});
    a.WaitClosed();
  }
  EXPECT_EQ(broker_->session_count(), 1u);
  clock_offset_ms_ = 11'000;
  broker_->Sweep();
  EXPECT_EQ(broker_->session_count(), 0u);
  TestClient b(port_);
  EXPECT_FALSE(b.Connect(c).session_present);
}

TEST_F(BrokerTest, TakeOverClosesTheOldConnection) {
  StartBroker(false);
  TestClient first(port_);
  first.Connect("dup", Version::k5);
  TestClient second(port_);
  EXPECT_EQ(second.Connect("dup", Version::k5).reason, Reason::kSuccess);
  auto d = first.Receive();
  ASSERT_TRUE(d && std::holds_alternative<Disconnect>(*d));
  EXPECT_EQ(std::get<Disconnect>(*d).reason, Reason::kSessionTakenOver);
  EXPECT_TRUE(first.WaitClosed());
  // The new connection works.
  second.Subscribe("t", 0);
  TestClient pub(port_);
  pub.Connect("pub");
  pub.Publish("t", "to-second");
  EXPECT_EQ(second.ReceivePublish()->payload, "to-second");
}

// Keeps clients that log in as "provisioning" in their own session space.
class SessionKeyAuth final : public Authenticator {
 public:
  void Authenticate(const ConnectInfo& info, std::function<void(AuthResult)> done) override {
    AuthResult r;
    if (info.username && *info.username == "provisioning") r.session_key = "$p:" + info.client_id;
    done(std::move(r));
  }
};

TEST_F(BrokerTest, ASessionKeyKeepsSameNamedClientsApart) {
  auto config = std::make_shared<ConfigAuth>(true, std::vector<ConfigAuth::User>{},
                                             std::vector<ConfigAuth::Acl>{});
  auto store = store::OpenRocksDb({.path = dir_ / "state"});
  ASSERT_TRUE(store);
  store_ = std::move(*store);
  pool_ = std::make_unique<net::IoPool>(2);
  broker_ = std::make_unique<Broker>(options_, store_.get(), std::make_shared<SessionKeyAuth>(),
                                     config, pool_->Get(0).get_executor());
  ASSERT_TRUE(broker_->Load());
  broker_->Start();
  auto server = net::StreamServer::Start(
      *pool_, {.name = "mqtt", .addresses = {"127.0.0.1"}},
      [b = broker_.get()](net::StreamPtr st) { b->Accept(std::move(st)); });
  ASSERT_TRUE(server);
  server_ = std::move(*server);
  port_ = server_->port();
  pool_->Start();

  TestClient device(port_);
  device.Connect("dev-1", Version::k311, /*clean=*/false);
  device.Subscribe("t", 1);
  mqtt::Connect c;
  c.client_id = "dev-1";
  c.username = "provisioning";
  TestClient registration(port_);
  EXPECT_EQ(registration.Connect(c).reason, Reason::kSuccess);
  // No takeover: the device still gets what is published to it.
  TestClient pub(port_);
  pub.Connect("pub");
  pub.Publish("t", "still-here", 1);
  auto m = device.ReceivePublish();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload, "still-here");
  EXPECT_EQ(broker_->connection_count(), 3u);
}

TEST_F(BrokerTest, SharedSubscriptionsSpreadTheLoad) {
  StartBroker(false);
  TestClient a(port_), b(port_), pub(port_);
  a.Connect("a", Version::k5);
  b.Connect("b", Version::k5);
  pub.Connect("pub");
  EXPECT_EQ(a.Subscribe("$share/workers/jobs/+", 1), Reason::kGrantedQos1);
  EXPECT_EQ(b.Subscribe("$share/workers/jobs/+", 1), Reason::kGrantedQos1);
  for (int i = 0; i < 10; ++i)
    pub.Publish("jobs/" + std::to_string(i), "j", 1);
  int got_a = 0, got_b = 0;
  while (a.ReceivePublish(300ms))
    ++got_a;
  while (b.ReceivePublish(300ms))
    ++got_b;
  EXPECT_EQ(got_a + got_b, 10);
  EXPECT_EQ(got_a, 5);
  EXPECT_EQ(got_b, 5);
}

TEST_F(BrokerTest, DollarTopicsAreNotMatchedByRootWildcards) {
  StartBroker(false);
  TestClient sub(port_), pub(port_);
  sub.Connect("sub");
  pub.Connect("pub");
  sub.Subscribe("#", 0);
  sub.Subscribe("$SYS/+", 0);
  pub.Publish("$SYS/x", "sys");
  pub.Publish("normal", "n");
  std::vector<std::string> got;
  while (auto m = sub.ReceivePublish(300ms))
    got.push_back(m->payload);
  EXPECT_EQ(got, (std::vector<std::string>{"sys", "n"}));
}

TEST_F(BrokerTest, MessageExpiryDropsStaleQueuedMessages) {
  StartBroker(true);
  TestClient pub(port_);
  pub.Connect("pub", Version::k5);
  {
    TestClient dev(port_);
    dev.Connect("dev", Version::k5, false);
    dev.Subscribe("e", 1);
    dev.Send(Disconnect{});
    dev.WaitClosed();
  }
  Properties p;
  p.message_expiry_interval = 5;
  pub.Publish("e", "stale", 1, false, p);
  p.message_expiry_interval = 100;
  pub.Publish("e", "fresh", 1, false, p);
  clock_offset_ms_ = 10'000;
  TestClient dev(port_);
  dev.Connect("dev", Version::k5, false);
  auto m = dev.ReceivePublish();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload, "fresh");
  ASSERT_TRUE(m->properties.message_expiry_interval);
  EXPECT_LE(*m->properties.message_expiry_interval, 90u);  // the remaining lifetime
  EXPECT_EQ(Counter("orrery_mqtt_dropped_total{reason=\"expired\"}"), 1u);
}

TEST_F(BrokerTest, QueueLimitDropsAndCounts) {
  options_.max_queued_messages = 3;
  StartBroker(true);
  {
    TestClient dev(port_);
    dev.Connect("dev", Version::k311, false);
    dev.Subscribe("q", 1);
    dev.Send(Disconnect{});
    dev.WaitClosed();
  }
  TestClient pub(port_);
  pub.Connect("pub");
  for (int i = 0; i < 5; ++i)
    pub.Publish("q", std::to_string(i), 1);
  TestClient dev(port_);
  dev.Connect("dev", Version::k311, false);
  std::vector<std::string> got;
  while (auto m = dev.ReceivePublish(300ms))
    got.push_back(m->payload);
  EXPECT_EQ(got, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(Counter("orrery_mqtt_dropped_total{reason=\"queue_full\"}"), 2u);
}

TEST_F(BrokerTest, LimitsAnswerWithReasonCodes) {
  options_.max_packet_size = 1024;
  options_.max_subscriptions_per_client = 2;
  StartBroker(false);
  TestClient c(port_);
  auto ca = c.Connect("c", Version::k5);
  EXPECT_EQ(ca.properties.maximum_packet_size, 1024u);
  EXPECT_EQ(c.Subscribe("a", 0), Reason::kSuccess);
  EXPECT_EQ(c.Subscribe("b", 0), Reason::kSuccess);
  EXPECT_EQ(c.Subscribe("c", 0), Reason::kQuotaExceeded);
  EXPECT_EQ(c.Subscribe("a/#/b", 0), Reason::kTopicFilterInvalid);
  c.Publish("big", std::string(2000, 'x'));
  auto d = c.Receive();
  ASSERT_TRUE(d && std::holds_alternative<Disconnect>(*d));
  EXPECT_EQ(std::get<Disconnect>(*d).reason, Reason::kPacketTooLarge);
  EXPECT_TRUE(c.WaitClosed());
}

TEST_F(BrokerTest, MalformedPacketsCloseTheConnectionAndTheServerStaysUp) {
  StartBroker(false);
  struct Case {
    const char* what;
    Version v;
    std::string bytes;
    std::optional<Reason> v5_reason;
  };
  std::vector<Case> cases = {
      {"reserved packet type 0", Version::k311, Bytes({0x00, 0}), std::nullopt},
      {"PUBLISH QoS 3", Version::k311, Bytes({0x36, 5, 0, 1, 'a', 0, 1}), std::nullopt},
      {"SUBSCRIBE with wrong flags", Version::k311, Bytes({0x80, 6, 0, 1, 0, 1, 'a', 0}),
       std::nullopt},
      {"second CONNECT", Version::k311,
       Bytes({0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 1, 'c'}), std::nullopt},
      {"invalid UTF-8 topic (v5)", Version::k5, Bytes({0x30, 4, 0, 1, 0xC0, 0}),
       Reason::kMalformedPacket},
      {"PUBLISH QoS 3 (v5)", Version::k5, Bytes({0x36, 6, 0, 1, 'a', 0, 1, 0}),
       Reason::kMalformedPacket},
      {"SUBSCRIBE without filters (v5)", Version::k5, Bytes({0x82, 3, 0, 1, 0}),
       Reason::kProtocolError},
      {"wildcard topic (v5)", Version::k5, Bytes({0x30, 4, 0, 1, '#', 0}),
       Reason::kTopicNameInvalid},
      {"client sends CONNACK (v5)", Version::k5, Bytes({0x20, 3, 0, 0, 0}), Reason::kProtocolError},
  };
  for (auto& tc : cases) {
    TestClient c(port_);
    ASSERT_EQ(c.Connect("bad", tc.v).reason, Reason::kSuccess) << tc.what;
    c.SendRaw(tc.bytes);
    if (tc.v5_reason) {
      auto d = c.Receive();
      ASSERT_TRUE(d && std::holds_alternative<Disconnect>(*d)) << tc.what;
      EXPECT_EQ(std::get<Disconnect>(*d).reason, *tc.v5_reason) << tc.what;
    }
    EXPECT_TRUE(c.WaitClosed()) << tc.what;
  }
  // Before CONNECT: a non-CONNECT packet just closes; MQTT 3.1 gets CONNACK 1.
  {
    TestClient c(port_);
    c.SendRaw(Bytes({0xC0, 0}));
    EXPECT_TRUE(c.WaitClosed());
  }
  {
    TestClient c(port_);
    c.SendRaw(Bytes({0x10, 12, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 2, 0, 60}));
    auto ack = c.Receive();
    ASSERT_TRUE(ack && std::holds_alternative<Connack>(*ack));
    EXPECT_EQ(std::get<Connack>(*ack).reason, Reason::kUnsupportedProtocolVersion);
    EXPECT_TRUE(c.WaitClosed());
  }
  TestClient ok(port_);
  EXPECT_EQ(ok.Connect("still-up").reason, Reason::kSuccess);
  EXPECT_GE(Counter("orrery_mqtt_protocol_errors_total"), 9u);
}

TEST_F(BrokerTest, ReceiveMaximumExceededIsAProtocolViolation) {
  options_.receive_maximum = 2;
  StartBroker(true);
  TestClient dev(port_);
  dev.Connect("persist", Version::k311, false);
  dev.Subscribe("t", 1);
  dev.Send(Disconnect{});
  TestClient c(port_);
  auto ca = c.Connect("c", Version::k5);
  EXPECT_EQ(ca.properties.receive_maximum, 2);
  // Three QoS 1 publishes back to back without waiting for acks; the third may exceed the
  // window if the first two are still being stored.
  for (int i = 1; i <= 50; ++i) {
    Publish p;
    p.topic = "t";
    p.qos = 1;
    p.packet_id = static_cast<uint16_t>(i);
    c.Send(p);
  }
  bool violation = false;
  while (auto r = c.Receive(2s)) {
    if (auto* d = std::get_if<Disconnect>(&*r)) {
      EXPECT_EQ(d->reason, Reason::kReceiveMaximumExceeded);
      violation = true;
      break;
    }
  }
  EXPECT_TRUE(violation);
}

TEST_F(BrokerTest, KeepAliveTimeoutClosesSilentClients) {
  StartBroker(false);
  TestClient c(port_);
  ASSERT_EQ(c.Connect("sleepy", Version::k5, true, /*keep_alive=*/1).reason, Reason::kSuccess);
  auto d = c.Receive(5s);
  ASSERT_TRUE(d && std::holds_alternative<Disconnect>(*d));
  EXPECT_EQ(std::get<Disconnect>(*d).reason, Reason::kKeepAliveTimeout);
  EXPECT_TRUE(c.WaitClosed());
}

TEST_F(BrokerTest, ConfigAuthRefusesBadPasswordsAndEnforcesAcls) {
  auto auth = std::make_shared<ConfigAuth>(
      false, std::vector<ConfigAuth::User>{{"alice", HashPassword("secret", 1000)}},
      std::vector<ConfigAuth::Acl>{
          {.user = "alice", .pattern = "home/%u/#", .read = true, .write = true}});
  StartBroker(false, auth);
  {
    TestClient anon(port_);
    EXPECT_EQ(anon.Connect("anon").reason, Reason::kNotAuthorized);
  }
  {
    TestClient wrong(port_);
    Connect c;
    c.client_id = "w";
    c.username = "alice";
    c.password = "nope";
    EXPECT_EQ(wrong.Connect(c).reason, Reason::kBadUserNameOrPassword);
  }
  TestClient alice(port_);
  Connect c;
  c.version = Version::k5;
  c.client_id = "alice-1";
  c.username = "alice";
  c.password = "secret";
  ASSERT_EQ(alice.Connect(c).reason, Reason::kSuccess);
  EXPECT_EQ(alice.Subscribe("home/alice/#", 1), Reason::kGrantedQos1);
  EXPECT_EQ(alice.Subscribe("home/bob/#", 1), Reason::kNotAuthorized);
  EXPECT_EQ(alice.Subscribe("#", 1), Reason::kNotAuthorized);
  EXPECT_EQ(alice.Publish("home/bob/door", "open", 1), Reason::kNotAuthorized);
  EXPECT_EQ(alice.Publish("home/alice/door", "open", 1), Reason::kSuccess);
  EXPECT_EQ(alice.ReceivePublish()->payload, "open");
}

}  // namespace
}  // namespace orrery::mqtt
