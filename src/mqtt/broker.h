// The MQTT broker core: sessions, the subscription trie, retained messages, wills, routing
// and persistence. Protocol engines (Connection) call into it from any io thread.
//
// Durability contract: a QoS 1/2 PUBLISH is acknowledged (PUBACK/PUBREC) only after every
// copy queued for a persistent session (3.1.1 clean session 0, MQTT 5 session expiry > 0)
// and any retained update are durable in the state store (group-committed fsync). Copies
// for clean sessions live in memory: such a session ends with its connection anyway.
//
// Thread safety: all public methods are safe from any thread. Lock order: sessions_mu_ before
// a session's mu; the trie and the retained map have their own locks and are never taken
// while a session's mu is held.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "base/error.h"
#include "base/metrics.h"
#include "mqtt/auth.h"
#include "mqtt/message.h"
#include "mqtt/session.h"
#include "mqtt/topic_tree.h"
#include "net/stream.h"
#include "store/kv_store.h"

namespace orrery::mqtt {

class Connection;

struct BrokerOptions {
  size_t max_packet_size = 1 << 20;   // bytes; larger packets: 0x95 / close
  uint16_t receive_maximum = 1024;    // inbound QoS 1/2 publishes awaiting our ack
  uint16_t max_inflight = 256;        // outbound unacknowledged per session
  size_t max_queued_messages = 1000;  // per session; beyond: dropped and counted
  size_t max_subscriptions_per_client = 1000;
  uint16_t topic_alias_maximum = 64;
  size_t max_client_id_length = 1024;
  uint32_t max_session_expiry_s = kSessionNeverExpires;  // also 3.1.1 persistent sessions
  std::chrono::milliseconds connect_timeout{10000};
  bool retain_available = true;
  std::chrono::milliseconds housekeeping_interval{250};  // session expiry and will delays
  metrics::Registry* metrics = nullptr;
  std::function<int64_t()> now_ms;  // wall clock in ms; injectable for tests
};

// Lets a layer above (the IoT Hub) take over PUBLISHes before they are routed: device
// telemetry goes to the event log, twin and method topics to the hub.
class PublishInterceptor {
 public:
  virtual ~PublishInterceptor() = default;
  // Return false to let the broker route the message. Return true to take it: then call
  // `done` exactly once (any thread) with the reason for the PUBACK/PUBREC once handled.
  virtual bool Intercept(const ClientInfo& client, const MessagePtr& message,
                         std::function<void(Reason)> done) = 0;
};

// Connection lifecycle notifications (connection-state events, device activity).
class ConnectionObserver {
 public:
  virtual ~ConnectionObserver() = default;
  virtual void OnConnected(const ClientInfo& client) = 0;
  // Called after the broker has settled the session: its will is published or scheduled and
  // its expiry is recorded.
  virtual void OnDisconnected(const ClientInfo& client) = 0;
  // A subscription was granted (after its SUBACK is queued). Runs on the connection's thread.
  virtual void OnSubscribed(const ClientInfo& /*client*/, const std::string& /*filter*/) {}
};

// What DeliverTo did with a message.
enum class DeliverResult {
  kQueued,         // handed to the client's session (sent when the connection drains)
  kOffline,        // no session, or its client is not connected
  kNotSubscribed,  // connected, but no subscription of the client matches the topic
  kDropped,        // the session's queue is full
};

struct BrokerMetrics {
  metrics::Counter* connects = nullptr;
  metrics::Counter* connect_refused = nullptr;
  metrics::Counter* protocol_errors = nullptr;
  metrics::Counter* publish_in = nullptr;
  metrics::Counter* publish_out = nullptr;
  metrics::Counter* bytes_in = nullptr;
  metrics::Counter* bytes_out = nullptr;
  metrics::Counter* dropped_queue_full = nullptr;
  metrics::Counter* dropped_expired = nullptr;
  metrics::Counter* dropped_too_large = nullptr;
  metrics::Counter* denied = nullptr;
  metrics::Counter* takeovers = nullptr;
  metrics::Counter* keepalive_timeouts = nullptr;
  metrics::Gauge* online = nullptr;
};

class Broker {
 public:
  Broker(BrokerOptions options, store::KvStore* store, std::shared_ptr<Authenticator> authn,
         std::shared_ptr<Authorizer> authz, boost::asio::any_io_executor housekeeping);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Restores persistent sessions (subscriptions, queued and in-flight messages) and retained
  // messages from the store. Call once before serving.
  Status Load();
  // Starts the housekeeping timer (session expiry, delayed wills).
  void Start();
  // Serves a new connection. Call on the stream's executor.
  void Accept(net::StreamPtr stream);
  // Disconnects every client (MQTT 5: 0x8B Server shutting down) and stops timers.
  void Shutdown();

  void SetInterceptor(std::shared_ptr<PublishInterceptor> interceptor);
  void SetObserver(std::shared_ptr<ConnectionObserver> observer);

