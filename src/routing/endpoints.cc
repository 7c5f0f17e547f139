#include "routing/endpoints.h"

#include <algorithm>
#include <climits>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "archive/format.h"
#include "base/crypto.h"
#include "base/files.h"
#include "base/log.h"
#include "base/strings.h"
#include "base/time.h"
#include "net/http_client.h"
#include "routing/annotation.h"
#include "routing/errc.h"

namespace orrery::routing {
namespace json = boost::json;

namespace {

const std::shared_ptr<spdlog::logger>& Log() {
  static auto l = log::Get("routing");
  return l;
}

std::string GroupOf(std::string_view endpoint) {
  return "route." + std::string(endpoint);
}

// A stable text for an endpoint's configuration: a change restarts its worker.
std::string Fingerprint(const json::object& o) {
  return json::serialize(o);
}

constexpr int64_t kCheckpointIntervalMs = 1000;
constexpr size_t kReadBatch = 1024;  // up to a webhook's largest batch: one POST per round

// ---------------------------------------------------------------- webhook

class WebhookSink final : public Sink {
 public:
  WebhookSink(WebhookEndpoint config, EndpointOptions options)
      : config_(std::move(config)), options_(std::move(options)) {
    health_.endpoint = config_.name;
  }

  void Add(const eventlog::Event& e, StopToken& stop) override {
    auto& b = batches_[e.partition];
    if (b.events.empty()) b.first_ms = options_.now_ms();
    b.events.push_back(e);
    if (b.events.size() >= static_cast<size_t>(config_.max_batch_size)) Send(e.partition, stop);
  }

  void Flush(int64_t now_ms, bool force, StopToken& stop) override {
    for (auto& [p, b] : batches_) {
      if (!b.events.empty() && (force || now_ms - b.first_ms >= config_.linger_ms)) Send(p, stop);
      if (stop.stopping()) return;
    }
  }

  std::optional<uint64_t> PendingFrom(uint32_t partition) const override {
    auto it = batches_.find(partition);
    if (it == batches_.end() || it->second.events.empty()) return std::nullopt;
    return it->second.events.front().sequence;
  }

  int64_t NextDeadlineMs() const override {
    int64_t next = INT64_MAX;
    for (auto& [p, b] : batches_) {
      if (!b.events.empty()) next = std::min(next, b.first_ms + config_.linger_ms);
    }
    return next;
  }

  EndpointHealth Health() const override {
    std::lock_guard lock(health_mu_);
    return health_;
  }

 private:
  struct Batch {
    std::vector<eventlog::Event> events;
    int64_t first_ms = 0;
  };

  void Note(bool ok, const std::string& error, bool dead) {
    std::lock_guard lock(health_mu_);
    int64_t now = options_.now_ms();
    health_.last_attempt_ms = now;
    if (ok) {
      health_.status = HealthStatus::kHealthy;
      health_.last_success_ms = now;
    } else {
      health_.status = dead ? HealthStatus::kDead : HealthStatus::kUnhealthy;
      health_.last_error = error;
      health_.last_error_ms = now;
    }
  }

