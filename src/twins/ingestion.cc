#include "twins/ingestion.h"

#include <future>
#include <map>
#include <mutex>
#include <optional>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/files.h"
#include "base/log.h"
#include "base/strings.h"
#include "base/time.h"
#include "query/routing/route_condition.h"
#include "routing/endpoints.h"
#include "routing/router.h"
#include "twins/adt_query.h"
#include "twins/errc.h"
#include "twins/notifications.h"
#include "twins/twin_graph.h"

namespace orrery::twins {
namespace json = boost::json;

namespace {

constexpr std::string_view kRuleSpace = "dt.mapping";
constexpr size_t kMaxRules = 100;
constexpr size_t kMaxPatchPaths = 100;
constexpr size_t kMaxQueryTargets = 1000;
constexpr std::string_view kGroup = "dt.ingest";

const std::shared_ptr<spdlog::logger>& Log() {
  static auto l = log::Get("twins");
  return l;
}

Error Invalid(std::string m) {
  return Error(Errc::kInvalidArgument, std::move(m));
}

using Source = IngestionRule::Source;
constexpr std::pair<Source, std::string_view> kSources[] = {
    {Source::kTelemetry, "telemetry"},
    {Source::kTwinChange, "twinChangeEvents"},
    {Source::kLifecycle, "deviceLifecycleEvents"},
    {Source::kConnectionState, "deviceConnectionStateEvents"},
    {Source::kDigitalTwinChange, "digitalTwinChange"},
};

std::string_view SourceName(Source s) {
  for (auto& [k, n] : kSources) {
    if (k == s) return n;
  }
  return "";
}

// The source of a hub message (its iothub-message-source).
std::optional<Source> SourceOf(const eventlog::Message& m) {
  const std::string& s = m.system.message_source;
  if (s.empty() || s == "Telemetry") return Source::kTelemetry;
  for (auto& [k, n] : kSources) {
    if (k != Source::kTelemetry && s == n) return k;
  }
  return std::nullopt;
}

// A dotted path ("a.b[2].c") inside a JSON value; nullptr when it is not there.
const json::value* Walk(const json::value* v, std::string_view path) {
  size_t i = 0;
  while (v && i < path.size()) {
    if (path[i] == '.') {
      ++i;
      continue;
    }
    if (path[i] == '[') {
      size_t close = path.find(']', i);
      if (close == std::string_view::npos || !v->is_array()) return nullptr;
      size_t n = 0;
      for (size_t k = i + 1; k < close; ++k) {
        if (path[k] < '0' || path[k] > '9') return nullptr;
        n = n * 10 + static_cast<size_t>(path[k] - '0');
      }
      v = n < v->get_array().size() ? &v->get_array()[n] : nullptr;
      i = close + 1;
      continue;
    }
    size_t end = path.find_first_of(".[", i);
    if (end == std::string_view::npos) end = path.size();
    auto* o = v->if_object();
    v = o ? o->if_contains(path.substr(i, end - i)) : nullptr;
    i = end;
  }
  return v;
}

// Replaces {deviceId} and {moduleId}; in a query the values are quoted for a string literal.
std::string Expand(std::string_view text, std::string_view device, std::string_view module,
                   bool quote) {
  auto esc = [&](std::string_view v) {
    if (!quote) return std::string(v);
    std::string out;
    for (char c : v) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    return out;
  };
  std::string out(text);
  for (auto [key, value] : {std::pair{std::string_view("{deviceId}"), device},
                            std::pair{std::string_view("{moduleId}"), module}}) {
    for (size_t at = out.find(key); at != std::string::npos; at = out.find(key, at)) {
      std::string v = esc(value);
      out.replace(at, key.size(), v);
      at += v.size();
    }
  }
  return out;
}

}  // namespace

Result<IngestionRule> RuleFromJson(std::string name, const json::value& v) {
  if (!strings::IsSimpleName(name, 64)) {
    return Invalid(fmt::format("rule name '{}' must be 1-64 letters, digits, '-', '_' or '.'",
                               name.substr(0, 80)));
  }
  auto* o = v.if_object();
  if (!o) return Invalid("a rule must be a JSON object");
  IngestionRule r;
  r.name = name;
  auto str = [&](std::string_view k) -> Result<std::string> {
    auto* x = o->if_contains(k);
    if (!x) return std::string();
    if (!x->is_string()) return Invalid(fmt::format("rule '{}': \"{}\" must be a string", name, k));
    return std::string(x->get_string());
  };
  ORRERY_ASSIGN_OR_RETURN(std::string source, str("source"));
  bool known = false;
  for (auto& [k, n] : kSources) {
    if (strings::IEquals(source, n)) {
      r.source = k;
      known = true;
    }
  }
  if (!known) {
    return Invalid(fmt::format(
        "rule '{}': \"source\" must be telemetry, twinChangeEvents, deviceLifecycleEvents, "
        "deviceConnectionStateEvents or digitalTwinChange",
        name));
  }
  ORRERY_ASSIGN_OR_RETURN(r.condition, str("condition"));
  if (!r.condition.empty()) {
    auto c = query::ParseRouteCondition(r.condition);
    if (!c) return Invalid(fmt::format("rule '{}': condition: {}", name, c.error().message()));
  }
  for (auto& [k, val] : *o) {
    if (k != "name" && k != "source" && k != "condition" && k != "twinId" && k != "twinQuery" &&
        k != "relationship" && k != "direction" && k != "patch") {
      return Invalid(fmt::format("rule '{}': unknown member \"{}\"", name, std::string_view(k)));
    }
  }
  if (r.source == Source::kDigitalTwinChange) {
    ORRERY_ASSIGN_OR_RETURN(r.relationship, str("relationship"));
    if (r.relationship.empty()) {
      return Invalid(fmt::format(
          "rule '{}': a digitalTwinChange rule needs \"relationship\" (the twins to patch)", name));
    }
    ORRERY_ASSIGN_OR_RETURN(std::string direction, str("direction"));
    if (direction.empty() || strings::IEquals(direction, "incoming")) {
      r.incoming = true;
    } else if (strings::IEquals(direction, "outgoing")) {
      r.incoming = false;
    } else {
      return Invalid(fmt::format("rule '{}': \"direction\" must be incoming or outgoing", name));
    }
  } else {
    ORRERY_ASSIGN_OR_RETURN(r.twin_id, str("twinId"));
    ORRERY_ASSIGN_OR_RETURN(r.twin_query, str("twinQuery"));
    if (r.twin_id.empty() == r.twin_query.empty()) {
      return Invalid(fmt::format(
          "rule '{}': give the target twin as \"twinId\" (a template such as \"{{deviceId}}\") "
          "or \"twinQuery\"",
          name));
    }
    if (!r.twin_query.empty()) {
      auto q = AdtQuery::Parse(Expand(r.twin_query, "x", "x", true));
      if (!q) return Invalid(fmt::format("rule '{}': twinQuery: {}", name, q.error().message()));
    }
  }
  auto* patch = o->if_contains("patch");
  if (!patch || !patch->is_object() || patch->get_object().empty()) {
    return Invalid(
        fmt::format("rule '{}': \"patch\" must be an object of twin paths to values, e.g. "
                    "{{\"/temperature\": \"$body.temperature\"}}",
                    name));
  }
  if (patch->get_object().size() > kMaxPatchPaths) {
    return Invalid(fmt::format("rule '{}': at most {} patch paths", name, kMaxPatchPaths));
  }
  for (auto& [path, value] : patch->get_object()) {
    if (path.empty() || path[0] != '/' || path.size() < 2) {
      return Invalid(
          fmt::format("rule '{}': patch path '{}' must be a JSON pointer such as "
                      "\"/temperature\"",
                      name, std::string_view(path)));
    }
    if (value.is_string()) {
      std::string_view e = value.get_string();
      bool twin_side = e.starts_with("$twin.") || e == "$twinId";
      if (e.starts_with("$") && !e.starts_with("$body.") && !e.starts_with("$property.") &&
          e != "$deviceId" && e != "$moduleId" && e != "$enqueuedTime" && !twin_side) {
        return Invalid(
            fmt::format("rule '{}': value '{}' of '{}' is not $body.<path>, $twin.<path>, $twinId, "
                        "$deviceId, $moduleId, $enqueuedTime or $property.<name>",
                        name, e, std::string_view(path)));
      }
      if (twin_side && r.source != Source::kDigitalTwinChange) {
        return Invalid(fmt::format("rule '{}': '{}' is for digitalTwinChange rules", name, e));
      }
    }
    r.patch.emplace_back(std::string(path), value);
  }
  return r;
}

json::object RuleToJson(const IngestionRule& r) {
  json::object o{{"name", r.name}, {"source", SourceName(r.source)}};
  if (!r.condition.empty()) o["condition"] = r.condition;
  if (!r.twin_id.empty()) o["twinId"] = r.twin_id;
  if (!r.twin_query.empty()) o["twinQuery"] = r.twin_query;
  if (r.source == Source::kDigitalTwinChange) {
    o["relationship"] = r.relationship;
    o["direction"] = r.incoming ? "incoming" : "outgoing";
  }
  json::object patch;
  for (auto& [p, v] : r.patch)
    patch[p] = v;
  o["patch"] = std::move(patch);
  return o;
}

struct Ingestion::Impl {
  store::KvStore* store = nullptr;
  TwinGraph* graph = nullptr;
  Notifier* notifier = nullptr;
  std::unique_ptr<routing::EndpointManager> reader;

