#include "hub/c2d.h"

#include <algorithm>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "base/log.h"
#include "base/time.h"
#include "hub/errc.h"
#include "hub/json_fields.h"

namespace orrery::hub {
namespace json = boost::json;

namespace {

constexpr std::string_view kC2dSpace = "hub.c2d";
constexpr std::string_view kFeedbackSpace = "hub.feedback";

std::string Seq8(uint64_t seq) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i)
    s[static_cast<size_t>(i)] = static_cast<char>((seq >> (56 - 8 * i)) & 0xFF);
  return s;
}

uint64_t FromSeq8(std::string_view s) {
  uint64_t v = 0;
  for (char c : s.substr(s.size() - 8))
    v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

std::string MessageKey(std::string_view device, uint64_t seq) {
  std::string k(device);
  k += '\0';
  k += Seq8(seq);
  return k;
}

std::string EncodeMessage(const C2dMessage& m, std::string_view generation_id) {
  json::array props;
  for (auto& [k, v] : m.properties)
    props.push_back(json::array{json::string(k), json::string(v)});
  json::object o{{"mid", m.message_id},
                 {"cid", m.correlation_id},
                 {"uid", m.user_id},
                 {"ct", m.content_type},
                 {"ce", m.content_encoding},
                 {"to", m.to},
                 {"ack", AckModeName(m.ack)},
                 {"props", std::move(props)},
                 {"body", crypto::Base64Encode(m.body)},
                 {"exp", m.expiry_ms},
                 {"enq", m.enqueued_ms},
                 {"dc", m.delivery_count},
                 {"gen", generation_id}};
  return json::serialize(o);
}

std::optional<C2dMessage> DecodeMessage(std::string_view bytes, std::string& generation_id) {
  boost::system::error_code ec;
  json::value v = json::parse(bytes, ec);
  if (ec || !v.is_object()) return std::nullopt;
  auto& o = v.get_object();
  auto str = [&](std::string_view k) { return StringField(o, k); };
  auto num = [&](std::string_view k) { return IntField(o, k); };
  C2dMessage m;
  m.message_id = str("mid");
  m.correlation_id = str("cid");
  m.user_id = str("uid");
  m.content_type = str("ct");
  m.content_encoding = str("ce");
  m.to = str("to");
  auto ack = ParseAckMode(str("ack"));
  m.ack = ack ? *ack : AckMode::kNone;
  if (auto* p = o.if_contains("props"); p && p->is_array()) {
    for (auto& kv : p->get_array()) {
      if (!kv.is_array() || kv.get_array().size() != 2 || !kv.get_array()[0].is_string() ||
          !kv.get_array()[1].is_string()) {
        return std::nullopt;
      }
      m.properties.emplace_back(kv.get_array()[0].get_string(), kv.get_array()[1].get_string());
    }
  }
  auto body = crypto::Base64Decode(str("body"));
  if (!body) return std::nullopt;
  m.body = std::move(*body);
  m.expiry_ms = num("exp");
  m.enqueued_ms = num("enq");
  m.delivery_count = static_cast<uint32_t>(num("dc"));
  generation_id = str("gen");
  return m;
}

std::string EncodeFeedback(const FeedbackRecord& r) {
  return json::serialize(json::object{{"originalMessageId", r.original_message_id},
                                      {"deviceId", r.device_id},
                                      {"deviceGenerationId", r.device_generation_id},
                                      {"statusCode", r.status_code},
                                      {"description", r.description},
                                      {"enqueuedMs", r.enqueued_ms}});
}

std::optional<FeedbackRecord> DecodeFeedback(std::string_view bytes) {
  boost::system::error_code ec;
  json::value v = json::parse(bytes, ec);
  if (ec || !v.is_object()) return std::nullopt;
  auto& o = v.get_object();
  auto str = [&](std::string_view k) { return StringField(o, k); };
  FeedbackRecord r;
  r.original_message_id = str("originalMessageId");
  r.device_id = str("deviceId");
  r.device_generation_id = str("deviceGenerationId");
  r.status_code = str("statusCode");
  r.description = str("description");
  if (auto* x = o.if_contains("enqueuedMs")) r.enqueued_ms = x->to_number<int64_t>(ec);
  return r;
}

std::string_view DescriptionFor(std::string_view status) {
  if (status == "Success") return "Success";
  if (status == "Expired") return "Message expired";
  if (status == "DeliveryCountExceeded") return "Delivery count exceeded";
  if (status == "Rejected") return "Message rejected";
  if (status == "Purged") return "Message purged";
  return status;
}

bool WantsFeedback(AckMode ack, std::string_view status) {
  bool positive = status == "Success";
  switch (ack) {
    case AckMode::kNone:
      return false;
    case AckMode::kFull:
      return true;
    case AckMode::kPositive:
      return positive;
    case AckMode::kNegative:
      return !positive;
  }
  return false;
}

std::string NewLockToken() {
  return crypto::RandomUuid();
}

}  // namespace

