#include "mqtt/persistence.h"

#include <gtest/gtest.h>

namespace orrery::mqtt::persist {
namespace {

TEST(PersistenceTest, MessagesRoundTripWithStateAndProperties) {
  auto m = std::make_shared<Message>();
  m->topic = "a/b";
  m->payload = std::string("\0bin", 4);
  m->qos = 2;
  m->retain = true;
  m->expires_at_ms = 1'800'000'000'000;
  m->publisher = "pub";
  m->properties = std::make_unique<Properties>();
  m->properties->response_topic = "r";
  m->properties->user_properties = {{"k", "v"}};
  Outgoing o{m, 1, true, {3, 4}, 77};
  auto bytes = EncodeMessage(o, Inflight::State::kAwaitPubcomp, 12);
  auto d = DecodeMessage(bytes);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->out.qos, 1);
  EXPECT_TRUE(d->out.retain);
  EXPECT_EQ(d->out.subscription_ids, (std::vector<uint32_t>{3, 4}));
  EXPECT_EQ(d->state, Inflight::State::kAwaitPubcomp);
  EXPECT_EQ(d->packet_id, 12);
  EXPECT_EQ(d->out.message->topic, "a/b");
  EXPECT_EQ(d->out.message->payload, m->payload);
  EXPECT_EQ(d->out.message->qos, 2);
  EXPECT_EQ(d->out.message->expires_at_ms, m->expires_at_ms);
  EXPECT_EQ(d->out.message->publisher, "pub");
  ASSERT_TRUE(d->out.message->properties);
  EXPECT_EQ(*d->out.message->properties, *m->properties);
}

TEST(PersistenceTest, CorruptRecordsAreRejectedNotTrusted) {
  auto m = std::make_shared<Message>();
  m->topic = "t";
  auto bytes = EncodeMessage(Outgoing{m, 0, false, {}, 0}, std::nullopt, 0);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_FALSE(DecodeMessage(bytes.substr(0, cut))) << cut;
  }
  std::string bad = bytes;
  bad[0] = 9;  // unknown format
  EXPECT_FALSE(DecodeMessage(bad));
}

TEST(PersistenceTest, SessionsRoundTrip) {
  Session s("dev1");
  s.version = Version::k5;
  s.expiry_s = 3600;
  s.next_packet_id = 500;
  s.next_store_seq = 9;
  s.subscriptions["a/#"] = {{.qos = 2, .no_local = true, .retain_handling = 1}, 5};
  auto bytes = EncodeSession(s);
  Session d("dev1");
  ASSERT_TRUE(DecodeSession(bytes, d));
  EXPECT_EQ(d.version, Version::k5);
  EXPECT_EQ(d.expiry_s, 3600u);
  EXPECT_EQ(d.next_packet_id, 500);
  EXPECT_EQ(d.next_store_seq, 9u);
  ASSERT_EQ(d.subscriptions.count("a/#"), 1u);
  EXPECT_EQ(d.subscriptions["a/#"].options.qos, 2);
  EXPECT_TRUE(d.subscriptions["a/#"].options.no_local);
  EXPECT_EQ(d.subscriptions["a/#"].options.retain_handling, 1);
  EXPECT_EQ(d.subscriptions["a/#"].subscription_id, 5u);
  EXPECT_FALSE(DecodeSession(bytes.substr(0, bytes.size() - 1), d));
  EXPECT_EQ(QueueKey("c", 1) < QueueKey("c", 256), true);
}

}  // namespace
}  // namespace orrery::mqtt::persist
