#include "asa/actions.h"

#include <future>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/log.h"
#include "base/strings.h"
#include "hub/errc.h"
#include "hub/hub.h"
#include "twins/errc.h"
#include "twins/twin_graph.h"

namespace orrery::asa {
namespace json = boost::json;

namespace {

const std::shared_ptr<spdlog::logger>& Log() {
  static auto l = log::Get("asa");
  return l;
}

constexpr int64_t kMaxBackoffMs = 30'000;

bool Transient(const Error& e) {
  return e.code() == hub::Errc::kUnavailable || e.code() == twins::Errc::kUnavailable ||
         e.code() == hub::Errc::kThrottled || e.code() == hub::Errc::kTimeout;
}

class ActionSink final : public routing::Sink {
 public:
  ActionSink(JobOutput output, std::string endpoint, bool drop, ActionTargets targets,
             std::atomic<uint64_t>* errors)
      : out_(std::move(output)), drop_(drop), targets_(std::move(targets)), errors_(errors) {
    health_.endpoint = std::move(endpoint);
  }

  void Add(const eventlog::Event& event, routing::StopToken& stop) override {
    boost::system::error_code ec;
    json::value v = json::parse(event.message.body, ec);
    if (ec || !v.is_object()) return Refused("the row is not a JSON object");  // never written so
    json::object row = std::move(v.get_object());
    auto* id = row.if_contains(out_.id_column);
    if (!id || !id->is_string() || id->get_string().empty()) {
      return Refused(fmt::format("the row has no string column '{}'", out_.id_column));
    }
    std::string target(id->get_string());
    row.erase(out_.id_column);
    int64_t backoff = 500;
    while (true) {
      Status st = Act(target, row, event.message.system.message_id);
      if (st) {
        Note(true, {});
        return;
      }
      if (!Transient(st.error()) || drop_) {
        return Refused(fmt::format("'{}': {}", target, st.error().message()));
      }
      Note(false, st.error().message());
      if (!stop.SleepFor(backoff)) return;  // stopping: the row is read again after a restart
      backoff = std::min(backoff * 2, kMaxBackoffMs);
    }
  }

  void Flush(int64_t, bool, routing::StopToken&) override {}
  std::optional<uint64_t> PendingFrom(uint32_t) const override { return std::nullopt; }
  int64_t NextDeadlineMs() const override { return INT64_MAX; }
  routing::EndpointHealth Health() const override {
    std::lock_guard lock(mu_);
    return health_;
  }

 private:
  template <class T>
  static Result<T> Wait(std::future<Result<T>> f) {
    return f.get();
  }

