#include "api/eventhub.h"

#include <charconv>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "base/log.h"
#include "base/strings.h"
#include "base/time.h"
#include "eventlog/event_log.h"
#include "hub/policies.h"
#include "routing/annotation.h"

namespace orrery::api {
namespace json = boost::json;
using net::HttpRequest;
using net::HttpResponse;
using net::Responder;

namespace {

constexpr size_t kEventsPerRead = 32;
constexpr size_t kBytesPerPump = 1 << 20;  // stop gathering once this much is queued
constexpr size_t kMaxCommandBytes = 4096;  // one client command line

struct Shared {
  EventHubApiOptions options;
  std::atomic<size_t> streams{0};
  metrics::Gauge* streams_gauge = nullptr;
  metrics::Counter* events_sent = nullptr;
};

int64_t NowS() {
  return timeutil::NowMs() / 1000;
}

HttpResponse Error400(std::string message) {
  return HttpResponse::JsonError(400, "ArgumentInvalid", message);
}

std::optional<HttpResponse> Authorize(const Shared& s, const HttpRequest& req) {
  std::optional<std::string_view> token = req.headers.Get("Authorization");
  if (!token) token = req.Query("authorization");
  if (!token) {
    return HttpResponse::JsonError(
        401, "IotHubUnauthorizedAccess",
        "missing credentials: send 'Authorization: SharedAccessSignature …' signed by a policy "
        "with ServiceConnect");
  }
  auto policy = s.options.policies->Authenticate(*token, hub::kServiceConnect, NowS());
  if (!policy) {
    int status = policy.error().Is(hub::Errc::kForbidden) ? 403 : 401;
    return HttpResponse::JsonError(status, "IotHubUnauthorizedAccess", policy.error().message());
  }
  return std::nullopt;
}

// Maps the event log's errors to HTTP statuses.
HttpResponse FromError(const Error& e) {
  using eventlog::Errc;
  if (e.code() == make_error_code(Errc::kGroupNotFound))
    return HttpResponse::JsonError(404, "ConsumerGroupNotFound", e.message());
  if (e.code() == make_error_code(Errc::kGroupExists))
    return HttpResponse::JsonError(409, "ConsumerGroupAlreadyExists", e.message());
  if (e.code() == make_error_code(Errc::kInvalidArgument)) return Error400(e.message());
  return HttpResponse::JsonError(500, "ServerError", e.message());
}

Result<uint32_t> ParsePartition(const eventlog::EventLog& log, std::string_view text) {
  uint32_t p = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), p);
  if (ec != std::errc() || end != text.data() + text.size() || p >= log.partition_count()) {
    return Error(eventlog::Errc::kInvalidArgument,
                 fmt::format("partition must be 0..{}", log.partition_count() - 1));
  }
  return p;
}

// "checkpoint" | "earliest" | "latest" | "sequence:N" | "time:<ISO 8601 or ms>".
struct From {
  bool checkpoint = false;
  eventlog::Position position = eventlog::Position::Earliest();
};
std::optional<From> ParseFrom(std::string_view text) {
  From f;
  if (text.empty() || text == "checkpoint") {
    f.checkpoint = true;  // falls back to earliest, as Event Hubs processors do
  } else if (text == "earliest") {
    f.position = eventlog::Position::Earliest();
  } else if (text == "latest") {
    f.position = eventlog::Position::Latest();
  } else if (text.starts_with("sequence:")) {
    auto v = text.substr(9);
    uint64_t seq = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), seq);
    if (ec != std::errc() || end != v.data() + v.size()) return std::nullopt;
    f.position = eventlog::Position::Sequence(seq);
  } else if (text.starts_with("time:")) {
    auto v = text.substr(5);
    int64_t ms = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), ms);
    if (ec != std::errc() || end != v.data() + v.size()) {
      auto parsed = timeutil::ParseUtcMs(v);
      if (!parsed) return std::nullopt;
      ms = *parsed;
    }
    f.position = eventlog::Position::EnqueuedTime(ms);
  } else {
    return std::nullopt;
  }
  return f;
}