  // Delivers one partition's batch: retries with exponential backoff, then dead-letters.
  // Returns with the batch gone, except when the worker is stopping (then it stays pending
  // and is delivered again after the restart).
  void Send(uint32_t partition, StopToken& stop) {
    Batch& b = batches_[partition];
    if (b.events.empty()) return;
    std::string body = "[";
    if (config_.format != WebhookEndpoint::Format::kRoutingRecord) {
      // Each message is a structured CloudEvent (CloudEvents' HTTP binding, batched content
      // mode) or a JSON row already.
      for (auto& e : b.events) {
        if (body.size() > 1) body += ',';
        body += e.message.body;
      }
    } else {
      // IoT Hub's routing record shape, as the storage endpoint's JSON encoding writes it.
      std::string lines;
      for (auto& e : b.events)
        archive::AppendJsonLine(archive::MakeRecord(e), &lines);
      for (auto line : strings::Split(lines, '\n')) {
        if (line.empty()) continue;
        if (body.size() > 1) body += ',';
        body += line;
      }
    }
    body += ']';
    std::string delivery =
        fmt::format("{}-{}-{}", config_.name, partition, b.events.front().sequence);
    int64_t backoff_ms = 1000;
    std::string error;
    for (int64_t attempt = 1; attempt <= config_.max_attempts; ++attempt) {
      net::Headers h;
      h.Set("Content-Type", config_.format == WebhookEndpoint::Format::kCloudEvents
                                ? "application/cloudevents-batch+json; charset=utf-8"
                                : "application/json");
      h.Set("X-Orrery-Signature", "sha256=" + WebhookSignature(config_.secret, body));
      h.Set("X-Orrery-Delivery", delivery);
      h.Set("X-Orrery-Attempt", std::to_string(attempt));
      auto r = Post(std::move(h), body);
      if (r && r->status >= 200 && r->status < 300) {
        Note(true, "", false);
        if (options_.metrics) Delivered(b.events.size());
        b.events.clear();
        return;
      }
      error = r ? fmt::format("HTTP {}", r->status) : r.error().message();
      Note(false, error, false);
      Log()->warn("webhook '{}': attempt {} of {} failed: {}", config_.name, attempt,
                  config_.max_attempts, error);
      if (attempt == config_.max_attempts) break;
      if (!stop.SleepFor(backoff_ms)) return;  // shutting down: keep the batch pending
      backoff_ms = std::min<int64_t>(backoff_ms * 2, 60'000);
    }
    DeadLetter(partition, body, error);
    b.events.clear();
  }

  // Deliveries reuse one keep-alive connection: a TLS handshake (and a trust-store load) per
  // batch made the handshake, not the receiver, the webhook's pace. A failed attempt drops
  // the connection; the next one opens a fresh connection.
  Result<net::HttpResponse> Post(net::Headers headers, const std::string& body) {
    if (!http_) {
      net::HttpClientOptions o;
      o.tls = options_.webhook_tls;
      o.timeout = std::chrono::seconds(config_.timeout_s);
      o.max_response_bytes = 64 << 10;
      ORRERY_ASSIGN_OR_RETURN(http_, net::HttpSession::Create(std::move(o)));
    }
    return http_->Send("POST", config_.url, std::move(headers), body);
  }

  void DeadLetter(uint32_t partition, const std::string& body, const std::string& error) {
    Batch& b = batches_[partition];
    auto dir = options_.dead_letter_root / config_.name;
    auto file = dir / fmt::format("{}-{}-{}.json", partition, b.events.front().sequence,
                                  b.events.back().sequence);
    auto st = files::EnsureDirectory(dir, std::filesystem::perms::owner_all);
    if (st) st = files::WriteFileAtomic(file, body + "\n", files::kSecretPerms);
    if (!st) {
      // Keeping the batch would block the endpoint forever; the log keeps the messages until
      // retention, and the log line says where they were.
      Log()->error("webhook '{}': could not dead-letter partition {} sequences {}..{}: {}",
                   config_.name, partition, b.events.front().sequence, b.events.back().sequence,
                   st.error().message());
    } else {
      Log()->error("webhook '{}': gave up after {} attempts ({}); {} messages dead-lettered to {}",
                   config_.name, config_.max_attempts, error, b.events.size(), file.string());
    }
    {
      std::lock_guard lock(health_mu_);
      health_.dead_lettered += b.events.size();
    }
    Note(false, error, true);
  }

  void Delivered(size_t n) {
    std::lock_guard lock(health_mu_);
    health_.delivered += n;
  }

  WebhookEndpoint config_;
  EndpointOptions options_;
  std::map<uint32_t, Batch> batches_;
  std::unique_ptr<net::HttpSession> http_;  // worker thread only
  mutable std::mutex health_mu_;
  EndpointHealth health_;
};

}  // namespace

std::string_view HealthName(HealthStatus s) {
  switch (s) {
    case HealthStatus::kUnknown:
      return "unknown";
    case HealthStatus::kHealthy:
      return "healthy";
    case HealthStatus::kUnhealthy:
      return "unhealthy";
    case HealthStatus::kDead:
      return "dead";
  }
  return "unknown";
}

std::string WebhookSignature(std::string_view secret, std::string_view body) {
  return crypto::HexEncode(crypto::HmacSha256(secret, body));
}

std::unique_ptr<Sink> MakeWebhookSink(const WebhookEndpoint& config,
                                      const EndpointOptions& options) {
  return std::make_unique<WebhookSink>(config, options);
}

// ---------------------------------------------------------------- worker

class EndpointManager::Worker final : public StopToken {
 public:
  // `every_event`: the sink takes every event of the log, not only those routed to `name`.
  Worker(std::string name, std::string group, bool every_event, eventlog::EventLog* log,
         eventlog::Visibility visibility, std::unique_ptr<Sink> sink,
         std::function<int64_t()> now_ms)
      : name_(std::move(name)),
        group_(std::move(group)),
        every_event_(every_event),
        log_(log),
        visibility_(visibility),
        sink_(std::move(sink)),
        now_ms_(std::move(now_ms)),
        wake_(std::make_shared<Wake>()) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Worker() { Stop(); }