  Status Act(const std::string& target, json::object& row, const std::string& message_id) {
    switch (out_.type) {
      case JobOutput::Type::kC2d: {
        hub::C2dMessage m;
        m.message_id = message_id;
        m.content_type = "application/json";
        m.content_encoding = "utf-8";
        row[out_.id_column] = target;  // the whole row is the message
        m.body = json::serialize(row);
        row.erase(out_.id_column);
        std::promise<Result<size_t>> p;
        auto f = p.get_future();
        targets_.hub->SendC2d(target, std::move(m),
                              [&p](Result<size_t> r) { p.set_value(std::move(r)); });
        auto r = f.get();
        if (!r) return r.error();
        return Ok();
      }
      case JobOutput::Type::kMethod: {
        hub::MethodRequest req;
        req.method_name = out_.method_name;
        if (!out_.method_column.empty()) {
          auto* n = row.if_contains(out_.method_column);
          if (!n || !n->is_string()) {
            return Error(hub::Errc::kInvalidArgument,
                         fmt::format("the row has no string column '{}'", out_.method_column));
          }
          req.method_name = std::string(n->get_string());
          row.erase(out_.method_column);
        }
        req.payload = json::serialize(row);
        req.response_timeout_s = out_.response_timeout_s;
        std::promise<Result<hub::MethodResponse>> p;
        auto f = p.get_future();
        targets_.hub->InvokeMethod(
            hub::IdentityKey(target), std::move(req),
            [&p](Result<hub::MethodResponse> r) { p.set_value(std::move(r)); });
        auto r = f.get();
        if (!r) return r.error();
        return Ok();
      }
      case JobOutput::Type::kDesired: {
        json::object patch{{"properties", json::object{{"desired", row}}}};
        std::promise<Result<hub::TwinChange>> p;
        auto f = p.get_future();
        targets_.hub->UpdateTwin(hub::IdentityKey(target), patch, "",
                                 [&p](Result<hub::TwinChange> r) { p.set_value(std::move(r)); });
        auto r = f.get();
        if (!r) return r.error();
        return Ok();
      }
      case JobOutput::Type::kDigitalTwin: {
        json::array patch;
        for (auto& [k, v] : row) {
          std::string path = "/" + std::string(k);
          // JSON Pointer escapes.
          std::string escaped;
          for (char c : path.substr(1)) {
            if (c == '~')
              escaped += "~0";
            else if (c == '/')
              escaped += "~1";
            else
              escaped += c;
          }
          patch.push_back(json::object{{"op", "add"}, {"path", "/" + escaped}, {"value", v}});
        }
        if (patch.empty()) return Ok();
        std::promise<Result<std::string>> p;
        auto f = p.get_future();
        targets_.graph->PatchTwin(target, std::move(patch), "",
                                  [&p](Result<std::string> r) { p.set_value(std::move(r)); });
        auto r = f.get();
        if (!r) return r.error();
        return Ok();
      }
      default:
        return Ok();
    }
  }

  void Refused(const std::string& why) {
    if (errors_) ++*errors_;
    uint64_t n = ++refused_;
    if (n <= 100 || n % 1000 == 0) {
      Log()->warn("stream job output '{}': row refused ({} so far): {}", health_.endpoint, n, why);
    }
    std::lock_guard lock(mu_);
    health_.last_error = why;
    health_.last_error_ms = targets_.now_ms();
    ++health_.dead_lettered;
  }

  void Note(bool ok, const std::string& error) {
    std::lock_guard lock(mu_);
    int64_t now = targets_.now_ms();
    health_.last_attempt_ms = now;
    if (ok) {
      health_.status = routing::HealthStatus::kHealthy;
      health_.last_success_ms = now;
      ++health_.delivered;
    } else {
      health_.status = routing::HealthStatus::kUnhealthy;
      health_.last_error = error;
      health_.last_error_ms = now;
    }
  }

  const JobOutput out_;
  const bool drop_;
  const ActionTargets targets_;
  std::atomic<uint64_t>* errors_;
  uint64_t refused_ = 0;
  mutable std::mutex mu_;
  routing::EndpointHealth health_;
};

}  // namespace

bool IsAction(JobOutput::Type type) {
  return type == JobOutput::Type::kC2d || type == JobOutput::Type::kMethod ||
         type == JobOutput::Type::kDesired || type == JobOutput::Type::kDigitalTwin;
}

Result<std::unique_ptr<routing::Sink>> MakeActionSink(const JobOutput& output, std::string endpoint,
                                                      bool drop_on_error, ActionTargets targets,
                                                      std::atomic<uint64_t>* errors) {
  if (output.type == JobOutput::Type::kDigitalTwin ? !targets.graph : !targets.hub) {
    return Error(Errc::kInvalidJob, fmt::format("output '{}' ({}) has nothing to act on here{}",
                                                output.name, OutputTypeName(output.type),
                                                output.type == JobOutput::Type::kDigitalTwin
                                                    ? " (digital twins are off: twins.enabled)"
                                                    : ""));
  }
  if (!targets.now_ms) targets.now_ms = [] { return int64_t{0}; };
  return std::unique_ptr<routing::Sink>(std::make_unique<ActionSink>(
      output, std::move(endpoint), drop_on_error, std::move(targets), errors));
}

}  // namespace orrery::asa
