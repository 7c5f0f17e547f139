#include "hub/c2d.h"

#include <gtest/gtest.h>

#include "hub/errc.h"
#include "hub/test_util.h"

namespace orrery::hub {
namespace {
using testing::FakeClock;
using testing::StoreDir;
using testing::Wait;

class C2dTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = dir_.Open();
    Reopen();
  }
  void Reopen() {
    queues_.reset();
    auto q = C2dQueues::Open(store_.get(), {.max_queue_depth = 3,
                                            .lock_timeout_ms = 1000,
                                            .max_delivery_count = 2,
                                            .now_ms = clock_.fn()});
    ASSERT_TRUE(q) << q.error().message();
    queues_ = std::move(*q);
  }
  Result<size_t> Send(std::string id, AckMode ack = AckMode::kFull, int64_t expiry = 0) {
    C2dMessage m;
    m.message_id = std::move(id);
    m.body = "body of " + m.message_id;
    m.ack = ack;
    m.expiry_ms = expiry;
    m.properties = {{"k", "v"}};
    return Wait<Result<size_t>>([&](auto cb) { queues_->Send("dev1", "gen1", std::move(m), cb); });
  }
  Status Settle(std::string_view how, std::string_view lock) {
    return Wait<Status>([&](auto cb) {
      if (how == "complete") queues_->Complete("dev1", lock, cb);
      if (how == "abandon") queues_->Abandon("dev1", lock, cb);
      if (how == "reject") queues_->Reject("dev1", lock, cb);
    });
  }
  std::vector<FeedbackRecord> Feedback() {
    std::vector<FeedbackRecord> all;
    while (auto b = queues_->ReceiveFeedback(100)) {
      EXPECT_TRUE(Wait<Status>([&](auto cb) { queues_->CompleteFeedback(b->lock_token, cb); }));
      all.insert(all.end(), b->records.begin(), b->records.end());
    }
    return all;
  }

  StoreDir dir_;
  FakeClock clock_;
  std::unique_ptr<store::KvStore> store_;
  std::unique_ptr<C2dQueues> queues_;
};

TEST_F(C2dTest, HttpsReceiveCompleteRejectAbandon) {
  ASSERT_TRUE(Send("a"));
  ASSERT_TRUE(Send("b"));
  ASSERT_EQ(*Send("c"), 3u);
  auto full = Send("d");  // depth limit 3
  ASSERT_FALSE(full);
  EXPECT_TRUE(full.error().Is(Errc::kQuotaExceeded));
  auto a = queues_->Receive("dev1");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->message_id, "a");
  EXPECT_EQ(a->delivery_count, 1u);
  EXPECT_EQ(a->properties.size(), 1u);
  auto b = queues_->Receive("dev1");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->message_id, "b");  // a is locked, so b comes next
  EXPECT_TRUE(Settle("complete", a->lock_token));
  EXPECT_FALSE(Settle("complete", a->lock_token));  // already settled
  EXPECT_TRUE(Settle("complete", "nonsense").error().Is(Errc::kDeviceMessageLockLost));
  EXPECT_TRUE(Settle("abandon", b->lock_token));
  auto b2 = queues_->Receive("dev1");
  ASSERT_TRUE(b2);
  EXPECT_EQ(b2->message_id, "b");
  EXPECT_EQ(b2->delivery_count, 2u);
  EXPECT_TRUE(Settle("reject", b2->lock_token));
  auto fb = Feedback();
  ASSERT_EQ(fb.size(), 2u);
  EXPECT_EQ(fb[0].original_message_id, "a");
  EXPECT_EQ(fb[0].status_code, "Success");
  EXPECT_EQ(fb[0].device_generation_id, "gen1");
  EXPECT_EQ(fb[1].status_code, "Rejected");
  EXPECT_EQ(queues_->Depth("dev1"), 1u);
}