  struct Compiled {
    IngestionRule rule;
    std::optional<query::RouteCondition> condition;
  };
  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<const Compiled>, std::less<>> rules;  // guarded by mu
  std::atomic<uint64_t> applied{0}, unchanged{0}, failed{0};
  std::atomic<uint64_t> warnings{0};
  std::atomic<bool> has_propagation{false};  // some rule is digitalTwinChange

  // Call with mu held, after a change of `rules`.
  void NoteRules() {
    bool any = false;
    for (auto& [n, c] : rules)
      any = any || c->rule.source == Source::kDigitalTwinChange;
    has_propagation = any;
  }

  static Result<std::shared_ptr<const Compiled>> Compile(IngestionRule rule) {
    auto c = std::make_shared<Compiled>();
    if (!rule.condition.empty()) {
      auto cond = query::ParseRouteCondition(rule.condition);
      if (!cond) return Invalid(cond.error().message());
      c->condition = std::move(*cond);
    }
    c->rule = std::move(rule);
    return std::shared_ptr<const Compiled>(std::move(c));
  }

  std::vector<std::shared_ptr<const Compiled>> RulesOf(Source s) const {
    std::lock_guard lock(mu);
    std::vector<std::shared_ptr<const Compiled>> out;
    for (auto& [n, c] : rules) {
      if (c->rule.source == s) out.push_back(c);
    }
    return out;
  }

