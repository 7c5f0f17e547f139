#include "mqtt/broker.h"

#include <algorithm>

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/crypto.h"
#include "base/log.h"
#include "mqtt/connection.h"
#include "mqtt/persistence.h"
#include "mqtt/topic.h"

namespace orrery::mqtt {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Broker::Timer {
  explicit Timer(boost::asio::any_io_executor ex) : t(ex) {}
  boost::asio::steady_timer t;
};

namespace {

const std::shared_ptr<spdlog::logger>& Log() {
  static auto l = log::Get("mqtt");
  return l;
}

}  // namespace

Broker::Broker(BrokerOptions options, store::KvStore* store, std::shared_ptr<Authenticator> authn,
               std::shared_ptr<Authorizer> authz, boost::asio::any_io_executor housekeeping)
    : options_(std::move(options)),
      store_(store),
      authn_(std::move(authn)),
      authz_(std::move(authz)),
      housekeeping_(std::move(housekeeping)),
      timer_(std::make_unique<Timer>(housekeeping_)) {
  if (!options_.now_ms) options_.now_ms = &NowMs;
  if (auto* m = options_.metrics) {
    auto c = [&](const char* name, const char* help) { return &m->GetCounter(name, help); };
    metrics_.connects = c("orrery_mqtt_connects_total", "MQTT connections accepted (CONNACK 0).");
    metrics_.connect_refused =
        c("orrery_mqtt_connects_refused_total", "MQTT CONNECTs refused (non-zero CONNACK).");
    metrics_.protocol_errors = c("orrery_mqtt_protocol_errors_total",
                                 "Connections closed for malformed packets or protocol errors.");
    metrics_.publish_in = c("orrery_mqtt_publish_received_total", "PUBLISH packets received.");
    metrics_.publish_out = c("orrery_mqtt_publish_sent_total", "PUBLISH packets sent.");
    metrics_.bytes_in =
        c("orrery_mqtt_received_bytes_total", "Bytes received on MQTT connections.");
    metrics_.bytes_out = c("orrery_mqtt_sent_bytes_total", "Bytes sent on MQTT connections.");
    metrics_.dropped_queue_full = &m->GetCounter(
        "orrery_mqtt_dropped_total", "Messages dropped, by reason.", {{"reason", "queue_full"}});
    metrics_.dropped_expired = &m->GetCounter(
        "orrery_mqtt_dropped_total", "Messages dropped, by reason.", {{"reason", "expired"}});
    metrics_.dropped_too_large =
        &m->GetCounter("orrery_mqtt_dropped_total", "Messages dropped, by reason.",
                       {{"reason", "too_large_for_client"}});
    metrics_.denied = c("orrery_mqtt_denied_total", "Publishes and subscriptions refused by ACLs.");
    metrics_.takeovers = c("orrery_mqtt_takeovers_total",
                           "Connections closed because a new one took over the client id.");
    metrics_.keepalive_timeouts =
        c("orrery_mqtt_keepalive_timeouts_total", "Connections closed for keep-alive timeout.");
    metrics_.online = &m->GetGauge("orrery_mqtt_clients_online", "Connected MQTT clients.");
    collector_ = metrics::ScopedCollector(*m, [this](metrics::Sink& s) {
      s.Gauge("orrery_mqtt_sessions", "Sessions (connected and persistent offline).", {},
              static_cast<double>(session_count()));
      s.Gauge("orrery_mqtt_subscriptions", "Subscriptions in the topic tree.", {},
              static_cast<double>(subscription_count()));
      s.Gauge("orrery_mqtt_retained_messages", "Retained messages.", {},
              static_cast<double>(retained_count()));
    });
  }
}

Broker::~Broker() {
  stopping_ = true;
  collector_.Reset();
}

size_t Broker::session_count() const {
  std::lock_guard lock(sessions_mu_);
  return sessions_.size();
}

size_t Broker::connection_count() const {
  std::lock_guard lock(conns_mu_);
  return connections_.size();
}

size_t Broker::retained_count() const {
  std::shared_lock lock(retained_mu_);
  return retained_.size();
}

Status Broker::Load() {
  if (!store_) return Ok();
  size_t sessions = 0, queued = 0, retained = 0, corrupt = 0;
  ORRERY_TRY(store_->Scan(persist::kRetained, "", [&](std::string_view, std::string_view value) {
    auto m = persist::DecodeMessage(value);
    if (!m) {
      ++corrupt;
      return true;
    }
    auto msg = m->out.message;
    retained_[msg->topic] = msg;
    ++retained;
    return true;
  }));
  std::vector<SessionPtr> loaded;
  ORRERY_TRY(
      store_->Scan(persist::kSessions, "", [&](std::string_view key, std::string_view value) {
        auto s = std::make_shared<Session>(std::string(key));
        if (!persist::DecodeSession(value, *s)) {
          ++corrupt;
          return true;
        }
        loaded.push_back(s);
        return true;
      }));
  int64_t now = Now();
  for (auto& s : loaded) {
    for (auto& [filter, sub] : s->subscriptions) {
      tree_.Add(filter, s, sub.options, sub.subscription_id);
    }
    RestoreQueue(s);
    queued += s->queue.size() + s->inflight.size();
    if (s->disconnected_at_ms == 0) s->disconnected_at_ms = now;  // was online when we stopped
    sessions_[s->client_id] = s;
    if (s->expiry_s != kSessionNeverExpires) {
      expiring_.emplace(s->disconnected_at_ms + int64_t{s->expiry_s} * 1000, s->client_id);
    }
    ++sessions;
  }
  Log()->info("restored {} persistent sessions with {} queued messages and {} retained messages{}",
              sessions, queued, retained,
              corrupt ? fmt::format(" ({} corrupt records skipped)", corrupt) : "");
  return Ok();
}

void Broker::RestoreQueue(const SessionPtr& s) {
  store::WriteBatch fix;
  store_->Scan(persist::kQueue, persist::QueuePrefix(s->client_id),
               [&](std::string_view key, std::string_view value) {
                 auto m = persist::DecodeMessage(value);
                 uint64_t seq = 0;
                 for (size_t i = key.size() - 8; i < key.size(); ++i) {
                   seq = (seq << 8) | static_cast<uint8_t>(key[i]);
                 }
                 if (!m) {
                   fix.Delete(persist::kQueue, key);
                   return true;
                 }
                 m->out.store_seq = seq;
                 s->next_store_seq = std::max(s->next_store_seq, seq + 1);
                 if (m->state && m->packet_id != 0 && !s->inflight.count(m->packet_id)) {
                   s->inflight[m->packet_id] = Inflight{std::move(m->out), *m->state};
                 } else {
                   s->queue.push_back(std::move(m->out));
                 }
                 return true;
               });
  if (!fix.empty()) (void)store_->Write(std::move(fix), store::Durability::kBuffered);
}

void Broker::Start() {
  ScheduleHousekeeping();
}

void Broker::ScheduleHousekeeping() {
  if (stopping_) return;
  timer_->t.expires_after(options_.housekeeping_interval);
  timer_->t.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    Sweep();
    ScheduleHousekeeping();
  });
}