Result<AckMode> ParseAckMode(std::string_view t) {
  if (t.empty() || t == "none") return AckMode::kNone;
  if (t == "positive") return AckMode::kPositive;
  if (t == "negative") return AckMode::kNegative;
  if (t == "full") return AckMode::kFull;
  return Error(Errc::kInvalidArgument,
               fmt::format("iothub-ack '{}' is not one of none, positive, negative, full", t));
}

std::string_view AckModeName(AckMode m) {
  switch (m) {
    case AckMode::kNone:
      return "none";
    case AckMode::kPositive:
      return "positive";
    case AckMode::kNegative:
      return "negative";
    case AckMode::kFull:
      return "full";
  }
  return "none";
}

C2dQueues::C2dQueues(store::KvStore* store, C2dOptions options)
    : store_(store), options_(std::move(options)) {
  if (!options_.now_ms) options_.now_ms = &timeutil::NowMs;
  if (auto* m = options_.metrics) {
    auto c = [&](std::string_view outcome) {
      return &m->GetCounter("orrery_hub_c2d_messages_total",
                            "Cloud-to-device messages, by outcome.",
                            {{"outcome", std::string(outcome)}});
    };
    sent_ = c("enqueued");
    completed_ = c("completed");
    dead_lettered_ = c("dead_lettered");
    expired_ = c("expired");
  }
}

C2dQueues::~C2dQueues() = default;

Result<std::unique_ptr<C2dQueues>> C2dQueues::Open(store::KvStore* store, C2dOptions options) {
  std::unique_ptr<C2dQueues> q(new C2dQueues(store, std::move(options)));
  ORRERY_TRY(q->Load());
  return q;
}

Status C2dQueues::Load() {
  std::lock_guard lock(mu_);
  size_t corrupt = 0;
  ORRERY_TRY(store_->Scan(kC2dSpace, "", [&](std::string_view key, std::string_view value) {
    auto nul = key.find('\0');
    if (nul == std::string_view::npos || key.size() != nul + 9) {
      ++corrupt;
      return true;
    }
    std::string gen;
    auto m = DecodeMessage(value, gen);
    if (!m) {
      ++corrupt;
      return true;
    }
    m->sequence = FromSeq8(key);
    next_sequence_ = std::max(next_sequence_, m->sequence + 1);
    auto& q = queues_[std::string(key.substr(0, nul))];
    q.generation_id = gen;
    q.items.push_back(Item{std::move(*m)});
    return true;
  }));
  ORRERY_TRY(store_->Scan(kFeedbackSpace, "", [&](std::string_view key, std::string_view value) {
    auto r = DecodeFeedback(value);
    if (!r || key.size() != 8) {
      ++corrupt;
      return true;
    }
    uint64_t seq = FromSeq8(key);
    next_feedback_ = std::max(next_feedback_, seq + 1);
    feedback_.push_back(FeedbackItem{seq, std::move(*r), {}, 0});
    return true;
  }));
  if (corrupt) log::Get("hub")->error("cloud-to-device: skipped {} corrupt records", corrupt);
  return Ok();
}

void C2dQueues::SetDepthListener(std::function<void(const std::string&, size_t)> listener) {
  depth_listener_ = std::move(listener);
}

void C2dQueues::NotifyDepth(const std::string& device, size_t depth) {
  if (depth_listener_) depth_listener_(device, depth);
}

void C2dQueues::Commit(store::WriteBatch batch) {
  if (batch.empty()) return;
  store_->WriteAsync(std::move(batch), [](Status st) {
    if (!st) {
      log::Get("hub")->error("cloud-to-device: could not store a change: {}", st.error().message());
    }
  });
}

void C2dQueues::AddFeedback(const FeedbackRecord& r, store::WriteBatch& batch) {
  if (feedback_.size() >= options_.max_feedback_records) {
    batch.Delete(kFeedbackSpace, Seq8(feedback_.front().sequence));
    feedback_.pop_front();
  }
  uint64_t seq = next_feedback_++;
  feedback_.push_back(FeedbackItem{seq, r, {}, 0});
  batch.Put(kFeedbackSpace, Seq8(seq), EncodeFeedback(r));
}