  void Stop() {
    {
      std::lock_guard lock(wake_->mu);
      if (stopping_) return;
      stopping_ = true;
      wake_->woken = true;
    }
    wake_->cv.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  bool SleepFor(int64_t ms) override {
    std::unique_lock lock(wake_->mu);
    wake_->cv.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping_; });
    return !stopping_;
  }
  bool stopping() const override {
    std::lock_guard lock(wake_->mu);
    return stopping_;
  }
  EndpointHealth Health() const { return sink_->Health(); }
  const std::string& group() const { return group_; }

 private:
  // Shared with the log's wake-up hooks, which may outlive the worker.
  struct Wake {
    std::mutex mu;
    std::condition_variable cv;
    bool woken = false;
  };

  void Run() {
    uint32_t parts = log_->partition_count();
    std::vector<std::unique_ptr<eventlog::Reader>> readers(parts);
    std::vector<uint64_t> next(parts, 0), saved(parts, 0);
    for (uint32_t p = 0; p < parts; ++p) {
      auto r = log_->OpenReaderAtCheckpoint(group_, p, eventlog::Position::Latest(), visibility_);
      if (!r) {
        Log()->error("endpoint '{}': cannot read partition {}: {}", name_, p, r.error().message());
        continue;
      }
      next[p] = saved[p] = (*r)->next_sequence();
      readers[p] = std::move(*r);
    }
    int64_t last_checkpoint = now_ms_();
    while (!stopping()) {
      bool any = false;
      for (uint32_t p = 0; p < parts && !stopping(); ++p) {
        if (!readers[p]) continue;
        auto batch = readers[p]->TryRead(kReadBatch);
        if (!batch) continue;  // closed or corrupt: logged by the log itself
        for (auto& e : batch->events) {
          any = true;
          next[p] = e.sequence + 1;
          const std::string& note = e.message.system.route_annotation;
          if (every_event_) {
            sink_->Add(e, *this);
            continue;
          }
          if (!RoutedTo(note, name_)) continue;
          for (auto& kv : EnrichmentsFor(note, name_))
            e.message.properties.push_back(std::move(kv));
          sink_->Add(e, *this);
        }
        if (batch->skipped) any = true;
        if (!batch->events.empty()) next[p] = std::max(next[p], readers[p]->next_sequence());
      }
      int64_t now = now_ms_();
      sink_->Flush(now, false, *this);
      for (uint32_t p = 0; p < parts; ++p) {
        auto from = sink_->TakeRewind(p, now);
        if (!from) continue;
        auto r = log_->OpenReader(p, eventlog::Position::Sequence(*from), visibility_);
        if (!r) continue;
        readers[p] = std::move(*r);
        next[p] = readers[p]->next_sequence();
        any = true;
      }
      if (now - last_checkpoint >= kCheckpointIntervalMs) {
        Checkpoint(readers, next, saved);
        last_checkpoint = now;
      }
      if (any) continue;
      // Nothing to read: sleep until the log appends, the sink's deadline, or a second.
      {
        std::lock_guard lock(wake_->mu);
        wake_->woken = false;
      }
      for (auto& r : readers) {
        if (!r) continue;
        std::weak_ptr<Wake> weak = wake_;
        bool kept = r->NotifyWhenReadable([weak] {
          if (auto w = weak.lock()) {
            std::lock_guard lock(w->mu);
            w->woken = true;
            w->cv.notify_all();
          }
        });
        if (!kept) {
          std::lock_guard lock(wake_->mu);
          wake_->woken = true;
        }
      }
      int64_t wait = std::clamp<int64_t>(sink_->NextDeadlineMs() - now_ms_(), 0, 1000);
      std::unique_lock lock(wake_->mu);
      wake_->cv.wait_for(lock, std::chrono::milliseconds(wait),
                         [&] { return wake_->woken || stopping_; });
    }
    // Stopping: deliver what can be delivered, record how far.
    sink_->Flush(now_ms_(), true, *this);
    Checkpoint(readers, next, saved);
  }