void Broker::Sweep() {
  int64_t now = Now();
  std::vector<SessionPtr> expired;
  std::vector<PendingWill> due;
  {
    std::lock_guard lock(sessions_mu_);
    while (!expiring_.empty() && expiring_.begin()->first <= now) {
      auto it = sessions_.find(expiring_.begin()->second);
      if (it != sessions_.end() && !it->second->online.load()) {
        std::lock_guard sl(it->second->mu);
        int64_t due_at = it->second->disconnected_at_ms + int64_t{it->second->expiry_s} * 1000;
        if (it->second->expiry_s != kSessionNeverExpires && due_at <= now) {
          expired.push_back(it->second);
        }
      }
      expiring_.erase(expiring_.begin());
    }
    for (auto it = wills_.begin(); it != wills_.end();) {
      if (it->second.due_ms <= now) {
        due.push_back(std::move(it->second));
        it = wills_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& w : due)
    PublishWill(w.client, std::move(w.will));
  for (auto& s : expired) {
    Log()->debug("session {} expired", s->client_id);
    EndSession(s);
  }
}

void Broker::Shutdown() {
  stopping_ = true;
  boost::asio::post(housekeeping_, [this] { timer_->t.cancel(); });
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard lock(conns_mu_);
    for (auto& [p, w] : connections_) {
      if (auto c = w.lock()) live.push_back(std::move(c));
    }
  }
  for (auto& c : live)
    c->PostKick(Reason::kServerShuttingDown);
}

void Broker::SetInterceptor(std::shared_ptr<PublishInterceptor> i) {
  interceptor_ = std::move(i);
}
void Broker::SetObserver(std::shared_ptr<ConnectionObserver> o) {
  observer_ = std::move(o);
}

void Broker::Accept(net::StreamPtr stream) {
  auto conn = std::make_shared<Connection>(*this, std::move(stream));
  conn->Start();
}

void Broker::Register(const std::shared_ptr<Connection>& conn) {
  std::lock_guard lock(conns_mu_);
  connections_[conn.get()] = conn;
}

void Broker::Unregister(Connection* conn) {
  std::lock_guard lock(conns_mu_);
  connections_.erase(conn);
}

void Broker::NotifyConnected(const ClientInfo& client) {
  if (metrics_.online) metrics_.online->Add(1);
  if (observer_) observer_->OnConnected(client);
}

void Broker::NotifySubscribed(const ClientInfo& client, const std::string& filter) {
  if (observer_) observer_->OnSubscribed(client, filter);
}

Broker::Attached Broker::Attach(const std::shared_ptr<Connection>& conn,
                                const std::string& client_id, bool clean_start, uint32_t expiry_s,
                                Version version) {
  Attached result;
  std::shared_ptr<Connection> previous;
  SessionPtr discarded;
  {
    std::lock_guard lock(sessions_mu_);
    wills_.erase(client_id);  // reconnecting within the will delay cancels the will
    auto& slot = sessions_[client_id];
    if (slot) {
      std::lock_guard sl(slot->mu);
      previous = slot->connection.lock();
      if (clean_start) {
        discarded = slot;
      } else {
        result.present = true;
      }
    }
    if (!slot || discarded) slot = std::make_shared<Session>(client_id);
    result.session = slot;
    std::lock_guard sl(slot->mu);
    slot->connection = conn;
    slot->online = true;
    slot->version = version;
    slot->expiry_s = expiry_s;
    slot->disconnected_at_ms = 0;
  }
  if (previous && previous != conn) {
    if (metrics_.takeovers) metrics_.takeovers->Inc();
    previous->PostKick(Reason::kSessionTakenOver);
  }
  if (discarded) {
    // The old session's state goes away, but the old connection may still hold it: mark it.
    ClearSession(*discarded);
    if (store_) ForgetStoredSession(client_id);
  }
  if (store_ && expiry_s != 0) PersistSession(result.session, {});
  if (store_ && expiry_s == 0 && result.present) {
    // A persistent session resumed as a non-persistent one: forget its stored record.
    store::WriteBatch b;
    b.Delete(persist::kSessions, client_id);
    WriteQueue(std::move(b));
  }
  return result;
}

void Broker::Detach(const std::shared_ptr<Connection>& conn, const SessionPtr& session,
                    std::optional<Will> will, const ClientInfo& client) {
  if (metrics_.online) metrics_.online->Add(-1);
  bool end = false;
  uint32_t will_delay = 0;
  if (will && will->properties.will_delay_interval)
    will_delay = *will->properties.will_delay_interval;
  {
    std::lock_guard lock(sessions_mu_);
    std::lock_guard sl(session->mu);
    if (session->connection.lock() != conn) {
      // Taken over: a new connection for this client id opened, which cancels a delayed
      // will (MQTT 5 §3.1.2.5); a will without delay is still published.
      if (will_delay > 0) will.reset();
    } else {
      session->connection.reset();
      session->online = false;
      session->flush_scheduled = false;
      session->disconnected_at_ms = Now();
      if (session->expiry_s == 0) {
        end = true;
      } else if (session->expiry_s != kSessionNeverExpires) {
        expiring_.emplace(session->disconnected_at_ms + int64_t{session->expiry_s} * 1000,
                          session->client_id);
      }
      // The will is delayed by min(will delay, session expiry) (MQTT 5 §3.1.3.2.2).
      will_delay = std::min(will_delay, session->expiry_s);
    }
    if (will && will_delay > 0 && !end) {
      wills_[session->client_id] =
          PendingWill{client, std::move(*will), Now() + int64_t{will_delay} * 1000};
      will.reset();
    }
  }
  if (will) PublishWill(client, std::move(*will));
  if (end) {
    EndSession(session);
  } else if (store_ && session->persistent()) {
    PersistSession(session, {});
  }
  // Last, so an observer sees the disconnect only once its will and session state are settled.
  if (observer_) observer_->OnDisconnected(client);
}

void Broker::EndSession(const SessionPtr& s) {
  {
    std::lock_guard lock(sessions_mu_);
    auto it = sessions_.find(s->client_id);
    if (it != sessions_.end() && it->second == s) sessions_.erase(it);
  }
  bool persisted = ClearSession(*s);
  if (store_ && persisted) ForgetStoredSession(s->client_id);
}

bool Broker::ClearSession(Session& s) {
  std::vector<std::string> filters;
  bool persisted;
  {
    std::lock_guard sl(s.mu);
    s.ended = true;
    persisted = s.persistent();
    for (auto& [f, sub] : s.subscriptions)
      filters.push_back(f);
    s.subscriptions.clear();
    s.queue.clear();
    s.inflight.clear();
  }
  for (auto& f : filters)
    tree_.Remove(f, &s);
  return persisted;
}

void Broker::ForgetStoredSession(const std::string& client_id) {
  store::WriteBatch b;
  b.Delete(persist::kSessions, client_id);
  store_->Scan(persist::kQueue, persist::QueuePrefix(client_id),
               [&](std::string_view key, std::string_view) {
                 b.Delete(persist::kQueue, key);
                 return true;
               });
  WriteQueue(std::move(b));
}

void Broker::PublishWill(const ClientInfo& client, Will will) {
  if (authz_->CanPublish(client, will.topic) != Access::kAllow) {
    if (metrics_.denied) metrics_.denied->Inc();
    return;
  }
  auto m = std::make_shared<Message>();
  m->topic = std::move(will.topic);
  m->payload = std::move(will.payload);
  m->qos = will.qos;
  m->retain = will.retain;
  m->publisher = client.client_id;
  Properties p = std::move(will.properties);
  p.will_delay_interval.reset();
  if (p.message_expiry_interval)
    m->expires_at_ms = Now() + int64_t{*p.message_expiry_interval} * 1000;
  p.message_expiry_interval.reset();
  if (!(p == Properties{})) m->properties = std::make_unique<Properties>(std::move(p));
  Route(client, std::move(m), [](Reason) {});
}

void Broker::Publish(MessagePtr message, std::function<void(Status)> durable) {
  ClientInfo server;
  Route(server, std::move(message), [durable = std::move(durable)](Reason r) {
    if (!durable) return;
    if (IsError(r)) {
      durable(Error(BaseErrc::kIo, fmt::format("publish failed: {}", ReasonName(r))));
    } else {
      durable(Ok());
    }
  });
}

void Broker::Disconnect(std::string_view client_id, Reason reason) {
  std::shared_ptr<Connection> conn;
  {
    std::lock_guard lock(sessions_mu_);
    auto it = sessions_.find(std::string(client_id));
    if (it == sessions_.end()) return;
    std::lock_guard sl(it->second->mu);
    conn = it->second->connection.lock();
  }
  if (conn) conn->PostKick(reason);
}

namespace {
// The granted QoS of the session's best subscription matching `topic`, or -1. REQUIRES: s.mu.
int MatchingQos(const Session& s, std::string_view topic) {
  int best = -1;
  for (auto& [filter, sub] : s.subscriptions) {
    if (TopicMatches(filter, topic)) best = std::max(best, int{sub.options.qos});
  }
  return best;
}
}  // namespace

DeliverResult Broker::DeliverTo(std::string_view client_id, MessagePtr message, uint8_t qos,
                                std::shared_ptr<DeliveryHook> hook) {
  SessionPtr s;
  {
    std::lock_guard lock(sessions_mu_);
    auto it = sessions_.find(std::string(client_id));
    if (it == sessions_.end()) return DeliverResult::kOffline;
    s = it->second;
  }
  Outgoing out;
  {
    std::lock_guard sl(s->mu);
    if (!s->online || s->ended) return DeliverResult::kOffline;
    int granted = MatchingQos(*s, message->topic);
    if (granted < 0) return DeliverResult::kNotSubscribed;
    out.qos = static_cast<uint8_t>(std::min<int>(granted, qos));
  }
  out.message = std::move(message);
  if (out.qos > 0) {
    out.hook = std::move(hook);
    return Enqueue(s, std::move(out)) ? DeliverResult::kQueued : DeliverResult::kDropped;
  }
  // A QoS 0 delivery is never acknowledged: it is settled once handed to the session (at
  // most once, as IoT Hub treats C2D to a QoS 0 subscription).
  bool queued = Enqueue(s, std::move(out));
  if (hook) hook->Settle(queued);
  return queued ? DeliverResult::kQueued : DeliverResult::kDropped;
}

bool Broker::IsSubscribed(std::string_view client_id, std::string_view topic) const {
  SessionPtr s;
  {
    std::lock_guard lock(sessions_mu_);
    auto it = sessions_.find(std::string(client_id));
    if (it == sessions_.end()) return false;
    s = it->second;
  }
  std::lock_guard sl(s->mu);
  return s->online && !s->ended && MatchingQos(*s, topic) >= 0;
}

void Broker::Route(const ClientInfo& client, MessagePtr message, std::function<void(Reason)> done) {
  if (interceptor_ && interceptor_->Intercept(client, message, done)) return;

  thread_local std::vector<Target> targets;
  targets.clear();
  tree_.Match(message->topic, targets);

  store::WriteBatch batch;
  if (message->retain && options_.retain_available) {
    std::unique_lock lock(retained_mu_);
    if (message->payload.empty()) {
      retained_.erase(message->topic);
      if (store_) batch.Delete(persist::kRetained, message->topic);
    } else {
      retained_[message->topic] = message;
      if (store_)
        batch.Put(
            persist::kRetained, message->topic,
            persist::EncodeMessage(Outgoing{message, message->qos, true, {}, 0}, std::nullopt, 0));
    }
  }

  // One delivery per session: the highest QoS and every subscription identifier of its
  // matching subscriptions (MQTT 5 §3.3.4).
  std::sort(targets.begin(), targets.end(),
            [](const Target& a, const Target& b) { return a.session < b.session; });
  struct Delivery {
    SessionPtr session;
    Outgoing out;
  };
  thread_local std::vector<Delivery> deliveries;
  deliveries.clear();
  for (size_t i = 0; i < targets.size();) {
    Session* s = targets[i].session.get();
    Outgoing out;
    out.message = message;
    bool any = false;
    size_t j = i;
    for (; j < targets.size() && targets[j].session.get() == s; ++j) {
      const Target& t = targets[j];
      if (t.options.no_local && !t.shared && s->client_id == message->publisher) continue;
      any = true;
      out.qos = std::max(out.qos, std::min(t.options.qos, message->qos));
      out.retain = out.retain || (t.options.retain_as_published && message->retain);
      if (t.subscription_id) out.subscription_ids.push_back(t.subscription_id);
    }
    if (any) deliveries.push_back({targets[i].session, std::move(out)});
    i = j;
  }

  // Copies for persistent sessions get their store sequence first and are written, in one
  // batch, before anyone can receive (and acknowledge, and delete) them.
  if (store_) {
    for (auto& d : deliveries) {
      if (d.out.qos == 0) continue;
      std::lock_guard sl(d.session->mu);
      if (!d.session->persistent() || d.session->ended) continue;
      d.out.store_seq = d.session->next_store_seq++;
      batch.Put(persist::kQueue, persist::QueueKey(d.session->client_id, d.out.store_seq),
                persist::EncodeMessage(d.out, std::nullopt, 0));
    }
  }
  bool durable_pending = !batch.empty();
  if (durable_pending) {
    store_->WriteAsync(std::move(batch), [done](Status st) {
      if (!st) log::Get("mqtt")->error("could not store a message: {}", st.error().message());
      done(st ? Reason::kSuccess : Reason::kUnspecifiedError);
    });
  }
  for (auto& d : deliveries)
    Enqueue(d.session, std::move(d.out));
  targets.clear();
  if (!durable_pending) {
    done(deliveries.empty() && message->qos > 0 ? Reason::kNoMatchingSubscribers
                                                : Reason::kSuccess);
  }
  deliveries.clear();
}

bool Broker::Enqueue(const SessionPtr& s, Outgoing out) {
  std::shared_ptr<Connection> conn;
  {
    std::lock_guard sl(s->mu);
    if (s->ended) return false;
    if (s->queue.size() >= options_.max_queued_messages) {
      if (metrics_.dropped_queue_full) metrics_.dropped_queue_full->Inc();
      if (out.store_seq && store_) {
        store::WriteBatch b;
        b.Delete(persist::kQueue, persist::QueueKey(s->client_id, out.store_seq));
        WriteQueue(std::move(b));
      }
      return false;
    }
    s->queue.push_back(std::move(out));
    if (!s->flush_scheduled) {
      conn = s->connection.lock();
      if (conn) s->flush_scheduled = true;
    }
  }
  if (conn) conn->PostFlush();
  return true;
}

Reason Broker::Subscribe(const ClientInfo& client, const SessionPtr& session,
                         const std::string& filter, SubscriptionOptions options,
                         uint32_t subscription_id, std::vector<MessagePtr>& retained) {
  if (!IsValidTopicFilter(filter)) return Reason::kTopicFilterInvalid;
  Access a = authz_->CanSubscribe(client, filter);
  if (a != Access::kAllow) {
    if (metrics_.denied) metrics_.denied->Inc();
    return Reason::kNotAuthorized;
  }
  bool is_new;
  {
    std::lock_guard sl(session->mu);
    auto it = session->subscriptions.find(filter);
    is_new = it == session->subscriptions.end();
    if (is_new && session->subscriptions.size() >= options_.max_subscriptions_per_client) {
      return Reason::kQuotaExceeded;
    }
    session->subscriptions[filter] = SubRecord{options, subscription_id};
  }
  tree_.Add(filter, session, options, subscription_id);
  auto shared = SplitShared(filter);
  bool send_retained = shared.group.empty() &&
                       (options.retain_handling == 0 || (options.retain_handling == 1 && is_new));
  if (send_retained) {
    std::shared_lock lock(retained_mu_);
    for (auto& [topic, msg] : retained_) {
      if (TopicMatches(filter, topic)) retained.push_back(msg);
    }
  }
  return static_cast<Reason>(options.qos);
}

Reason Broker::Unsubscribe(const SessionPtr& session, const std::string& filter) {
  {
    std::lock_guard sl(session->mu);
    if (!session->subscriptions.erase(filter)) return Reason::kNoSubscriptionExisted;
  }
  tree_.Remove(filter, session.get());
  return Reason::kSuccess;
}

void Broker::PersistSession(const SessionPtr& session, std::function<void(Status)> done) {
  if (!store_) {
    if (done) done(Ok());
    return;
  }
  store::WriteBatch b;
  {
    std::lock_guard sl(session->mu);
    if (session->ended || !session->persistent()) {
      if (done) done(Ok());
      return;
    }
    b.Put(persist::kSessions, session->client_id, persist::EncodeSession(*session));
  }
  store_->WriteAsync(std::move(b), [done = std::move(done)](Status st) {
    if (done) done(std::move(st));
  });
}

void Broker::WriteQueue(store::WriteBatch batch) {
  if (!store_ || batch.empty()) return;
  store_->WriteAsync(std::move(batch), [](Status st) {
    if (!st)
      log::Get("mqtt")->error("could not update the message store: {}", st.error().message());
  });
}

}  // namespace orrery::mqtt
