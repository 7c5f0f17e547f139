#include "asa/job.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/log.h"
#include "base/strings.h"

namespace orrery {
std::string ErrcTraits<asa::Errc>::Message(asa::Errc e) {
  switch (e) {
    case asa::Errc::kInvalidJob:
      return "invalid stream analytics job";
    case asa::Errc::kJobNotFound:
      return "no such job";
    case asa::Errc::kJobExists:
      return "the job exists";
    case asa::Errc::kConflict:
      return "the job's state does not allow it";
    case asa::Errc::kLimitExceeded:
      return "a limit is exceeded";
    case asa::Errc::kUnavailable:
      return "stream analytics is unavailable";
  }
  return "unknown stream analytics error";
}
}  // namespace orrery

namespace orrery::asa {
namespace json = boost::json;

namespace {

Error Invalid(std::string m) {
  return Error(Errc::kInvalidJob, std::move(m));
}

// Strict readers: a member of the wrong type is an error, a missing one the fallback.
Result<std::string> Str(const json::object& o, std::string_view key, std::string_view what,
                        bool required, std::string fallback = {}) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) {
    if (required) return Invalid(fmt::format("{} needs \"{}\"", what, key));
    return fallback;
  }
  if (!v->is_string()) return Invalid(fmt::format("{}: \"{}\" must be a string", what, key));
  return std::string(v->get_string());
}

Result<double> Num(const json::object& o, std::string_view key, std::string_view what,
                   double fallback, double min, double max) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return fallback;
  if (!v->is_number()) return Invalid(fmt::format("{}: \"{}\" must be a number", what, key));
  double n = v->to_number<double>();
  if (!(n >= min && n <= max)) {
    return Invalid(fmt::format("{}: \"{}\" must be {}..{} (got {})", what, key, min, max, n));
  }
  return n;
}

Status CheckMemberName(std::string_view name, std::string_view what) {
  if (!strings::IsSimpleName(name, 31)) {
    return Invalid(fmt::format(
        "{} name '{}' must be 1..31 letters, digits, '-' or '_', starting with a letter or digit",
        what, name.substr(0, 64)));
  }
  return Ok();
}

// Output types by their JSON names.
constexpr std::pair<JobOutput::Type, std::string_view> kOutputTypes[] = {
    {JobOutput::Type::kWebhook, "webhook"},
    {JobOutput::Type::kStorage, "storage"},
    {JobOutput::Type::kStream, "stream"},
    {JobOutput::Type::kC2d, "c2d"},
    {JobOutput::Type::kMethod, "method"},
    {JobOutput::Type::kDesired, "desiredProperties"},
    {JobOutput::Type::kDigitalTwin, "digitalTwin"},
};

Result<JobInput> InputFromJson(const json::value& v, size_t i) {
  std::string what = fmt::format("inputs[{}]", i);
  auto* o = v.if_object();
  if (!o) return Invalid(what + " must be an object");
  JobInput in;
  ORRERY_ASSIGN_OR_RETURN(in.name, Str(*o, "name", what, true));
  ORRERY_TRY(CheckMemberName(in.name, "input"));
  what = fmt::format("input '{}'", in.name);
  ORRERY_ASSIGN_OR_RETURN(std::string source, Str(*o, "source", what, false, "iothub"));
  if (strings::IEquals(source, "iothub")) {
    in.source = JobInput::Source::kIotHub;
  } else if (strings::IEquals(source, "stream")) {
    in.source = JobInput::Source::kStream;
    ORRERY_ASSIGN_OR_RETURN(in.job, Str(*o, "job", what, true));
    ORRERY_ASSIGN_OR_RETURN(in.output, Str(*o, "output", what, true));
    ORRERY_TRY(CheckJobName(in.job));
    ORRERY_TRY(CheckMemberName(in.output, "output"));
  } else {
    return Invalid(fmt::format("{}: \"source\" must be \"iothub\" or \"stream\"", what));
  }
  ORRERY_ASSIGN_OR_RETURN(std::string ser, Str(*o, "serialization", what, false, "json"));
  if (strings::IEquals(ser, "json")) {
    in.serialization = JobInput::Serialization::kJson;
  } else if (strings::IEquals(ser, "csv")) {
    in.serialization = JobInput::Serialization::kCsv;
  } else {
    return Invalid(fmt::format("{}: \"serialization\" must be \"json\" or \"csv\"", what));
  }
  return in;
}