json::object SystemPropertiesJson(const eventlog::SystemProperties& s) {
  json::object o;
  auto put = [&](std::string_view key, const std::string& v) {
    if (!v.empty()) o[key] = v;
  };
  put("message-id", s.message_id);
  put("correlation-id", s.correlation_id);
  put("content-type", s.content_type);
  put("content-encoding", s.content_encoding);
  put("user-id", s.user_id);
  put("to", s.to);
  put("iothub-connection-device-id", s.connection_device_id);
  put("iothub-connection-module-id", s.connection_module_id);
  put("iothub-connection-auth-method", s.connection_auth_method);
  put("iothub-connection-auth-generation-id", s.connection_auth_generation_id);
  put("iothub-message-source", s.message_source);
  if (s.enqueued_time_ms) o["iothub-enqueuedtime"] = timeutil::FormatUtcMs(s.enqueued_time_ms);
  if (s.expiry_time_ms) o["absolute-expiry-time"] = timeutil::FormatUtcMs(s.expiry_time_ms);
  return o;
}

std::string EventJson(const eventlog::Event& e) {
  json::object o;
  o["type"] = "event";
  o["partition"] = e.partition;
  o["sequenceNumber"] = e.sequence;
  o["offset"] = std::to_string(e.offset);
  o["enqueuedTime"] = timeutil::FormatUtcMs(e.enqueued_ms);
  if (strings::IsValidUtf8(e.message.body)) {
    o["body"] = e.message.body;
    o["bodyEncoding"] = "utf-8";
  } else {
    o["body"] = crypto::Base64Encode(e.message.body);
    o["bodyEncoding"] = "base64";
  }
  json::object props;
  for (auto& [k, v] : e.message.properties)
    props[k] = v;  // a repeated key keeps its last value, as AMQP maps do
  o["properties"] = std::move(props);
  o["systemProperties"] = SystemPropertiesJson(e.message.system);
  return json::serialize(o);
}

// One WebSocket subscriber: pumps its readers into the socket, one message per event.
// Lives on the stream's executor; hooks from the log's sync thread only post to it.
class EventStream : public std::enable_shared_from_this<EventStream> {
 public:
  EventStream(std::shared_ptr<Shared> shared, net::StreamPtr stream, std::string group,
              std::vector<std::unique_ptr<eventlog::Reader>> readers, std::string device_filter)
      : shared_(std::move(shared)),
        stream_(std::move(stream)),
        group_(std::move(group)),
        readers_(std::move(readers)),
        waiting_(readers_.size(), false),
        device_filter_(std::move(device_filter)) {
    shared_->streams.fetch_add(1);
    if (shared_->streams_gauge) shared_->streams_gauge->Add(1);
  }
  ~EventStream() {
    shared_->streams.fetch_sub(1);
    if (shared_->streams_gauge) shared_->streams_gauge->Add(-1);
  }

  void Start() {
    ReadCommands();
    Pump();
  }

 private:
  void Pump() {
    if (closed_ || writing_ || failing_) return;
    bool progress = false;
    size_t bytes = 0;
    for (size_t n = 0; n < readers_.size() && bytes < kBytesPerPump; ++n) {
      size_t i = (next_reader_ + n) % readers_.size();
      if (waiting_[i]) continue;
      auto batch = readers_[i]->TryRead(kEventsPerRead);
      if (!batch) {
        bool closed = batch.error().code() == make_error_code(eventlog::Errc::kClosed);
        return Fail(closed ? "the event log is shutting down" : batch.error().message());
      }
      if (batch->skipped) {
        progress = true;
        Queue(json::serialize(json::object{{"type", "skipped"},
                                           {"partition", readers_[i]->partition()},
                                           {"count", batch->skipped}}),
              bytes);
      }
      if (batch->events.empty()) {
        // Nothing now: sleep on this partition until the log appends to it.
        waiting_[i] = true;
        std::weak_ptr<EventStream> weak = weak_from_this();
        auto executor = stream_->executor();
        bool kept = readers_[i]->NotifyWhenReadable([weak, executor, i] {
          boost::asio::post(executor, [weak, i] {
            if (auto self = weak.lock()) {
              self->waiting_[i] = false;
              self->Pump();
            }
          });
        });
        if (!kept) {
          waiting_[i] = false;
          progress = true;  // data arrived in between: look again
        }
        continue;
      }
      progress = true;
      for (auto& e : batch->events) {
        if (!device_filter_.empty() && e.message.system.connection_device_id != device_filter_)
          continue;
        // The built-in endpoint carries what routing sent to it, with its enrichments.
        const std::string& routing = e.message.system.route_annotation;
        if (!routing::RoutedTo(routing, routing::kBuiltInEndpoint)) continue;
        for (auto& kv : routing::EnrichmentsFor(routing, routing::kBuiltInEndpoint))
          e.message.properties.push_back(std::move(kv));
        Queue(EventJson(e), bytes);
        if (shared_->events_sent) shared_->events_sent->Inc();
      }
    }
    next_reader_ = (next_reader_ + 1) % readers_.size();
    if (!out_.empty()) return WriteNext();
    if (progress) {
      boost::asio::post(stream_->executor(), [self = shared_from_this()] { self->Pump(); });
    }
  }

