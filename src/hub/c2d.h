// Cloud-to-device queues: one durable queue per device (IoT Hub's C2D semantics).
//
// A message is Enqueued, then either delivered over MQTT (in flight until the device's
// PUBACK, which completes it) or received over HTTPS (Invisible: locked under a lock token
// until completed, abandoned, rejected, or the lock times out). Every delivery counts; a
// message delivered more than max_delivery_count times is dead-lettered. Messages expire at
// their expiry time (default TTL 1 h, at most 2 days). When the sender asked for an
// acknowledgement (iothub-ack: positive | negative | full), the outcome becomes a feedback
// record (Success, Expired, DeliveryCountExceeded, Rejected, Purged) in the hub's durable
// feedback queue, which the service reads with GET /messages/serviceBound/feedback.
//
// Storage: "hub.c2d" keyed "<device>\0<8-byte big-endian seq>" (the message, including its
// delivery count); "hub.feedback" keyed by an 8-byte sequence. Locks and MQTT in-flight
// state are not stored: after a restart every message is Enqueued again, and delivered
// again (at-least-once, as IoT Hub).
//
// Thread safety: every method is safe from any thread (one mutex; operations are short).
// Completion callbacks run on the store's writer thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/metrics.h"
#include "store/kv_store.h"

namespace orrery::hub {

struct C2dOptions {
  size_t max_queue_depth = 50;
  int64_t default_ttl_ms = 3600 * 1000;
  int64_t max_ttl_ms = 2 * 24 * 3600 * 1000;
  int64_t lock_timeout_ms = 60 * 1000;
  uint32_t max_delivery_count = 10;
  size_t max_message_bytes = 64 * 1024;   // IoT Hub's C2D limit
  size_t max_feedback_records = 100'000;  // oldest dropped beyond
  std::function<int64_t()> now_ms;
  metrics::Registry* metrics = nullptr;
};

enum class AckMode { kNone, kPositive, kNegative, kFull };
Result<AckMode> ParseAckMode(std::string_view text);  // none|positive|negative|full
std::string_view AckModeName(AckMode m);

struct C2dMessage {
  std::string message_id;
  std::string correlation_id;
  std::string user_id;
  std::string content_type;
  std::string content_encoding;
  std::string to;
  AckMode ack = AckMode::kNone;
  std::vector<std::pair<std::string, std::string>> properties;  // application properties
  std::string body;
  int64_t expiry_ms = 0;  // absolute; 0 = default TTL from enqueue
  // Set by the queue:
  uint64_t sequence = 0;
  int64_t enqueued_ms = 0;
  uint32_t delivery_count = 0;
  std::string lock_token;  // when received over HTTPS
};

// One record of IoT Hub's feedback messages.
struct FeedbackRecord {
  std::string original_message_id;
  std::string device_id;
  std::string device_generation_id;
  std::string status_code;  // Success, Expired, DeliveryCountExceeded, Rejected, Purged
  std::string description;
  int64_t enqueued_ms = 0;  // when the outcome was recorded
};

class C2dQueues {
 public:
  static Result<std::unique_ptr<C2dQueues>> Open(store::KvStore* store, C2dOptions options);
  ~C2dQueues();

  // Enqueues for `device_id` (whose generation id goes into feedback). kQuotaExceeded when
  // the queue is full, kTooLarge beyond max_message_bytes, kInvalidArgument for an expiry
  // in the past or beyond max TTL. `done` after the message is durable, with the queue depth.
  void Send(std::string_view device_id, std::string_view generation_id, C2dMessage message,
            std::function<void(Result<size_t>)> done);

  // Takes up to `max` enqueued messages for MQTT delivery (they become in flight: not
  // received over HTTPS, not delivered twice). Expired ones are settled first.
  std::vector<C2dMessage> TakeForDelivery(std::string_view device_id, size_t max);
  // The device acknowledged an MQTT delivery (PUBACK): completes the message.
  void DeliveredOverMqtt(std::string_view device_id, uint64_t sequence);
  // An MQTT delivery was dropped (session gone, queue full...): back to Enqueued; dead-
  // lettered when it has been delivered too often.
  void MqttDeliveryFailed(std::string_view device_id, uint64_t sequence);