  void Checkpoint(const std::vector<std::unique_ptr<eventlog::Reader>>& readers,
                  const std::vector<uint64_t>& next, std::vector<uint64_t>& saved) {
    for (uint32_t p = 0; p < next.size(); ++p) {
      uint64_t safe = sink_->PendingFrom(p).value_or(next[p]);
      // What a power loss can take must be read again after it.
      if (visibility_ == eventlog::Visibility::kWritten && readers[p]) {
        safe = std::min(safe, readers[p]->durable_next());
      }
      if (safe <= saved[p]) continue;
      if (auto st = log_->consumer_groups().Checkpoint(group_, p, safe); !st) {
        Log()->error("endpoint '{}': checkpoint of partition {} failed: {}", name_, p,
                     st.error().message());
        continue;
      }
      saved[p] = safe;
    }
  }

  const std::string name_;
  const std::string group_;
  const bool every_event_;
  eventlog::EventLog* log_;
  const eventlog::Visibility visibility_;
  std::unique_ptr<Sink> sink_;
  std::function<int64_t()> now_ms_;
  std::shared_ptr<Wake> wake_;
  bool stopping_ = false;  // guarded by wake_->mu
  std::thread thread_;
};

// ---------------------------------------------------------------- manager

EndpointManager::EndpointManager(eventlog::EventLog* log, EndpointOptions options)
    : log_(log), options_(std::move(options)) {
  if (!options_.now_ms) options_.now_ms = &timeutil::NowMs;
  if (auto* m = options_.metrics) {
    collector_ = metrics::ScopedCollector(*m, [this](metrics::Sink& sink) {
      for (auto& h : Health()) {
        metrics::Labels l{{"endpoint", h.endpoint}};
        sink.Counter("orrery_routing_endpoint_delivered_total",
                     "Messages an endpoint delivered (files published, webhook 2xx).", l,
                     static_cast<double>(h.delivered));
        sink.Counter("orrery_routing_endpoint_dead_lettered_total",
                     "Messages a webhook endpoint gave up on and dead-lettered.", l,
                     static_cast<double>(h.dead_lettered));
        sink.Gauge("orrery_routing_endpoint_health",
                   "Endpoint health: 0 unknown, 1 healthy, 2 unhealthy (retrying), 3 dead.", l,
                   static_cast<double>(h.status));
      }
    });
  }
}

EndpointManager::~EndpointManager() {
  collector_.Reset();
  Stop();
}

Status EndpointManager::Apply(const RoutingConfig& config) {
  std::map<std::string, std::pair<std::string, std::function<std::unique_ptr<Sink>()>>> wanted;
  json::object full = ConfigToJson(config, /*with_secrets=*/true);
  auto& eps = full["endpoints"].as_object();
  for (size_t i = 0; i < config.storage.size(); ++i) {
    const auto& s = config.storage[i];
    wanted[s.name] = {Fingerprint(eps["storageContainers"].as_array()[i].as_object()),
                      [s, this] { return MakeStorageSink(s, options_); }};
  }
  for (size_t i = 0; i < config.webhooks.size(); ++i) {
    const auto& w = config.webhooks[i];
    wanted[w.name] = {Fingerprint(eps["webhooks"].as_array()[i].as_object()),
                      [w, this] { return MakeWebhookSink(w, options_); }};
  }
  std::lock_guard lock(mu_);
  // Stop what went away or changed.
  for (auto it = workers_.begin(); it != workers_.end();) {
    auto w = wanted.find(it->first);
    if (w != wanted.end() && w->second.first == fingerprints_[it->first]) {
      ++it;
      continue;
    }
    it->second->Stop();
    if (w == wanted.end()) {
      (void)log_->consumer_groups().Delete(GroupOf(it->first));
      fingerprints_.erase(it->first);
    }
    it = workers_.erase(it);
  }
  // Start what is new or changed; a new endpoint takes messages from the log's end on.
  auto& groups = log_->consumer_groups();
  // Groups of endpoints that are gone (also those removed while the server was down).
  for (auto& g : groups.List()) {
    if (g.starts_with("route.") && !wanted.count(g.substr(6))) (void)groups.Delete(g);
  }
  for (auto& [name, spec] : wanted) {
    if (workers_.count(name)) continue;
    std::string group = GroupOf(name);
    ORRERY_TRY(EnsureGroupAtEnd(group));
    workers_[name] = std::make_unique<Worker>(name, group, false, log_, options_.visibility,
                                              spec.second(), options_.now_ms);
    fingerprints_[name] = spec.first;
  }
  return Ok();
}

Status EndpointManager::EnsureGroupAtEnd(const std::string& group) {
  auto& groups = log_->consumer_groups();
  if (groups.Exists(group)) return Ok();
  ORRERY_TRY(groups.Create(group));
  for (uint32_t p = 0; p < log_->partition_count(); ++p) {
    auto props = log_->GetPartitionProperties(p);
    if (!props) return props.error();
    ORRERY_TRY(groups.Checkpoint(group, p, props->next_sequence));
  }
  return Ok();
}

Status EndpointManager::AttachConsumer(std::string name, std::string group,
                                       std::unique_ptr<Sink> sink, bool routed_only) {
  if (group.starts_with("route.")) {
    return Error(BaseErrc::kInvalidArgument, "consumer groups route.* belong to endpoints");
  }
  std::lock_guard lock(mu_);
  if (attached_.count(name)) {
    return Error(BaseErrc::kInvalidArgument, fmt::format("consumer '{}' is attached", name));
  }
  ORRERY_TRY(EnsureGroupAtEnd(group));
  attached_[name] = std::make_unique<Worker>(name, std::move(group), !routed_only, log_,
                                             options_.visibility, std::move(sink), options_.now_ms);
  return Ok();
}

void EndpointManager::DetachConsumer(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = attached_.find(name);
  if (it == attached_.end()) return;
  std::string group = it->second->group();
  it->second->Stop();
  attached_.erase(it);
  if (auto st = log_->consumer_groups().Delete(group); !st) {
    Log()->warn("consumer '{}': group '{}' not deleted: {}", name, group, st.error().message());
  }
}

void EndpointManager::Stop() {
  std::lock_guard lock(mu_);
  for (auto& [name, w] : workers_)
    w->Stop();
  workers_.clear();
  for (auto& [name, w] : attached_)
    w->Stop();
  attached_.clear();
}

std::vector<EndpointHealth> EndpointManager::Health() const {
  std::lock_guard lock(mu_);
  std::vector<EndpointHealth> out;
  for (auto& [name, w] : workers_)
    out.push_back(w->Health());
  return out;
}

}  // namespace orrery::routing