  void Queue(std::string message, size_t& bytes) {
    bytes += message.size();
    out_.push_back(std::move(message));
  }

  void WriteNext() {
    if (closed_) return;
    if (out_.empty()) {
      writing_ = false;
      if (failing_) return Close();
      return Pump();
    }
    writing_ = true;
    buffer_ = boost::asio::buffer(out_.front());
    stream_->AsyncWrite(
        std::span(&buffer_, 1),
        [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
          if (ec) return self->Close();
          self->out_.pop_front();
          self->WriteNext();
        });
  }

  void ReadCommands() {
    stream_->AsyncRead(
        boost::asio::buffer(read_buf_),
        [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
          if (ec) return self->Close();
          self->line_.append(self->read_buf_.data(), n);
          size_t nl;
          while ((nl = self->line_.find('\n')) != std::string::npos) {
            std::string command = self->line_.substr(0, nl);
            self->line_.erase(0, nl + 1);
            if (!strings::Trim(command).empty()) self->HandleCommand(command);
          }
          if (self->line_.size() > kMaxCommandBytes) {
            return self->Fail(fmt::format("a command exceeds {} bytes", kMaxCommandBytes));
          }
          if (!self->closed_) self->ReadCommands();
        });
  }

  void Reply(json::object o) {
    if (failing_ || closed_) return;
    out_.push_back(json::serialize(o));
    if (!writing_) WriteNext();
  }
  void ReplyError(std::string message) {
    Reply(json::object{{"type", "error"}, {"message", std::move(message)}});
  }

  void HandleCommand(const std::string& text) {
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec || !v.is_object()) return ReplyError("a command must be a JSON object");
    auto& o = v.as_object();
    auto* op = o.if_contains("op");
    if (!op || !op->is_string() || op->as_string() != "checkpoint") {
      return ReplyError("unknown command: expected {\"op\":\"checkpoint\",…}");
    }
    auto* p = o.if_contains("partition");
    auto* seq = o.if_contains("sequenceNumber");
    if (!p || !p->is_number() || !seq || !seq->is_number()) {
      return ReplyError("checkpoint needs integer 'partition' and 'sequenceNumber'");
    }
    auto partition = json::try_value_to<uint32_t>(*p);
    auto sequence = json::try_value_to<uint64_t>(*seq);
    if (!partition || !sequence) {
      return ReplyError("checkpoint needs integer 'partition' and 'sequenceNumber'");
    }
    bool mine = false;
    for (auto& r : readers_)
      mine |= r->partition() == *partition;
    if (!mine) return ReplyError(fmt::format("this stream does not read partition {}", *partition));
    auto executor = stream_->executor();
    boost::asio::post(shared_->options.blocking, [self = shared_from_this(), executor,
                                                  part = *partition, next = *sequence] {
      auto st = self->shared_->options.log->consumer_groups().Checkpoint(self->group_, part, next);
      boost::asio::post(executor, [self, st, part, next] {
        if (!st) return self->ReplyError(st.error().message());
        self->Reply(
            json::object{{"type", "checkpoint"}, {"partition", part}, {"sequenceNumber", next}});
      });
    });
  }

  // Tells the client why, then closes.
  void Fail(std::string why) {
    if (closed_ || failing_) return;
    failing_ = true;
    // Drop what is queued, except a message being written (its buffer is in use).
    while (out_.size() > (writing_ ? 1u : 0u))
      out_.pop_back();
    out_.push_back(json::serialize(json::object{{"type", "error"}, {"message", std::move(why)}}));
    if (!writing_) WriteNext();
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    stream_->Close();
  }

  std::shared_ptr<Shared> shared_;
  net::StreamPtr stream_;
  std::string group_;
  std::vector<std::unique_ptr<eventlog::Reader>> readers_;
  std::vector<bool> waiting_;  // a readiness hook is registered for this reader
  std::string device_filter_;
  size_t next_reader_ = 0;
  std::deque<std::string> out_;
  boost::asio::const_buffer buffer_;
  bool writing_ = false;
  bool failing_ = false;  // an error message is queued; close once it is sent
  bool closed_ = false;
  std::array<char, 1024> read_buf_{};
  std::string line_;
};