  // Routes a message originated by the server. `durable` (optional) runs once the copies for
  // persistent sessions are stored.
  void Publish(MessagePtr message, std::function<void(Status)> durable = {});
  // Delivers a server-originated message to one connected client only, if one of its
  // subscriptions matches the topic (the hub's per-device topics: twin responses, desired
  // updates, method requests, cloud-to-device messages). QoS is the lower of `qos` and the
  // subscription's. Such deliveries are never stored by the broker: the caller owns their
  // durability and learns their fate through `hook` (for QoS 0: settled as acknowledged once
  // queued, since no acknowledgement will come).
  DeliverResult DeliverTo(std::string_view client_id, MessagePtr message, uint8_t qos,
                          std::shared_ptr<DeliveryHook> hook = nullptr);
  // Whether the client is connected with a subscription that matches `topic`.
  bool IsSubscribed(std::string_view client_id, std::string_view topic) const;
  // Disconnects the client with this id, if connected (v5: with `reason`).
  void Disconnect(std::string_view client_id, Reason reason);

  // Expires sessions and publishes delayed wills that are due (also run by the timer).
  void Sweep();
  int64_t Now() const { return options_.now_ms(); }

  size_t session_count() const;
  size_t connection_count() const;
  size_t subscription_count() const { return tree_.size(); }
  size_t retained_count() const;
  const BrokerOptions& options() const { return options_; }

  // ---- for Connection ----
  struct Attached {
    SessionPtr session;
    bool present = false;
  };
  Attached Attach(const std::shared_ptr<Connection>& conn, const std::string& client_id,
                  bool clean_start, uint32_t expiry_s, Version version);
  // The connection is gone. `will` is published unless the session resumes in time.
  void Detach(const std::shared_ptr<Connection>& conn, const SessionPtr& session,
              std::optional<Will> will, const ClientInfo& client);
  // Routes a message published by a client; `done` gets the reason for its acknowledgement
  // (called inline when nothing needs to become durable).
  void Route(const ClientInfo& client, MessagePtr message, std::function<void(Reason)> done);
  // Applies a subscription. Returns the granted reason; fills `retained` with the retained
  // messages to deliver for it.
  Reason Subscribe(const ClientInfo& client, const SessionPtr& session, const std::string& filter,
                   SubscriptionOptions options, uint32_t subscription_id,
                   std::vector<MessagePtr>& retained);
  Reason Unsubscribe(const SessionPtr& session, const std::string& filter);
  // Persists the session record (after subscription changes); `done` on durability.
  void PersistSession(const SessionPtr& session, std::function<void(Status)> done);
  // Writes queue-record updates (state changes, deletions) in order with earlier inserts.
  void WriteQueue(store::WriteBatch batch);
  // Enqueues a delivery and schedules the session's flush. Returns false if dropped.
  bool Enqueue(const SessionPtr& session, Outgoing out);

  Authenticator& authenticator() { return *authn_; }
  Authorizer& authorizer() { return *authz_; }
  const BrokerMetrics& metrics() const { return metrics_; }
  store::KvStore* store() { return store_; }
  void Register(const std::shared_ptr<Connection>& conn);
  void Unregister(Connection* conn);
  void NotifyConnected(const ClientInfo& client);
  void NotifySubscribed(const ClientInfo& client, const std::string& filter);

 private:
  void EndSession(const SessionPtr& session);
  // Marks the session ended, drops its subscriptions (from the trie too), queue and in-flight
  // messages. Returns whether it was persistent.
  bool ClearSession(Session& session);
  // Deletes the stored session record and its queued messages. REQUIRES: store_.
  void ForgetStoredSession(const std::string& client_id);
  void ScheduleHousekeeping();
  void PublishWill(const ClientInfo& client, Will will);
  void RestoreQueue(const SessionPtr& session);

  BrokerOptions options_;
  store::KvStore* store_;
  std::shared_ptr<Authenticator> authn_;
  std::shared_ptr<Authorizer> authz_;
  boost::asio::any_io_executor housekeeping_;
  BrokerMetrics metrics_;
  metrics::ScopedCollector collector_;

  TopicTree tree_;

  mutable std::mutex sessions_mu_;
  std::unordered_map<std::string, SessionPtr> sessions_;
  std::multimap<int64_t, std::string> expiring_;  // offline sessions by expiry time

  struct PendingWill {
    ClientInfo client;
    Will will;
    int64_t due_ms;
  };
  std::unordered_map<std::string, PendingWill> wills_;  // guarded by sessions_mu_

  mutable std::shared_mutex retained_mu_;
  std::map<std::string, MessagePtr, std::less<>> retained_;

  mutable std::mutex conns_mu_;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections_;

  std::shared_ptr<PublishInterceptor> interceptor_;
  std::shared_ptr<ConnectionObserver> observer_;

  struct Timer;
  std::unique_ptr<Timer> timer_;
  std::atomic<bool> stopping_{false};
};

int64_t NowMs();

}  // namespace orrery::mqtt