TEST_F(C2dTest, LockTimeoutRedeliversAndDeliveryCountDeadLetters) {
  ASSERT_TRUE(Send("m"));
  auto first = queues_->Receive("dev1");
  ASSERT_TRUE(first);
  EXPECT_FALSE(queues_->Receive("dev1"));  // locked
  clock_.Advance(1001);
  EXPECT_FALSE(Settle("complete", first->lock_token));  // the lock expired
  auto second = queues_->Receive("dev1");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->delivery_count, 2u);
  EXPECT_TRUE(Settle("abandon", second->lock_token));  // 2 deliveries: the most allowed
  EXPECT_FALSE(queues_->Receive("dev1"));
  auto fb = Feedback();
  ASSERT_EQ(fb.size(), 1u);
  EXPECT_EQ(fb[0].status_code, "DeliveryCountExceeded");
  EXPECT_EQ(queues_->Depth("dev1"), 0u);
}

TEST_F(C2dTest, ExpiryAndAckModes) {
  int64_t now = clock_.now->load();
  ASSERT_TRUE(Send("neg", AckMode::kNegative, now + 500));
  ASSERT_TRUE(Send("pos", AckMode::kPositive, now + 500));
  EXPECT_FALSE(Send("past", AckMode::kNone, now - 1));
  EXPECT_FALSE(Send("far", AckMode::kNone, now + 3LL * 24 * 3600 * 1000));
  clock_.Advance(501);
  queues_->Sweep();
  EXPECT_EQ(queues_->Depth("dev1"), 0u);
  auto fb = Feedback();  // only the negative-ack message reports its expiry
  ASSERT_EQ(fb.size(), 1u);
  EXPECT_EQ(fb[0].original_message_id, "neg");
  EXPECT_EQ(fb[0].status_code, "Expired");
}

TEST_F(C2dTest, MqttDeliveryAndRestart) {
  ASSERT_TRUE(Send("x"));
  ASSERT_TRUE(Send("y"));
  auto taken = queues_->TakeForDelivery("dev1", 1);
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].message_id, "x");
  EXPECT_TRUE(queues_->TakeForDelivery("dev1", 1).empty());  // one in flight at most
  auto http = queues_->Receive("dev1");                      // HTTPS sees y, never x
  ASSERT_TRUE(http);
  EXPECT_EQ(http->message_id, "y");
  queues_->MqttDeliveryFailed("dev1", taken[0].sequence);
  auto again = queues_->TakeForDelivery("dev1", 5);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].delivery_count, 2u);
  // A restart forgets locks and in-flight state, keeps messages and delivery counts.
  store_->Drain();
  Reopen();
  EXPECT_EQ(queues_->Depth("dev1"), 2u);
  auto after = queues_->TakeForDelivery("dev1", 5);
  ASSERT_EQ(after.size(), 1u);  // x was delivered twice already: dead-lettered
  EXPECT_EQ(after[0].message_id, "y");
  queues_->DeliveredOverMqtt("dev1", after[0].sequence);
  EXPECT_EQ(queues_->Depth("dev1"), 0u);
  auto fb = Feedback();
  ASSERT_EQ(fb.size(), 2u);
  EXPECT_EQ(fb[0].original_message_id, "x");
  EXPECT_EQ(fb[0].status_code, "DeliveryCountExceeded");
  EXPECT_EQ(fb[1].status_code, "Success");
}

TEST_F(C2dTest, PurgeAndLimits) {
  ASSERT_TRUE(Send("p1"));
  ASSERT_TRUE(Send("p2", AckMode::kNone));
  auto purged = Wait<Result<size_t>>([&](auto cb) { queues_->Purge("dev1", false, cb); });
  ASSERT_TRUE(purged);
  EXPECT_EQ(*purged, 2u);
  auto fb = Feedback();
  ASSERT_EQ(fb.size(), 1u);
  EXPECT_EQ(fb[0].status_code, "Purged");
  C2dMessage big;
  big.body.assign(64 * 1024 + 1, 'x');
  auto r = Wait<Result<size_t>>([&](auto cb) { queues_->Send("dev1", "g", big, cb); });
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kTooLarge));
  EXPECT_TRUE(ParseAckMode("full"));
  EXPECT_FALSE(ParseAckMode("sometimes"));
}

}  // namespace
}  // namespace orrery::hub