Result<JobReference> ReferenceFromJson(const json::value& v, size_t i) {
  std::string what = fmt::format("references[{}]", i);
  auto* o = v.if_object();
  if (!o) return Invalid(what + " must be an object");
  JobReference r;
  ORRERY_ASSIGN_OR_RETURN(r.name, Str(*o, "name", what, true));
  ORRERY_TRY(CheckMemberName(r.name, "reference"));
  what = fmt::format("reference '{}'", r.name);
  ORRERY_ASSIGN_OR_RETURN(r.path, Str(*o, "path", what, true));
  // Confined to the reference directory: relative, no "..", no empty parts.
  bool bad = r.path.empty() || r.path.size() > 1024 || r.path.front() == '/';
  for (auto part : strings::Split(r.path, '/'))
    bad = bad || part.empty() || part == "." || part == "..";
  if (bad) {
    return Invalid(fmt::format(
        "{}: \"path\" must be a relative path inside the reference directory (no '..')", what));
  }
  return r;
}

Result<JobOutput> OutputFromJson(std::string_view job, const json::value& v, size_t i,
                                 const JobLimits& limits) {
  std::string what = fmt::format("outputs[{}]", i);
  auto* o = v.if_object();
  if (!o) return Invalid(what + " must be an object");
  JobOutput out;
  ORRERY_ASSIGN_OR_RETURN(out.name, Str(*o, "name", what, true));
  ORRERY_TRY(CheckMemberName(out.name, "output"));
  what = fmt::format("output '{}'", out.name);
  ORRERY_ASSIGN_OR_RETURN(std::string type, Str(*o, "type", what, true));
  auto t = std::find_if(std::begin(kOutputTypes), std::end(kOutputTypes),
                        [&](auto& p) { return strings::IEquals(p.second, type); });
  if (t == std::end(kOutputTypes)) {
    return Invalid(fmt::format(
        "{}: \"type\" must be webhook, storage, stream, c2d, method, desiredProperties or "
        "digitalTwin",
        what));
  }
  out.type = t->first;
  auto routing_endpoint = [&](std::string_view kind) -> Result<routing::RoutingConfig> {
    // The fields are routing's: validate them as a routing endpoint of that kind.
    json::object e = *o;
    e.erase("type");
    e["name"] = EndpointName(job, out.name);
    if (kind == "webhooks") e["format"] = "jsonArray";
    json::object config{{"endpoints", json::object{{kind, json::array{e}}}}};
    auto parsed = routing::ConfigFromJson(
        config, {.min_batch_frequency_s = limits.min_batch_frequency_s, .max_endpoints = 1});
    if (!parsed) return Invalid(fmt::format("{}: {}", what, parsed.error().message()));
    return parsed;
  };
  switch (out.type) {
    case JobOutput::Type::kWebhook: {
      ORRERY_ASSIGN_OR_RETURN(auto c, routing_endpoint("webhooks"));
      out.webhook = c.webhooks.front();
      out.webhook.linger_ms = 0;
      break;
    }
    case JobOutput::Type::kStorage: {
      ORRERY_ASSIGN_OR_RETURN(auto c, routing_endpoint("storageContainers"));
      out.storage = c.storage.front();
      out.storage.body_rows = true;  // JSON: line-separated rows, as ASA writes them
      break;
    }
    case JobOutput::Type::kStream:
      break;
    case JobOutput::Type::kC2d:
    case JobOutput::Type::kMethod:
    case JobOutput::Type::kDesired:
    case JobOutput::Type::kDigitalTwin:
      break;
  }
  if (out.type != JobOutput::Type::kWebhook && out.type != JobOutput::Type::kStorage &&
      out.type != JobOutput::Type::kStream) {
    bool twin = out.type == JobOutput::Type::kDigitalTwin;
    ORRERY_ASSIGN_OR_RETURN(out.id_column,
                            Str(*o, twin ? "twinIdColumn" : "deviceIdColumn", what, true));
  }
  if (out.type == JobOutput::Type::kMethod) {
    ORRERY_ASSIGN_OR_RETURN(out.method_name, Str(*o, "methodName", what, false));
    ORRERY_ASSIGN_OR_RETURN(out.method_column, Str(*o, "methodNameColumn", what, false));
    if (out.method_name.empty() == out.method_column.empty()) {
      return Invalid(what + " needs one of \"methodName\" and \"methodNameColumn\"");
    }
    ORRERY_ASSIGN_OR_RETURN(double timeout, Num(*o, "responseTimeoutInSeconds", what, 30, 5, 300));
    out.response_timeout_s = static_cast<int>(timeout);
  }
  if (out.id_column.size() > 256) return Invalid(what + ": the id column name is too long");
  return out;
}

}  // namespace