void C2dQueues::Settle(const std::string& device, Queue& q, std::deque<Item>::iterator it,
                       std::string_view status, store::WriteBatch& batch) {
  const C2dMessage& m = it->message;
  if (WantsFeedback(m.ack, status)) {
    FeedbackRecord r;
    r.original_message_id = m.message_id;
    r.device_id = device;
    r.device_generation_id = q.generation_id;
    r.status_code = std::string(status);
    r.description = std::string(DescriptionFor(status));
    r.enqueued_ms = Now();
    AddFeedback(r, batch);
  }
  batch.Delete(kC2dSpace, MessageKey(device, m.sequence));
  if (status == "Success" && completed_) completed_->Inc();
  if (status == "Expired" && expired_) expired_->Inc();
  if ((status == "DeliveryCountExceeded" || status == "Rejected") && dead_lettered_)
    dead_lettered_->Inc();
  q.items.erase(it);
}

void C2dQueues::Clean(const std::string& device, Queue& q, int64_t now, store::WriteBatch& batch) {
  for (size_t i = 0; i < q.items.size();) {
    Item& item = q.items[i];
    auto at = q.items.begin() + static_cast<std::ptrdiff_t>(i);
    if (item.state == Item::State::kLocked && item.lock_until_ms <= now) {
      item.state = Item::State::kEnqueued;  // lock timed out: deliverable again
      item.message.lock_token.clear();
    }
    if (item.state != Item::State::kInFlight && item.message.expiry_ms <= now) {
      Settle(device, q, at, "Expired", batch);
      continue;
    }
    if (item.state == Item::State::kEnqueued &&
        item.message.delivery_count >= options_.max_delivery_count) {
      Settle(device, q, at, "DeliveryCountExceeded", batch);
      continue;
    }
    ++i;
  }
}

void C2dQueues::Send(std::string_view device_id, std::string_view generation_id, C2dMessage message,
                     std::function<void(Result<size_t>)> done) {
  if (message.body.size() > options_.max_message_bytes) {
    return done(Error(Errc::kTooLarge,
                      fmt::format("the message body is {} bytes; cloud-to-device messages are "
                                  "limited to {} bytes",
                                  message.body.size(), options_.max_message_bytes)));
  }
  int64_t now = Now();
  if (message.expiry_ms == 0) {
    message.expiry_ms = now + options_.default_ttl_ms;
  } else if (message.expiry_ms <= now) {
    return done(Error(Errc::kInvalidArgument, "the message's expiry time is in the past"));
  } else if (message.expiry_ms > now + options_.max_ttl_ms) {
    return done(Error(Errc::kInvalidArgument,
                      fmt::format("the message's expiry time is more than {} hours away",
                                  options_.max_ttl_ms / 3'600'000)));
  }
  message.enqueued_ms = now;
  message.delivery_count = 0;
  if (message.message_id.empty()) message.message_id = NewLockToken();
  store::WriteBatch batch;
  size_t depth;
  std::string device(device_id);
  {
    std::lock_guard lock(mu_);
    auto& q = queues_[device];
    q.generation_id = std::string(generation_id);
    Clean(device, q, now, batch);
    if (q.items.size() >= options_.max_queue_depth) {
      Commit(std::move(batch));
      return done(Error(Errc::kQuotaExceeded,
                        fmt::format("the cloud-to-device queue of device '{}' is full ({} "
                                    "messages, cloud_to_device.max_queue_depth)",
                                    device, q.items.size())));
    }
    message.sequence = next_sequence_++;
    batch.Put(kC2dSpace, MessageKey(device, message.sequence),
              EncodeMessage(message, q.generation_id));
    q.items.push_back(Item{std::move(message)});
    depth = q.items.size();
    if (sent_) sent_->Inc();
    store_->WriteAsync(std::move(batch), [done = std::move(done), depth](Status st) {
      if (!st) return done(Error(Errc::kUnavailable, st.error().message()));
      done(depth);
    });
  }
  NotifyDepth(device, depth);
}