// What the upgrade check decided, for the handler (both run on the connection's thread; the
// handler re-parses the query because a check cannot hand over state).
struct StreamRequest {
  std::string group;
  std::vector<uint32_t> partitions;
  From from;
  std::string device;
};

Result<StreamRequest> ParseStreamRequest(
    const Shared& s, const std::vector<std::pair<std::string, std::string>>& q) {
  auto get = [&](std::string_view key) -> std::optional<std::string_view> {
    for (auto& [k, v] : q)
      if (k == key) return v;
    return std::nullopt;
  };
  auto& log = *s.options.log;
  StreamRequest r;
  r.group = std::string(get("consumerGroup").value_or(eventlog::kDefaultConsumerGroup));
  if (!log.consumer_groups().Exists(r.group)) {
    return Error(eventlog::Errc::kGroupNotFound, fmt::format("no consumer group '{}'", r.group));
  }
  if (auto p = get("partition"); p && !p->empty()) {
    ORRERY_ASSIGN_OR_RETURN(uint32_t parsed, ParsePartition(log, *p));
    r.partitions.push_back(parsed);
  } else {
    for (uint32_t i = 0; i < log.partition_count(); ++i)
      r.partitions.push_back(i);
  }
  auto from = ParseFrom(get("from").value_or(""));
  if (!from) {
    return Error(eventlog::Errc::kInvalidArgument,
                 "'from' must be checkpoint, earliest, latest, sequence:<n> or time:<ISO 8601|ms>");
  }
  r.from = *from;
  r.device = std::string(get("deviceId").value_or(""));
  return r;
}

json::object PartitionJson(const eventlog::PartitionProperties& p) {
  json::object o{{"partitionId", std::to_string(p.partition)},
                 {"beginningSequenceNumber", p.beginning_sequence},
                 {"nextSequenceNumber", p.next_sequence},
                 {"isEmpty", p.empty},
                 {"bytes", p.bytes_on_disk},
                 {"segments", p.segments}};
  if (!p.empty) {
    o["lastEnqueuedSequenceNumber"] = p.next_sequence - 1;
    o["lastEnqueuedOffset"] = std::to_string(p.last_offset);
    o["lastEnqueuedTimeUtc"] = timeutil::FormatUtcMs(p.last_enqueued_ms);
  }
  return o;
}

// Runs an authorized handler; blocking ones go to the blocking pool.
net::HttpHandler Guard(std::shared_ptr<Shared> s, bool blocking,
                       std::function<HttpResponse(Shared&, const HttpRequest&)> f) {
  return [s, blocking, f = std::move(f)](HttpRequest& req, Responder r) {
    if (auto refusal = Authorize(*s, req)) return r.Send(std::move(*refusal));
    if (!blocking) return r.Send(f(*s, req));
    boost::asio::post(s->options.blocking, [s, f, req = std::move(req), r] { r.Send(f(*s, req)); });
  };
}

}  // namespace