  void Warn(std::string_view rule, std::string_view target, const std::string& why) {
    // The first hundred, then every thousandth: a misconfigured rule must not flood the log.
    uint64_t n = ++warnings;
    if (n <= 100 || n % 1000 == 0) {
      Log()->warn("ingestion rule '{}': could not patch twin '{}': {}", rule, target, why);
    }
  }

  // What an expression gives for one message or event; nullopt when undefined.
  struct Context {
    const json::value* body = nullptr;
    const json::value* twin = nullptr;  // digitalTwinChange: the changed twin
    std::string twin_id, device_id, module_id, enqueued;
    const std::vector<std::pair<std::string, std::string>>* properties = nullptr;
  };
  static std::optional<json::value> ValueOf(const json::value& expr, const Context& c) {
    if (!expr.is_string() || !expr.get_string().starts_with("$")) return expr;
    std::string_view e = expr.get_string();
    auto walked = [](const json::value* v) -> std::optional<json::value> {
      if (!v) return std::nullopt;
      return *v;
    };
    if (e.starts_with("$body.")) return walked(Walk(c.body, e.substr(6)));
    if (e.starts_with("$twin.")) return walked(Walk(c.twin, e.substr(6)));
    if (e.starts_with("$property.") && c.properties) {
      std::optional<json::value> v;
      for (auto& [k, val] : *c.properties) {
        if (strings::IEquals(k, e.substr(10))) v = json::value(val);
      }
      return v;
    }
    auto text = [](const std::string& s) -> std::optional<json::value> {
      if (s.empty()) return std::nullopt;
      return json::value(s);
    };
    if (e == "$twinId") return text(c.twin_id);
    if (e == "$deviceId") return text(c.device_id);
    if (e == "$moduleId") return text(c.module_id);
    if (e == "$enqueuedTime") return text(c.enqueued);
    return std::nullopt;
  }