std::vector<C2dMessage> C2dQueues::TakeForDelivery(std::string_view device_id, size_t max) {
  std::vector<C2dMessage> out;
  store::WriteBatch batch;
  size_t depth = 0;
  bool changed = false;
  {
    std::lock_guard lock(mu_);
    auto it = queues_.find(device_id);
    if (it == queues_.end()) return out;
    size_t before = it->second.items.size();
    Clean(it->first, it->second, Now(), batch);
    size_t in_flight = 0;
    for (auto& item : it->second.items) {
      if (item.state == Item::State::kInFlight) ++in_flight;
    }
    for (auto& item : it->second.items) {
      if (in_flight + out.size() >= max) break;
      if (item.state != Item::State::kEnqueued) continue;
      item.state = Item::State::kInFlight;
      ++item.message.delivery_count;
      batch.Put(kC2dSpace, MessageKey(it->first, item.message.sequence),
                EncodeMessage(item.message, it->second.generation_id));
      out.push_back(item.message);
    }
    depth = it->second.items.size();
    changed = depth != before;
  }
  Commit(std::move(batch));
  if (changed) NotifyDepth(std::string(device_id), depth);
  return out;
}

void C2dQueues::DeliveredOverMqtt(std::string_view device_id, uint64_t sequence) {
  store::WriteBatch batch;
  size_t depth = 0;
  {
    std::lock_guard lock(mu_);
    auto q = queues_.find(device_id);
    if (q == queues_.end()) return;
    auto it = std::find_if(q->second.items.begin(), q->second.items.end(),
                           [&](const Item& i) { return i.message.sequence == sequence; });
    if (it == q->second.items.end()) return;
    Settle(q->first, q->second, it, "Success", batch);
    depth = q->second.items.size();
  }
  Commit(std::move(batch));
  NotifyDepth(std::string(device_id), depth);
}

void C2dQueues::MqttDeliveryFailed(std::string_view device_id, uint64_t sequence) {
  std::lock_guard lock(mu_);
  auto q = queues_.find(device_id);
  if (q == queues_.end()) return;
  for (auto& item : q->second.items) {
    if (item.message.sequence == sequence && item.state == Item::State::kInFlight) {
      item.state = Item::State::kEnqueued;
    }
  }
}

std::optional<C2dMessage> C2dQueues::Receive(std::string_view device_id) {
  store::WriteBatch batch;
  std::optional<C2dMessage> out;
  size_t depth = 0;
  bool changed = false;
  {
    std::lock_guard lock(mu_);
    auto q = queues_.find(device_id);
    if (q == queues_.end()) return std::nullopt;
    int64_t now = Now();
    size_t before = q->second.items.size();
    Clean(q->first, q->second, now, batch);
    for (auto& item : q->second.items) {
      if (item.state != Item::State::kEnqueued) continue;
      item.state = Item::State::kLocked;
      item.lock_until_ms = now + options_.lock_timeout_ms;
      item.message.lock_token = NewLockToken();
      ++item.message.delivery_count;
      batch.Put(kC2dSpace, MessageKey(q->first, item.message.sequence),
                EncodeMessage(item.message, q->second.generation_id));
      out = item.message;
      break;
    }
    depth = q->second.items.size();
    changed = depth != before;
  }
  Commit(std::move(batch));
  if (changed) NotifyDepth(std::string(device_id), depth);
  return out;
}

std::deque<C2dQueues::Item>::iterator C2dQueues::FindLocked(Queue& q, std::string_view lock_token) {
  int64_t now = Now();
  return std::find_if(q.items.begin(), q.items.end(), [&](const Item& i) {
    return i.state == Item::State::kLocked && i.lock_until_ms > now &&
           i.message.lock_token == lock_token;
  });
}

void C2dQueues::Commit(store::WriteBatch batch, std::function<void(Status)> done) {
  if (batch.empty()) return done(Ok());
  store_->WriteAsync(std::move(batch), [done = std::move(done)](Status st) {
    if (!st) return done(Error(Errc::kUnavailable, st.error().message()));
    done(Ok());
  });
}

void C2dQueues::SettleLocked(std::string_view device_id, std::string_view lock_token,
                             std::string_view outcome, std::function<void(Status)> done) {
  store::WriteBatch batch;
  size_t depth;
  {
    std::lock_guard lock(mu_);
    auto q = queues_.find(device_id);
    auto it = q == queues_.end() ? std::deque<Item>::iterator() : FindLocked(q->second, lock_token);
    if (q == queues_.end() || it == q->second.items.end()) {
      return done(Error(Errc::kDeviceMessageLockLost, "the lock token is unknown or has expired"));
    }
    if (outcome.empty()) {
      // Abandon: deliverable again (or dead-lettered when delivered too often).
      it->state = Item::State::kEnqueued;
      it->message.lock_token.clear();
      Clean(q->first, q->second, Now(), batch);
    } else {
      Settle(q->first, q->second, it, outcome, batch);
    }
    depth = q->second.items.size();
  }
  Commit(std::move(batch), std::move(done));
  NotifyDepth(std::string(device_id), depth);
}