Status CheckJobName(std::string_view name) {
  if (name.size() < 3 || !strings::IsSimpleName(name, 32)) {
    return Invalid(fmt::format(
        "job name '{}' must be 3..32 letters, digits, '-' or '_', starting with a letter or digit",
        name.substr(0, 64)));
  }
  return Ok();
}

std::string EndpointName(std::string_view job, std::string_view output) {
  return fmt::format("{}.{}", job, output);
}

std::string_view OutputTypeName(JobOutput::Type t) {
  for (auto& [type, name] : kOutputTypes) {
    if (type == t) return name;
  }
  return "webhook";
}

Result<stream::StreamQuery> ParseJobQuery(const Job& job, const JobLimits& limits) {
  std::vector<std::string> refs;
  for (auto& r : job.references)
    refs.push_back(r.name);
  auto q = stream::StreamQuery::Parse(job.query, limits.stream, refs);
  if (!q) return Invalid(fmt::format("query: {}", q.error().message()));
  return q;
}

Result<Job> JobFromJson(std::string name, const json::value& v, const JobLimits& limits) {
  ORRERY_TRY(CheckJobName(name));
  auto* o = v.if_object();
  if (!o) return Invalid("a job definition must be a JSON object");
  static const std::set<std::string_view> kKnown = {"name",
                                                    "query",
                                                    "inputs",
                                                    "references",
                                                    "outputs",
                                                    "eventOrdering",
                                                    "outputErrorPolicy",
                                                    "compatibilityLevel",
                                                    "state",
                                                    "createdAt",
                                                    "lastOutputEventTime"};
  for (auto& [k, _] : *o) {
    if (!kKnown.contains(k)) {
      return Invalid(fmt::format("unknown member \"{}\" in the job definition", std::string(k)));
    }
  }
  Job job;
  job.name = std::move(name);
  if (auto* n = o->if_contains("name"); n && n->is_string() && n->get_string() != job.name) {
    return Invalid(fmt::format("the definition names job '{}', not '{}'",
                               std::string(n->get_string()).substr(0, 64), job.name));
  }
  ORRERY_ASSIGN_OR_RETURN(job.query, Str(*o, "query", "the job", true));
  if (job.query.size() > limits.max_query_bytes) {
    return Error(Errc::kLimitExceeded, fmt::format("the query is {} bytes; at most {}",
                                                   job.query.size(), limits.max_query_bytes));
  }
  auto array = [&](std::string_view key, size_t max) -> Result<const json::array*> {
    auto* m = o->if_contains(key);
    if (!m || m->is_null()) return nullptr;
    if (!m->is_array()) return Invalid(fmt::format("\"{}\" must be an array", key));
    if (m->get_array().size() > max) {
      return Error(Errc::kLimitExceeded,
                   fmt::format("{} {}; at most {}", m->get_array().size(), key, max));
    }
    return &m->get_array();
  };
  std::set<std::string> names;  // inputs and references share the query's FROM namespace
  auto unique = [&](const std::string& n, std::string_view what) -> Status {
    if (!names.insert(strings::ToLower(n)).second) {
      return Invalid(fmt::format("{} '{}' is declared twice", what, n));
    }
    return Ok();
  };
  ORRERY_ASSIGN_OR_RETURN(auto* inputs, array("inputs", limits.max_inputs));
  if (!inputs || inputs->empty()) return Invalid("the job needs at least one input");
  for (size_t i = 0; i < inputs->size(); ++i) {
    ORRERY_ASSIGN_OR_RETURN(auto in, InputFromJson((*inputs)[i], i));
    ORRERY_TRY(unique(in.name, "input"));
    job.inputs.push_back(std::move(in));
  }
  ORRERY_ASSIGN_OR_RETURN(auto* refs, array("references", limits.max_references));
  for (size_t i = 0; refs && i < refs->size(); ++i) {
    ORRERY_ASSIGN_OR_RETURN(auto r, ReferenceFromJson((*refs)[i], i));
    ORRERY_TRY(unique(r.name, "reference"));
    job.references.push_back(std::move(r));
  }
  ORRERY_ASSIGN_OR_RETURN(auto* outputs, array("outputs", limits.max_outputs));
  if (!outputs || outputs->empty()) return Invalid("the job needs at least one output");
  std::set<std::string> output_names;
  for (size_t i = 0; i < outputs->size(); ++i) {
    ORRERY_ASSIGN_OR_RETURN(auto out, OutputFromJson(job.name, (*outputs)[i], i, limits));
    if (!output_names.insert(strings::ToLower(out.name)).second) {
      return Invalid(fmt::format("output '{}' is declared twice", out.name));
    }
    job.outputs.push_back(std::move(out));
  }
  if (auto* eo = o->if_contains("eventOrdering"); eo && !eo->is_null()) {
    if (!eo->is_object()) return Invalid("\"eventOrdering\" must be an object");
    auto& e = eo->get_object();
    std::string_view what = "eventOrdering";
    // ASA's bounds: late arrival up to 20 days 23:59:59 (-1: indefinite), out of order 9:59.
    ORRERY_ASSIGN_OR_RETURN(double late,
                            Num(e, "lateArrivalToleranceInSeconds", what, 5, -1, 1'814'399));
    ORRERY_ASSIGN_OR_RETURN(double ooo, Num(e, "outOfOrderToleranceInSeconds", what, 0, 0, 599));
    ORRERY_ASSIGN_OR_RETURN(std::string action, Str(e, "action", what, false, "adjust"));
    if (late < 0) {
      job.ordering.late_arrival_tolerance.reset();
    } else {
      job.ordering.late_arrival_tolerance = static_cast<stream::Micros>(late * 1e6);
    }
    job.ordering.out_of_order_tolerance = static_cast<stream::Micros>(ooo * 1e6);
    if (strings::IEquals(action, "adjust")) {
      job.ordering.action = stream::EventTimePolicy::Action::kAdjust;
    } else if (strings::IEquals(action, "drop")) {
      job.ordering.action = stream::EventTimePolicy::Action::kDrop;
    } else {
      return Invalid("eventOrdering: \"action\" must be \"adjust\" or \"drop\"");
    }
  }
  ORRERY_ASSIGN_OR_RETURN(std::string policy,
                          Str(*o, "outputErrorPolicy", "the job", false, "retry"));
  if (strings::IEquals(policy, "drop")) {
    job.drop_on_output_error = true;
  } else if (!strings::IEquals(policy, "retry")) {
    return Invalid("\"outputErrorPolicy\" must be \"retry\" or \"drop\"");
  }
  ORRERY_ASSIGN_OR_RETURN(job.compatibility_level,
                          Str(*o, "compatibilityLevel", "the job", false, "1.2"));
  if (job.compatibility_level != "1.0" && job.compatibility_level != "1.1" &&
      job.compatibility_level != "1.2") {
    return Invalid("\"compatibilityLevel\" must be \"1.0\", \"1.1\" or \"1.2\"");
  }
  // Retry forever means many attempts: the webhook sink's bound is 100, with 60 s between.
  for (auto& out : job.outputs) {
    if (out.type == JobOutput::Type::kWebhook && !job.drop_on_output_error &&
        !(*outputs)[&out - job.outputs.data()].as_object().contains("maxAttempts")) {
      out.webhook.max_attempts = 100;
    }
  }

  // The query reads exactly what is declared and writes only declared outputs.
  ORRERY_ASSIGN_OR_RETURN(auto q, ParseJobQuery(job, limits));
  auto declared = [](auto& list, std::string_view n) {
    return std::any_of(list.begin(), list.end(),
                       [&](auto& x) { return strings::IEquals(x.name, n); });
  };
  for (auto& n : q.inputs()) {
    if (!declared(job.inputs, n)) {
      return Invalid(fmt::format("the query reads '{}', which is not a declared input", n));
    }
  }
  for (auto& n : q.references()) {
    if (!declared(job.references, n)) {
      return Invalid(fmt::format("the query joins '{}', which is not a declared reference", n));
    }
  }
  for (auto& n : q.outputs()) {
    if (!declared(job.outputs, n)) {
      return Invalid(
          fmt::format("the query writes INTO '{}', which is not a declared output{}", n,
                      n == "default" ? " (a SELECT without INTO writes to 'default')" : ""));
    }
  }
  for (auto& in : job.inputs) {
    bool read = std::any_of(q.inputs().begin(), q.inputs().end(),
                            [&](auto& n) { return strings::IEquals(n, in.name); });
    if (!read)
      return Invalid(fmt::format("input '{}' is declared but the query never reads it", in.name));
  }
  return job;
}