  // Patches `target` with the rule's values; blocks until durable. Skips paths whose value
  // would not change, and the whole patch when none would.
  void Apply(const IngestionRule& rule, const std::string& target, const Context& c) {
    auto twin = graph->GetTwin(target);
    if (!twin) {
      ++failed;
      return Warn(rule.name, target, twin.error().message());
    }
    json::value doc = std::move(*twin);
    json::array ops;
    for (auto& [path, expr] : rule.patch) {
      auto v = ValueOf(expr, c);
      if (!v) continue;
      boost::system::error_code ec;
      const json::value* current = doc.find_pointer(path, ec);
      if (current && *current == *v) continue;
      ops.push_back(json::object{{"op", "add"}, {"path", path}, {"value", std::move(*v)}});
    }
    if (ops.empty()) {
      ++unchanged;
      return;
    }
    std::promise<Result<std::string>> p;
    graph->PatchTwin(target, std::move(ops), "",
                     [&p](Result<std::string> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    if (!r) {
      ++failed;
      return Warn(rule.name, target, r.error().message());
    }
    ++applied;
  }

  std::vector<std::string> Targets(const IngestionRule& rule, const std::string& device,
                                   const std::string& module) const {
    if (!rule.twin_id.empty()) return {Expand(rule.twin_id, device, module, false)};
    auto q = AdtQuery::Parse(Expand(rule.twin_query, device, module, true));
    std::vector<std::string> out;
    if (!q) return out;
    graph->Read([&](const GraphView& view) {
      auto page = q->Execute(view, {.max_items = kMaxQueryTargets});
      if (!page) return;
      for (auto& row : page->rows) {
        const json::object* o = row.if_object();
        if (!o) continue;
        if (!o->contains("$dtId") && o->size() == 1 && o->begin()->value().is_object()) {
          o = &o->begin()->value().get_object();
        }
        if (auto* id = o->if_contains("$dtId"); id && id->is_string()) {
          out.emplace_back(id->get_string());
        }
      }
    });
    return out;
  }

  void OnHubMessage(const eventlog::Event& e) {
    auto source = SourceOf(e.message);
    if (!source) return;
    auto rules_now = RulesOf(*source);
    if (rules_now.empty()) return;
    const auto& m = e.message;
    Context c;
    std::optional<json::value> body;
    boost::system::error_code ec;
    json::value parsed = json::parse(m.body, ec);
    if (!ec) body = std::move(parsed);
    c.body = body ? &*body : nullptr;
    c.device_id = m.system.connection_device_id;
    c.module_id = m.system.connection_module_id;
    c.enqueued = timeutil::FormatUtcMs(e.enqueued_ms);
    c.properties = &m.properties;
    for (auto& r : rules_now) {
      if (r->condition && !routing::MessageMatches(*r->condition, m)) continue;
      for (auto& target : Targets(r->rule, c.device_id, c.module_id))
        Apply(r->rule, target, c);
    }
  }

  // A committed graph change (propagation).
  void OnTwinEvent(const json::object& event) {
    auto* type = event.if_contains("type");
    if (!type || !type->is_string()) return;
    std::string_view t = type->get_string();
    if (t != "Microsoft.DigitalTwins.Twin.Update" && t != "Microsoft.DigitalTwins.Twin.Create") {
      return;
    }
    auto rules_now = RulesOf(Source::kDigitalTwinChange);
    if (rules_now.empty()) return;
    std::string id(event.at("subject").as_string());
    auto twin = graph->GetTwin(id);
    if (!twin) return;  // deleted meanwhile
    json::value twin_value = std::move(*twin);
    EventFilterInput in(event);  // the condition is an event route filter
    Context c;
    c.body = in.input().body;
    c.twin = &twin_value;
    c.twin_id = id;
    c.properties = &in.attributes();
    for (auto& r : rules_now) {
      if (r->condition && !r->condition->Matches(in.input())) continue;
      std::vector<std::string> targets;
      if (r->rule.incoming) {
        auto list = graph->ListIncoming(id, "", kMaxQueryTargets);
        if (!list) continue;
        for (auto& rel : *list) {
          if (rel.at("$relationshipName").as_string() == r->rule.relationship) {
            targets.emplace_back(rel.at("$sourceId").as_string());
          }
        }
      } else {
        auto list = graph->ListRelationships(id, r->rule.relationship, "", kMaxQueryTargets);
        if (!list) continue;
        for (auto& rel : *list)
          targets.emplace_back(rel.at("$targetId").as_string());
      }
      for (auto& target : targets)
        Apply(r->rule, target, c);
    }
  }
};

namespace {

// Hands every hub message to the rules, synchronously: nothing is pending afterwards, so the
// consumer's checkpoint passes a message only once its patches are durable.
class HubSink final : public routing::Sink {
 public:
  explicit HubSink(std::shared_ptr<Ingestion::Impl> impl) : impl_(std::move(impl)) {
    health_.endpoint = "dt-ingest";
  }
  void Add(const eventlog::Event& event, routing::StopToken&) override {
    impl_->OnHubMessage(event);
  }
  void Flush(int64_t, bool, routing::StopToken&) override {}
  std::optional<uint64_t> PendingFrom(uint32_t) const override { return std::nullopt; }
  int64_t NextDeadlineMs() const override { return INT64_MAX; }
  routing::EndpointHealth Health() const override { return health_; }

 private:
  std::shared_ptr<Ingestion::Impl> impl_;
  routing::EndpointHealth health_;
};

}  // namespace

Ingestion::Ingestion(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Ingestion::~Ingestion() {
  Stop();
}

Result<std::unique_ptr<Ingestion>> Ingestion::Open(store::KvStore* store, TwinGraph* graph,
                                                   Notifier* notifier,
                                                   eventlog::EventLog* hub_log) {
  auto impl = std::make_shared<Impl>();
  impl->store = store;
  impl->graph = graph;
  impl->notifier = notifier;
  Status failure = Ok();
  ORRERY_TRY(store->Scan(kRuleSpace, "", [&](std::string_view key, std::string_view value) {
    boost::system::error_code ec;
    auto v = json::parse(value, ec);
    auto rule = ec ? Result<IngestionRule>(Invalid("not JSON")) : RuleFromJson(std::string(key), v);
    auto compiled = rule ? Impl::Compile(std::move(*rule)) : rule.error();
    if (!compiled) {
      Log()->error("ingestion rule '{}' is unreadable ({}); skipped", key,
                   compiled.error().message());
      return true;
    }
    impl->rules.emplace(std::string(key), std::move(*compiled));
    return true;
  }));
  impl->NoteRules();
  std::weak_ptr<Impl> weak = impl;
  notifier->Subscribe(
      [weak](const json::object& event, std::function<void()> done) {
        if (auto i = weak.lock()) i->OnTwinEvent(event);
        done();
      },
      [weak](const GraphChange& change) {
        if (change.kind != GraphChange::Kind::kTwinCreate &&
            change.kind != GraphChange::Kind::kTwinUpdate) {
          return false;
        }
        auto i = weak.lock();
        return i && i->has_propagation.load();
      });
  impl->reader = std::make_unique<routing::EndpointManager>(hub_log, routing::EndpointOptions{});
  ORRERY_TRY(impl->reader->AttachConsumer("dt-ingest", std::string(kGroup),
                                          std::make_unique<HubSink>(impl)));
  return std::unique_ptr<Ingestion>(new Ingestion(std::move(impl)));
}

void Ingestion::Stop() {
  if (impl_->reader) impl_->reader->Stop();
}

Status Ingestion::PutRule(IngestionRule rule) {
  auto& d = *impl_;
  ORRERY_ASSIGN_OR_RETURN(auto compiled, Impl::Compile(rule));
  {
    std::lock_guard lock(d.mu);
    if (!d.rules.contains(rule.name) && d.rules.size() >= kMaxRules) {
      return Error(Errc::kLimitExceeded, fmt::format("at most {} ingestion rules", kMaxRules));
    }
  }
  store::WriteBatch batch;
  batch.Put(kRuleSpace, rule.name, json::serialize(RuleToJson(rule)));
  ORRERY_TRY(d.store->Write(std::move(batch), store::Durability::kDurable));
  std::lock_guard lock(d.mu);
  d.rules[rule.name] = std::move(compiled);
  d.NoteRules();
  return Ok();
}

Status Ingestion::DeleteRule(std::string_view name) {
  auto& d = *impl_;
  {
    std::lock_guard lock(d.mu);
    if (!d.rules.contains(name)) {
      return Error(Errc::kMappingNotFound, fmt::format("there is no ingestion rule '{}'", name));
    }
  }
  store::WriteBatch batch;
  batch.Delete(kRuleSpace, name);
  ORRERY_TRY(d.store->Write(std::move(batch), store::Durability::kDurable));
  std::lock_guard lock(d.mu);
  d.rules.erase(d.rules.find(name));
  d.NoteRules();
  return Ok();
}

std::vector<IngestionRule> Ingestion::Rules() const {
  std::lock_guard lock(impl_->mu);
  std::vector<IngestionRule> out;
  for (auto& [n, c] : impl_->rules)
    out.push_back(c->rule);
  return out;
}

Result<IngestionRule> Ingestion::GetRule(std::string_view name) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->rules.find(name);
  if (it == impl_->rules.end()) {
    return Error(Errc::kMappingNotFound, fmt::format("there is no ingestion rule '{}'", name));
  }
  return it->second->rule;
}

Status Ingestion::LoadFile(const std::filesystem::path& file) {
  auto text = files::ReadFile(file);
  if (!text) return Invalid(fmt::format("{}: {}", file.string(), text.error().message()));
  boost::system::error_code ec;
  json::value v = json::parse(*text, ec);
  if (ec || !v.is_object()) {
    return Invalid(fmt::format("{}: must be a JSON object of rules by name", file.string()));
  }
  std::vector<IngestionRule> rules;
  for (auto& [name, rule] : v.get_object()) {
    auto r = RuleFromJson(std::string(name), rule);
    if (!r) return Invalid(fmt::format("{}: {}", file.string(), r.error().message()));
    rules.push_back(std::move(*r));
  }
  for (auto& r : rules)
    ORRERY_TRY(PutRule(std::move(r)));
  Log()->info("ingestion: {} rules from {}", rules.size(), file.string());
  return Ok();
}

IngestionStats Ingestion::stats() const {
  return {impl_->applied.load(), impl_->unchanged.load(), impl_->failed.load()};
}

}  // namespace orrery::twins