void RegisterEventHubRoutes(net::Router& router, const EventHubApiOptions& options) {
  auto shared = std::make_shared<Shared>();
  shared->options = options;
  if (options.metrics) {
    shared->streams_gauge = &options.metrics->GetGauge("orrery_eventhub_streams",
                                                       "Open event-stream WebSocket connections.");
    shared->events_sent = &options.metrics->GetCounter("orrery_eventhub_events_sent_total",
                                                       "Events sent to event-stream WebSockets.");
  }

  router.Add("GET", "/eventhub", Guard(shared, false, [](Shared& s, const HttpRequest&) {
               auto& log = *s.options.log;
               json::array parts, ids;
               for (uint32_t p = 0; p < log.partition_count(); ++p) {
                 ids.push_back(json::value(std::to_string(p)));
                 auto props = log.GetPartitionProperties(p);
                 if (!props) return FromError(props.error());
                 parts.push_back(PartitionJson(*props));
               }
               json::array groups;
               for (auto& g : log.consumer_groups().List())
                 groups.push_back(json::value(g));
               return HttpResponse::Json(
                   200, json::serialize(json::object{{"partitionCount", log.partition_count()},
                                                     {"partitionIds", std::move(ids)},
                                                     {"consumerGroups", std::move(groups)},
                                                     {"partitions", std::move(parts)}}));
             }));

  router.Add("GET", "/eventhub/consumergroups",
             Guard(shared, false, [](Shared& s, const HttpRequest&) {
               json::array groups;
               for (auto& g : s.options.log->consumer_groups().List())
                 groups.push_back(json::object{{"name", g}});
               return HttpResponse::Json(200, json::serialize(groups));
             }));
  router.Add("PUT", "/eventhub/consumergroups/{name}",
             Guard(shared, true, [](Shared& s, const HttpRequest& req) {
               std::string name(req.Param("name"));
               auto st = s.options.log->consumer_groups().Create(name);
               if (!st) return FromError(st.error());
               return HttpResponse::Json(201, json::serialize(json::object{{"name", name}}));
             }));
  router.Add("DELETE", "/eventhub/consumergroups/{name}",
             Guard(shared, true, [](Shared& s, const HttpRequest& req) {
               auto st = s.options.log->consumer_groups().Delete(req.Param("name"));
               if (!st) return FromError(st.error());
               return HttpResponse::Empty(204);
             }));

  router.Add("GET", "/eventhub/consumergroups/{group}/partitions/{partition}/checkpoint",
             Guard(shared, false, [](Shared& s, const HttpRequest& req) {
               auto p = ParsePartition(*s.options.log, req.Param("partition"));
               if (!p) return FromError(p.error());
               auto c = s.options.log->consumer_groups().GetCheckpoint(req.Param("group"), *p);
               if (!c) return FromError(c.error());
               json::object o{{"consumerGroup", req.Param("group")}, {"partition", *p}};
               if (*c) o["sequenceNumber"] = **c;
               return HttpResponse::Json(200, json::serialize(o));
             }));
  router.Add("PUT", "/eventhub/consumergroups/{group}/partitions/{partition}/checkpoint",
             Guard(shared, true,
                   [](Shared& s, const HttpRequest& req) {
                     auto p = ParsePartition(*s.options.log, req.Param("partition"));
                     if (!p) return FromError(p.error());
                     boost::system::error_code ec;
                     json::value body = json::parse(req.body, ec);
                     const json::value* seq = ec || !body.is_object()
                                                  ? nullptr
                                                  : body.as_object().if_contains("sequenceNumber");
                     auto next = seq ? json::try_value_to<uint64_t>(*seq)
                                     : json::try_value_to<uint64_t>(json::value());
                     if (!next)
                       return Error400("body must be {\"sequenceNumber\": <next to read>}");
                     auto st =
                         s.options.log->consumer_groups().Checkpoint(req.Param("group"), *p, *next);
                     if (!st) return FromError(st.error());
                     return HttpResponse::Json(
                         200, json::serialize(json::object{{"consumerGroup", req.Param("group")},
                                                           {"partition", *p},
                                                           {"sequenceNumber", *next}}));
                   }),
             {.max_body = 1024});

  net::WebSocketRoute events;
  events.path = "/eventhub/events";
  events.text = true;
  events.max_message = kMaxCommandBytes * 4;
  events.check = [shared](const HttpRequest& req) -> std::optional<HttpResponse> {
    if (auto refusal = Authorize(*shared, req)) return refusal;
    if (shared->streams.load() >= shared->options.max_streams) {
      return HttpResponse::JsonError(
          503, "ServiceUnavailable",
          fmt::format("at most {} event streams may be open", shared->options.max_streams));
    }
    auto parsed = ParseStreamRequest(*shared, req.query);
    if (!parsed) return FromError(parsed.error());
    return std::nullopt;
  };
  events.handler = [shared](net::StreamPtr stream) {
    auto parsed = ParseStreamRequest(*shared, stream->peer().websocket_query);
    if (!parsed) {
      stream->Close();
      return;
    }
    auto& log = *shared->options.log;
    std::vector<std::unique_ptr<eventlog::Reader>> readers;
    for (uint32_t p : parsed->partitions) {
      auto reader = parsed->from.checkpoint ? log.OpenReaderAtCheckpoint(
                                                  parsed->group, p, eventlog::Position::Earliest())
                                            : log.OpenReader(p, parsed->from.position);
      if (!reader) {
        log::Get("eventhub")->warn("cannot open a reader: {}", reader.error().message());
        stream->Close();
        return;
      }
      readers.push_back(std::move(*reader));
    }
    std::make_shared<EventStream>(shared, std::move(stream), parsed->group, std::move(readers),
                                  parsed->device)
        ->Start();
  };
  router.AddWebSocket(std::move(events));
}

}  // namespace orrery::api