void C2dQueues::Complete(std::string_view device_id, std::string_view lock_token,
                         std::function<void(Status)> done) {
  SettleLocked(device_id, lock_token, "Success", std::move(done));
}

void C2dQueues::Reject(std::string_view device_id, std::string_view lock_token,
                       std::function<void(Status)> done) {
  SettleLocked(device_id, lock_token, "Rejected", std::move(done));
}

void C2dQueues::Abandon(std::string_view device_id, std::string_view lock_token,
                        std::function<void(Status)> done) {
  SettleLocked(device_id, lock_token, "", std::move(done));
}

void C2dQueues::Purge(std::string_view device_id, bool device_deleted,
                      std::function<void(Result<size_t>)> done) {
  store::WriteBatch batch;
  size_t n = 0;
  {
    std::lock_guard lock(mu_);
    auto q = queues_.find(device_id);
    if (q != queues_.end()) {
      n = q->second.items.size();
      while (!q->second.items.empty()) {
        Settle(q->first, q->second, q->second.items.begin(), "Purged", batch);
      }
      if (device_deleted) queues_.erase(q);
    }
  }
  Commit(std::move(batch), [n, done = std::move(done)](Status st) {
    if (!st) return done(st.error());
    done(n);
  });
  NotifyDepth(std::string(device_id), 0);
}

size_t C2dQueues::Depth(std::string_view device_id) const {
  std::lock_guard lock(mu_);
  auto q = queues_.find(device_id);
  return q == queues_.end() ? 0 : q->second.items.size();
}

std::vector<std::string> C2dQueues::Sweep() {
  store::WriteBatch batch;
  std::vector<std::string> ready;
  std::vector<std::pair<std::string, size_t>> depths;
  {
    std::lock_guard lock(mu_);
    int64_t now = Now();
    for (auto& [device, q] : queues_) {
      size_t before = q.items.size();
      bool had_locked = std::any_of(q.items.begin(), q.items.end(), [&](const Item& i) {
        return i.state == Item::State::kLocked && i.lock_until_ms <= now;
      });
      Clean(device, q, now, batch);
      if (q.items.size() != before) depths.emplace_back(device, q.items.size());
      if (had_locked) ready.push_back(device);
    }
    int64_t fnow = now;
    for (auto& f : feedback_) {
      if (!f.lock_token.empty() && f.lock_until_ms <= fnow) f.lock_token.clear();
    }
  }
  Commit(std::move(batch));
  for (auto& [d, n] : depths)
    NotifyDepth(d, n);
  return ready;
}

std::optional<C2dQueues::FeedbackBatch> C2dQueues::ReceiveFeedback(size_t max) {
  std::lock_guard lock(mu_);
  int64_t now = Now();
  FeedbackBatch b;
  b.lock_token = NewLockToken();
  for (auto& f : feedback_) {
    if (b.records.size() >= max) break;
    if (!f.lock_token.empty() && f.lock_until_ms > now) continue;
    f.lock_token = b.lock_token;
    f.lock_until_ms = now + options_.lock_timeout_ms;
    b.records.push_back(f.record);
  }
  if (b.records.empty()) return std::nullopt;
  b.enqueued_ms = b.records.front().enqueued_ms;
  return b;
}

void C2dQueues::CompleteFeedback(std::string_view lock_token, std::function<void(Status)> done) {
  store::WriteBatch batch;
  {
    std::lock_guard lock(mu_);
    int64_t now = Now();
    size_t before = feedback_.size();
    std::erase_if(feedback_, [&](const FeedbackItem& f) {
      bool match = f.lock_token == lock_token && f.lock_until_ms > now;
      if (match) batch.Delete(kFeedbackSpace, Seq8(f.sequence));
      return match;
    });
    if (feedback_.size() == before) {
      return done(
          Error(Errc::kDeviceMessageLockLost, "the feedback lock token is unknown or has expired"));
    }
  }
  Commit(std::move(batch), std::move(done));
}

Status C2dQueues::AbandonFeedback(std::string_view lock_token) {
  std::lock_guard lock(mu_);
  bool any = false;
  for (auto& f : feedback_) {
    if (f.lock_token == lock_token) {
      f.lock_token.clear();
      any = true;
    }
  }
  if (!any) {
    return Error(Errc::kDeviceMessageLockLost, "the feedback lock token is unknown or has expired");
  }
  return Ok();
}

}  // namespace orrery::hub