  // HTTPS receive: locks the oldest enqueued message (nullopt: queue empty).
  std::optional<C2dMessage> Receive(std::string_view device_id);
  // Settle a locked message; `done` once the change is durable, or with
  // kDeviceMessageLockLost for an unknown or expired lock token.
  void Complete(std::string_view device_id, std::string_view lock_token,
                std::function<void(Status)> done);
  void Abandon(std::string_view device_id, std::string_view lock_token,
               std::function<void(Status)> done);
  void Reject(std::string_view device_id, std::string_view lock_token,
              std::function<void(Status)> done);

  // Removes every message of the device (feedback "Purged" where asked); `done` with how many
  // once durable.
  void Purge(std::string_view device_id, bool device_deleted,
             std::function<void(Result<size_t>)> done);
  size_t Depth(std::string_view device_id) const;
  // Expires messages and times out locks across all queues (the hub's housekeeping timer).
  // Returns the devices whose queues now have deliverable messages again.
  std::vector<std::string> Sweep();

  // Feedback: takes up to `max` unlocked records as one batch under a lock token
  // (nullopt: none). Completing the token deletes them; abandoning returns them.
  struct FeedbackBatch {
    std::string lock_token;
    std::vector<FeedbackRecord> records;
    int64_t enqueued_ms = 0;
  };
  std::optional<FeedbackBatch> ReceiveFeedback(size_t max);
  // `done` once the records are durably deleted (kDeviceMessageLockLost: unknown token).
  void CompleteFeedback(std::string_view lock_token, std::function<void(Status)> done);
  Status AbandonFeedback(std::string_view lock_token);

  // Called (outside the lock) whenever a device's queue depth changes.
  void SetDepthListener(std::function<void(const std::string& device, size_t depth)> listener);

 private:
  struct Item {
    C2dMessage message;
    enum class State { kEnqueued, kLocked, kInFlight } state = State::kEnqueued;
    int64_t lock_until_ms = 0;
  };
  struct Queue {
    std::string generation_id;
    std::deque<Item> items;  // by sequence
  };
  struct FeedbackItem {
    uint64_t sequence;
    FeedbackRecord record;
    std::string lock_token;  // empty = available
    int64_t lock_until_ms = 0;
  };

  explicit C2dQueues(store::KvStore* store, C2dOptions options);
  Status Load();
  int64_t Now() const { return options_.now_ms(); }
  // Settles (removes) an item with a feedback outcome when the sender asked for it.
  // REQUIRES: mu_ held.
  void Settle(const std::string& device, Queue& q, std::deque<Item>::iterator it,
              std::string_view status, store::WriteBatch& batch);
  void AddFeedback(const FeedbackRecord& r, store::WriteBatch& batch);  // REQUIRES: mu_
  // Expires and dead-letters what is due in one queue. REQUIRES: mu_ held.
  void Clean(const std::string& device, Queue& q, int64_t now, store::WriteBatch& batch);
  void Commit(store::WriteBatch batch);  // durable soon; failures are logged
  void Commit(store::WriteBatch batch, std::function<void(Status)> done);  // durable, then done
  // Completes ("Success"), rejects ("Rejected") or, with an empty outcome, abandons.
  void SettleLocked(std::string_view device_id, std::string_view lock_token,
                    std::string_view outcome, std::function<void(Status)> done);
  void NotifyDepth(const std::string& device, size_t depth);
  std::deque<Item>::iterator FindLocked(Queue& q, std::string_view lock_token);

  store::KvStore* store_;
  C2dOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, Queue, std::less<>> queues_;  // guarded by mu_
  uint64_t next_sequence_ = 1;                        // guarded by mu_
  std::deque<FeedbackItem> feedback_;                 // guarded by mu_
  uint64_t next_feedback_ = 1;                        // guarded by mu_
  std::function<void(const std::string&, size_t)> depth_listener_;
  metrics::Counter* sent_ = nullptr;
  metrics::Counter* completed_ = nullptr;
  metrics::Counter* dead_lettered_ = nullptr;
  metrics::Counter* expired_ = nullptr;
};

}  // namespace orrery::hub