json::object JobToJson(const Job& job, bool with_secrets) {
  json::object o;
  o["name"] = job.name;
  o["query"] = job.query;
  json::array inputs;
  for (auto& in : job.inputs) {
    json::object i{
        {"name", in.name},
        {"source", in.source == JobInput::Source::kIotHub ? "iothub" : "stream"},
        {"serialization", in.serialization == JobInput::Serialization::kJson ? "json" : "csv"}};
    if (in.source == JobInput::Source::kStream) {
      i["job"] = in.job;
      i["output"] = in.output;
    }
    inputs.push_back(std::move(i));
  }
  o["inputs"] = std::move(inputs);
  json::array refs;
  for (auto& r : job.references)
    refs.push_back(json::object{{"name", r.name}, {"path", r.path}});
  o["references"] = std::move(refs);
  json::array outputs;
  for (auto& out : job.outputs) {
    json::object e;
    auto from_routing = [&](json::object endpoint) {
      endpoint.erase("name");
      endpoint.erase("format");
      for (auto& [k, v] : endpoint)
        e[k] = v;
    };
    if (out.type == JobOutput::Type::kWebhook) {
      routing::RoutingConfig c;
      c.webhooks.push_back(out.webhook);
      from_routing(routing::ConfigToJson(c, with_secrets)
                       .at("endpoints")
                       .at("webhooks")
                       .as_array()
                       .front()
                       .as_object());
    } else if (out.type == JobOutput::Type::kStorage) {
      routing::RoutingConfig c;
      c.storage.push_back(out.storage);
      from_routing(routing::ConfigToJson(c, with_secrets)
                       .at("endpoints")
                       .at("storageContainers")
                       .as_array()
                       .front()
                       .as_object());
    }
    e["name"] = out.name;
    e["type"] = OutputTypeName(out.type);
    if (!out.id_column.empty()) {
      e[out.type == JobOutput::Type::kDigitalTwin ? "twinIdColumn" : "deviceIdColumn"] =
          out.id_column;
    }
    if (out.type == JobOutput::Type::kMethod) {
      if (!out.method_name.empty()) e["methodName"] = out.method_name;
      if (!out.method_column.empty()) e["methodNameColumn"] = out.method_column;
      e["responseTimeoutInSeconds"] = out.response_timeout_s;
    }
    outputs.push_back(std::move(e));
  }
  o["outputs"] = std::move(outputs);
  // Whole seconds as integers ("5", not "5E0"), fractions as they are.
  auto seconds = [](stream::Micros us) -> json::value {
    if (us % 1'000'000 == 0) return json::value(us / 1'000'000);
    return json::value(static_cast<double>(us) / 1e6);
  };
  json::object ordering;
  ordering["lateArrivalToleranceInSeconds"] = job.ordering.late_arrival_tolerance
                                                  ? seconds(*job.ordering.late_arrival_tolerance)
                                                  : json::value(-1);
  ordering["outOfOrderToleranceInSeconds"] = seconds(job.ordering.out_of_order_tolerance);
  ordering["action"] =
      job.ordering.action == stream::EventTimePolicy::Action::kAdjust ? "adjust" : "drop";
  o["eventOrdering"] = std::move(ordering);
  o["outputErrorPolicy"] = job.drop_on_output_error ? "drop" : "retry";
  o["compatibilityLevel"] = job.compatibility_level;
  return o;
}

}  // namespace orrery::asa
