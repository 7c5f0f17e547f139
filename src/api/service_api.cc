#include "api/service_api.h"

#include <atomic>
#include <charconv>
#include <mutex>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "api/hub_http.h"
#include "base/crypto.h"
#include "base/strings.h"
#include "base/time.h"
#include "hub/errc.h"
#include "hub/hub.h"
#include "hub/jobs.h"
#include "hub/policies.h"
#include "query/iothub/hub_query.h"

namespace orrery::api {
namespace json = boost::json;
using hub::Errc;
using net::HttpRequest;
using net::HttpResponse;
using net::Responder;

namespace {

struct Ctx {
  ServiceApiOptions o;
  hub::Hub& hub() const { return *o.hub; }
  const hub::PolicyStore& policies() const { return o.hub->policies(); }
};
using CtxPtr = std::shared_ptr<const Ctx>;

constexpr uint32_t kRead = hub::kRegistryRead;
constexpr uint32_t kWrite = hub::kRegistryWrite;
constexpr uint32_t kService = hub::kServiceConnect;

HttpResponse Invalid(std::string message) {
  return ErrorResponse(Error(Errc::kInvalidArgument, std::move(message)));
}

// The identity JSON with the etag as IoT Hub also reports it in the ETag header.
HttpResponse IdentityResponse(const hub::IdentityView& v) {
  auto r = JsonResponse(200, hub::IdentityToJson(v.identity, v.runtime));
  r.headers.Set("ETag", "\"" + v.identity.etag + "\"");
  return r;
}

HttpResponse TwinResponse(const json::object& twin) {
  auto r = JsonResponse(200, twin);
  if (auto* e = twin.if_contains("etag"); e && e->is_string()) {
    r.headers.Set("ETag", "\"" + std::string(e->get_string()) + "\"");
  }
  return r;
}

std::string TwinKey(const HttpRequest& req) {
  return hub::IdentityKey(req.Param("id"), req.Param("mid"));
}

// Reads an integer member (absent → fallback); nullopt when present but not an integer.
std::optional<int64_t> IntMember(const json::object& o, std::string_view key, int64_t fallback) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return fallback;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
  if (v->is_double() &&
      v->get_double() == static_cast<double>(static_cast<int64_t>(v->get_double())))
    return static_cast<int64_t>(v->get_double());
  return std::nullopt;
}

// ---------------------------------------------------------------- registry

void PutIdentity(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal =
          CheckServiceAuth(c->policies(), req, kWrite, false, &c->hub().service_limits()))
    return res.Send(*refusal);
  auto body = ParseJsonBody(req);
  if (!body) return res.Send(ErrorResponse(body.error()));
  auto id = hub::IdentityFromJson(*body, req.Param("id"), req.Param("mid"));
  if (!id) return res.Send(ErrorResponse(id.error()));
  std::string if_match = IfMatch(req);
  auto reply = [res](Result<hub::IdentityView> r) {
    res.Send(r ? IdentityResponse(*r) : ErrorResponse(r.error()));
  };
  // IoT Hub: PUT without If-Match creates (409 if it exists); with If-Match it updates.
  if (if_match.empty()) {
    c->hub().CreateIdentity(std::move(*id), reply);
  } else {
    c->hub().UpdateIdentity(std::move(*id), if_match, reply);
  }
}

void GetIdentity(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal = CheckServiceAuth(c->policies(), req, kRead, false, &c->hub().service_limits()))
    return res.Send(*refusal);
  auto v = c->hub().registry().Get(req.Param("id"), req.Param("mid"));
  if (!v) {
    if (req.Param("mid").empty() || !c->hub().registry().Get(req.Param("id"))) {
      return res.Send(ErrorResponse(Error(
          Errc::kDeviceNotFound, fmt::format("device '{}' does not exist", req.Param("id")))));
    }
    return res.Send(ErrorResponse(
        Error(Errc::kModuleNotFound, fmt::format("module '{}' of device '{}' does not exist",
                                                 req.Param("mid"), req.Param("id")))));
  }
  res.Send(IdentityResponse(*v));
}

void DeleteIdentity(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal =
          CheckServiceAuth(c->policies(), req, kWrite, false, &c->hub().service_limits()))
    return res.Send(*refusal);
  c->hub().DeleteIdentity(
      std::string(req.Param("id")), std::string(req.Param("mid")), IfMatch(req),
      [res](Status st) { res.Send(st ? HttpResponse::Empty(204) : ErrorResponse(st.error())); });
}

void ListDevices(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal = CheckServiceAuth(c->policies(), req, kRead, false, &c->hub().service_limits()))
    return res.Send(*refusal);
  size_t max = c->o.max_list;
  if (auto top = req.Query("top")) {
    size_t n = 0;
    auto [end, ec] = std::from_chars(top->data(), top->data() + top->size(), n);
    if (ec != std::errc() || end != top->data() + top->size() || n == 0) {
      return res.Send(Invalid("top must be a positive integer"));
    }
    max = std::min(max, n);
  }
  json::array out;
  for (auto& v : c->hub().registry().ListDevices(max))
    out.push_back(hub::IdentityToJson(v.identity, v.runtime));
  res.Send(JsonResponse(200, out));
}

void ListModules(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal = CheckServiceAuth(c->policies(), req, kRead, false, &c->hub().service_limits()))
    return res.Send(*refusal);
  if (!c->hub().registry().Get(req.Param("id"))) {
    return res.Send(ErrorResponse(
        Error(Errc::kDeviceNotFound, fmt::format("device '{}' does not exist", req.Param("id")))));
  }
  json::array out;
  for (auto& v : c->hub().registry().ListModules(req.Param("id")))
    out.push_back(hub::IdentityToJson(v.identity, v.runtime));
  res.Send(JsonResponse(200, out));
}

// POST /devices: the registry's bulk operation (1..max_bulk devices, per-device results).
void BulkRegistry(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal =
          CheckServiceAuth(c->policies(), req, kWrite, false, &c->hub().service_limits()))
    return res.Send(*refusal);
  auto body = ParseJsonBody(req);
  if (!body) return res.Send(ErrorResponse(body.error()));
  if (!body->is_array() || body->get_array().empty()) {
    return res.Send(Invalid("the body must be a non-empty JSON array of devices"));
  }
  auto& items = body->get_array();
  if (items.size() > c->o.max_bulk) {
    return res.Send(Invalid(fmt::format("a bulk request takes at most {} devices (got {})",
                                        c->o.max_bulk, items.size())));
  }
  struct State {
    std::mutex mu;
    json::array errors;
    std::atomic<size_t> remaining;
    Responder res;
    State(size_t n, Responder r) : remaining(n), res(std::move(r)) {}
    void Fail(std::string_view device, const Error& e) {
      auto w = hub::ToWireError(e);
      std::lock_guard lock(mu);
      errors.push_back(
          json::object{{"deviceId", device}, {"errorCode", w.code}, {"errorStatus", e.message()}});
    }
    void Done() {
      if (remaining.fetch_sub(1) != 1) return;
      std::lock_guard lock(mu);
      json::object out{
          {"isSuccessful", errors.empty()}, {"errors", errors}, {"warnings", json::array{}}};
      res.Send(JsonResponse(200, out));
    }
  };
  auto state = std::make_shared<State>(items.size(), res);
  for (auto& item : items) {
    std::string device;
    if (item.is_object()) {
      if (auto* id = item.get_object().if_contains("id"); id && id->is_string()) {
        device = std::string(id->get_string());
      } else if (auto* d = item.get_object().if_contains("deviceId"); d && d->is_string()) {
        device = std::string(d->get_string());
      }
    }
    if (device.empty()) {
      state->Fail("", Error(Errc::kInvalidArgument, "a bulk item lacks its 'id'"));
      state->Done();
      continue;
    }
    json::object desc = item.get_object();
    std::string mode =
        strings::ToLower(desc.contains("importMode") && desc["importMode"].is_string()
                             ? std::string(desc["importMode"].get_string())
                             : "create");
    std::string etag;
    if (auto* e = desc.if_contains("eTag"); e && e->is_string()) etag = e->get_string();
    if (auto* e = desc.if_contains("etag"); e && e->is_string()) etag = e->get_string();
    desc.erase("id");
    desc.erase("importMode");
    desc["deviceId"] = device;
    auto record = [state, device](Status st) {
      if (!st) state->Fail(device, st.error());
      state->Done();
    };
    if (mode == "delete" || mode == "deleteifmatchetag") {
      c->hub().DeleteIdentity(device, "", mode == "delete" ? "*" : etag, record);
      continue;
    }
    auto id = hub::IdentityFromJson(json::value(desc), device, "");
    if (!id) {
      record(id.error());
      continue;
    }
    auto as_status = [record](Result<hub::IdentityView> r) {
      record(r ? Status(Ok()) : Status(r.error()));
    };
    if (mode == "create") {
      c->hub().CreateIdentity(std::move(*id), as_status);
    } else if (mode == "update" || mode == "updateifmatchetag") {
      c->hub().UpdateIdentity(std::move(*id), mode == "update" ? "*" : etag, as_status);
    } else if (mode == "createorupdate") {
      if (c->hub().registry().Get(device)) {
        c->hub().UpdateIdentity(std::move(*id), "*", as_status);
      } else {
        c->hub().CreateIdentity(std::move(*id), as_status);
      }
    } else {
      record(Error(Errc::kInvalidArgument,
                   fmt::format("importMode '{}' is not one of create, update, updateIfMatchETag, "
                               "createOrUpdate, delete, deleteIfMatchETag",
                               mode)));
    }
  }
}

void DeviceStatistics(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal = CheckServiceAuth(c->policies(), req, kRead, false, &c->hub().service_limits()))
    return res.Send(*refusal);
  auto s = c->hub().registry().Statistics();
  res.Send(JsonResponse(200, json::object{{"totalDeviceCount", s.total_devices},
                                          {"enabledDeviceCount", s.enabled_devices},
                                          {"disabledDeviceCount", s.disabled_devices}}));
}

void ServiceStatistics(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal = CheckServiceAuth(c->policies(), req, kRead | kService, /*any=*/true,
                                      &c->hub().service_limits())) {
    return res.Send(*refusal);
  }
  auto s = c->hub().registry().Statistics();
  res.Send(JsonResponse(200, json::object{{"connectedDeviceCount", s.connected_devices}}));
}

// ---------------------------------------------------------------- twins

void GetTwin(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal = CheckServiceAuth(c->policies(), req, kRead | kService, /*any=*/true,
                                      &c->hub().service_limits())) {
    return res.Send(*refusal);
  }
  auto twin = c->hub().registry().GetTwin(req.Param("id"), req.Param("mid"));
  res.Send(twin ? TwinResponse(*twin) : ErrorResponse(twin.error()));
}

void ChangeTwin(const CtxPtr& c, HttpRequest& req, Responder res, bool replace) {
  if (auto refusal =
          CheckServiceAuth(c->policies(), req, kService, false, &c->hub().service_limits()))
    return res.Send(*refusal);
  auto body = ParseJsonBody(req);
  if (!body) return res.Send(ErrorResponse(body.error()));
  if (!body->is_object()) return res.Send(Invalid("the twin patch must be a JSON object"));
  auto reply = [res](Result<hub::TwinChange> r) {
    if (!r) return res.Send(ErrorResponse(r.error()));
    auto out = HttpResponse::Json(200, std::move(r->twin_json));
    out.headers.Set("ETag", "\"" + r->etag + "\"");
    res.Send(std::move(out));
  };
  if (replace) {
    c->hub().ReplaceTwin(TwinKey(req), body->get_object(), IfMatch(req), reply);
  } else {
    c->hub().UpdateTwin(TwinKey(req), body->get_object(), IfMatch(req), reply);
  }
}

// ---------------------------------------------------------------- direct methods

void InvokeMethod(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal =
          CheckServiceAuth(c->policies(), req, kService, false, &c->hub().service_limits()))
    return res.Send(*refusal);
  auto body = ParseJsonBody(req);
  if (!body) return res.Send(ErrorResponse(body.error()));
  if (!body->is_object()) return res.Send(Invalid("the method call must be a JSON object"));
  auto& o = body->get_object();
  hub::MethodRequest m;
  auto* name = o.if_contains("methodName");
  if (!name || !name->is_string()) return res.Send(Invalid("methodName is required"));
  m.method_name = std::string(name->get_string());
  if (auto* p = o.if_contains("payload")) m.payload = json::serialize(*p);
  auto rt = IntMember(o, "responseTimeoutInSeconds", 30);
  auto ct = IntMember(o, "connectTimeoutInSeconds", 0);
  if (!rt || !ct) return res.Send(Invalid("the timeouts must be whole numbers of seconds"));
  m.response_timeout_s = static_cast<int>(std::clamp<int64_t>(*rt, -1, 100000));
  m.connect_timeout_s = static_cast<int>(std::clamp<int64_t>(*ct, -1, 100000));
  c->hub().InvokeMethod(TwinKey(req), std::move(m), [res](Result<hub::MethodResponse> r) {
    if (!r) return res.Send(ErrorResponse(r.error()));
    res.Send(HttpResponse::Json(
        200, fmt::format(R"({{"status":{},"payload":{}}})", r->status, r->payload)));
  });
}

// ---------------------------------------------------------------- cloud-to-device

void SendC2d(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal =
          CheckServiceAuth(c->policies(), req, kService, false, &c->hub().service_limits()))
    return res.Send(*refusal);
  hub::C2dMessage m;
  m.body = std::move(req.body);
  auto header = [&](std::string_view name) {
    auto v = req.headers.Get(name);
    return v ? std::string(*v) : std::string();
  };
  m.message_id = header("iothub-messageid");
  m.correlation_id = header("iothub-correlationid");
  m.user_id = header("iothub-userid");
  m.content_type = header("iothub-contenttype");
  if (m.content_type.empty()) m.content_type = header("Content-Type");
  m.content_encoding = header("iothub-contentencoding");
  auto ack = hub::ParseAckMode(header("iothub-ack"));
  if (!ack) return res.Send(ErrorResponse(ack.error()));
  m.ack = *ack;
  if (auto exp = header("iothub-expiry"); !exp.empty()) {
    auto ms = timeutil::ParseUtcMs(exp);
    if (!ms)
      return res.Send(Invalid(fmt::format("iothub-expiry '{}' is not an ISO 8601 time", exp)));
    m.expiry_ms = *ms;
  }
  for (auto& [k, v] : req.headers.all()) {
    std::string lower = strings::ToLower(k);
    if (lower.starts_with("iothub-app-") && lower.size() > 11) {
      m.properties.emplace_back(k.substr(11), v);
    }
  }
  std::string device(req.Param("id"));
  c->hub().SendC2d(device, std::move(m), [res](Result<size_t> r) {
    if (!r) return res.Send(ErrorResponse(r.error()));
    res.Send(JsonResponse(200, json::object{{"queueDepth", *r}}));
  });
}

void PurgeC2d(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal =
          CheckServiceAuth(c->policies(), req, kService, false, &c->hub().service_limits()))
    return res.Send(*refusal);
  std::string device(req.Param("id"));
  if (!c->hub().registry().Get(device)) {
    return res.Send(ErrorResponse(
        Error(Errc::kDeviceNotFound, fmt::format("device '{}' does not exist", device))));
  }
  c->hub().c2d().Purge(device, false, [res, device](Result<size_t> n) {
    if (!n) return res.Send(ErrorResponse(n.error()));
    res.Send(JsonResponse(200, json::object{{"deviceId", device}, {"totalMessagesPurged", *n}}));
  });
}

void ReceiveFeedback(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal =
          CheckServiceAuth(c->policies(), req, kService, false, &c->hub().service_limits()))
    return res.Send(*refusal);
  auto batch = c->hub().c2d().ReceiveFeedback(100);
  if (!batch) return res.Send(HttpResponse::Empty(204));
  json::array records;
  for (auto& r : batch->records) {
    records.push_back(json::object{{"originalMessageId", r.original_message_id},
                                   {"description", r.description},
                                   {"deviceGenerationId", r.device_generation_id},
                                   {"deviceId", r.device_id},
                                   {"enqueuedTimeUtc", timeutil::FormatUtcMs(r.enqueued_ms)},
                                   {"statusCode", r.status_code}});
  }
  HttpResponse out = JsonResponse(200, records);
  out.headers.Set("Content-Type", "application/vnd.microsoft.iothub.feedback.json");
  out.headers.Set("ETag", "\"" + batch->lock_token + "\"");
  out.headers.Set("iothub-enqueuedtime", timeutil::FormatUtcMs(batch->enqueued_ms));
  res.Send(std::move(out));
}

void SettleFeedback(const CtxPtr& c, HttpRequest& req, Responder res, bool complete) {
  if (auto refusal =
          CheckServiceAuth(c->policies(), req, kService, false, &c->hub().service_limits()))
    return res.Send(*refusal);
  if (complete) {
    return c->hub().c2d().CompleteFeedback(req.Param("lock"), [res](Status st) {
      res.Send(st ? HttpResponse::Empty(204) : ErrorResponse(st.error()));
    });
  }
  auto st = c->hub().c2d().AbandonFeedback(req.Param("lock"));
  res.Send(st ? HttpResponse::Empty(204) : ErrorResponse(st.error()));
}

// ---------------------------------------------------------------- queries

// Paging state carried in x-ms-continuation: base64 of {"k": last key visited, "n": rows
// returned so far (for TOP)} for row queries, {"o": offset} for aggregates and lists.
struct PageToken {
  std::string key;
  uint64_t returned = 0;
  uint64_t offset = 0;
};

std::string EncodeToken(const PageToken& t) {
  return crypto::Base64Encode(
      json::serialize(json::object{{"k", t.key}, {"n", t.returned}, {"o", t.offset}}));
}

Result<PageToken> DecodeToken(std::string_view text) {
  auto raw = crypto::Base64Decode(text);
  boost::system::error_code ec;
  json::value v;
  if (raw) v = json::parse(*raw, ec);
  if (!raw || ec || !v.is_object()) {
    return Error(Errc::kInvalidArgument, "x-ms-continuation is not a token this server issued");
  }
  auto& o = v.get_object();
  PageToken t;
  if (auto* k = o.if_contains("k"); k && k->is_string()) t.key = k->get_string();
  if (auto* n = o.if_contains("n")) t.returned = n->to_number<uint64_t>(ec);
  if (auto* f = o.if_contains("o")) t.offset = f->to_number<uint64_t>(ec);
  if (ec) return Error(Errc::kInvalidArgument, "x-ms-continuation is malformed");
  return t;
}

Result<size_t> PageSize(const HttpRequest& req, size_t max) {
  auto h = req.headers.Get("x-ms-max-item-count");
  if (!h) return std::min<size_t>(100, max);
  size_t n = 0;
  auto [end, ec] = std::from_chars(h->data(), h->data() + h->size(), n);
  if (ec != std::errc() || end != h->data() + h->size() || n == 0) {
    return Error(Errc::kInvalidArgument, "x-ms-max-item-count must be a positive integer");
  }
  return std::min(n, max);
}

// A page of rows (already serialised) with the continuation header when there is more.
HttpResponse PageResponse(std::string rows_json, std::optional<PageToken> next,
                          std::string_view item_type) {
  HttpResponse r = HttpResponse::Json(200, std::move(rows_json));
  if (next) r.headers.Set("x-ms-continuation", EncodeToken(*next));
  r.headers.Set("x-ms-item-type", std::string(item_type));
  return r;
}

// Pages through a fully materialised row list by offset.
HttpResponse OffsetPage(const std::vector<json::value>& rows, const PageToken& at, size_t page,
                        std::string_view item_type) {
  std::string body = "[";
  size_t end = std::min(rows.size(), static_cast<size_t>(at.offset) + page);
  for (size_t i = at.offset; i < end; ++i) {
    if (i > at.offset) body += ',';
    body += json::serialize(rows[i]);
  }
  body += ']';
  std::optional<PageToken> next;
  if (end < rows.size()) next = PageToken{.offset = end};
  return PageResponse(std::move(body), next, item_type);
}

void Query(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal = CheckServiceAuth(c->policies(), req, kRead | kService, /*any=*/true,
                                      &c->hub().service_limits())) {
    return res.Send(*refusal);
  }
  auto body = ParseJsonBody(req);
  if (!body) return res.Send(ErrorResponse(body.error()));
  auto* text = body->is_object() ? body->get_object().if_contains("query") : nullptr;
  if (!text || !text->is_string()) return res.Send(Invalid(R"(the body must be {"query":"…"})"));
  auto q = query::ParseHubQuery(text->get_string());
  if (!q) return res.Send(Invalid(q.error().message()));
  auto page = PageSize(req, c->o.max_query_page);
  if (!page) return res.Send(ErrorResponse(page.error()));
  PageToken at;
  if (auto t = req.headers.Get("x-ms-continuation"); t && !t->empty()) {
    auto d = DecodeToken(*t);
    if (!d) return res.Send(ErrorResponse(d.error()));
    at = *d;
  }
  const bool jobs = q->from() == query::HubCollection::kJobs;
  const bool modules = q->from() == query::HubCollection::kModules;
  std::string_view item_type = jobs ? "DeviceJob" : (q->select_all() ? "Twin" : "Raw");
  auto visit_all = [&](const std::function<bool(const std::string&, const json::object&)>& fn) {
    if (jobs) {
      if (!c->o.jobs) return;
      c->o.jobs->VisitDeviceJobs([&](const json::object& doc) { return fn("", doc); });
    } else {
      c->hub().registry().VisitTwins(modules, "", fn);
    }
  };
  if (q->aggregate()) {
    // Aggregates need every document; each page re-runs them (groups are few).
    auto agg = q->StartAggregation();
    visit_all([&](const std::string&, const json::object& doc) {
      agg.Add(doc);
      return true;
    });
    return res.Send(OffsetPage(agg.Finish(), at, *page, "Raw"));
  }
  std::optional<uint64_t> top = q->top();
  size_t want = *page;
  if (top) want = static_cast<size_t>(std::min<uint64_t>(want, *top - std::min(*top, at.returned)));
  std::string out = "[";
  size_t rows = 0;
  std::string last;
  bool stopped = false;
  auto add = [&](const std::string& key, const json::object& doc) {
    if (rows >= want) {
      stopped = true;
      return false;
    }
    if (q->select_all()) {
      if (!q->Matches(doc)) {
        last = key;
        return true;
      }
      if (rows) out += ',';
      out += json::serialize(doc);
    } else {
      auto row = q->Apply(doc);
      if (!row) {
        last = key;
        return true;
      }
      if (rows) out += ',';
      out += json::serialize(*row);
    }
    ++rows;
    last = key;
    return true;
  };
  if (jobs) {
    // Job results have no stable key of their own: page them by position.
    size_t seen = 0;
    if (c->o.jobs) {
      c->o.jobs->VisitDeviceJobs([&](const json::object& doc) {
        if (seen++ < at.offset) return true;
        bool go = add("", doc);
        return go;
      });
    }
    out += ']';
    std::optional<PageToken> next;
    if (stopped) next = PageToken{.returned = at.returned + rows, .offset = at.offset + rows};
    return res.Send(PageResponse(std::move(out), next, item_type));
  }
  c->hub().registry().VisitTwins(modules, at.key, add);
  out += ']';
  std::optional<PageToken> next;
  bool top_reached = top && at.returned + rows >= *top;
  if (stopped && !top_reached) next = PageToken{.key = last, .returned = at.returned + rows};
  res.Send(PageResponse(std::move(out), next, item_type));
}

// ---------------------------------------------------------------- CA certificates

// IoT Hub's CertificateDescription shape (management plane), so ARM-style tools read it.
json::object CertificateJson(const hub::CaCertificate& c, bool with_code) {
  json::object props{{"subject", c.subject},
                     {"expiry", timeutil::FormatUtcMs(c.expiry_unix * 1000)},
                     {"thumbprint", c.thumbprint},
                     {"isVerified", c.verified},
                     {"created", timeutil::FormatUtcMs(c.created_ms)},
                     {"updated", timeutil::FormatUtcMs(c.updated_ms)},
                     {"certificate", c.pem}};
  if (with_code) props["verificationCode"] = c.verification_code;
  return json::object{{"name", c.name},
                      {"etag", hub::EtagForCounter(c.etag_counter)},
                      {"type", "Microsoft.Devices/IotHubs/Certificates"},
                      {"properties", std::move(props)}};
}

// The certificate PEM of {"properties":{"certificate":…}} or {"certificate":…}.
Result<std::pair<std::string, bool>> CertificateBody(const json::value& body) {
  const json::object* o = body.if_object();
  if (o && o->contains("properties") && (*o).at("properties").is_object()) {
    o = &(*o).at("properties").get_object();
  }
  auto* pem = o ? o->if_contains("certificate") : nullptr;
  if (!pem || !pem->is_string()) {
    return Error(Errc::kInvalidArgument,
                 R"(the body needs {"properties":{"certificate":"<PEM>"}})");
  }
  bool verified = false;
  if (auto* v = o->if_contains("isVerified"); v && v->is_bool()) verified = v->get_bool();
  return std::make_pair(std::string(pem->get_string()), verified);
}

void ListCertificates(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal =
          CheckServiceAuth(c->policies(), req, kRead, false, &c->hub().service_limits())) {
    return res.Send(*refusal);
  }
  json::array value;
  for (auto& cert : c->hub().certificates().List())
    value.push_back(CertificateJson(cert, false));
  res.Send(JsonResponse(200, json::object{{"value", std::move(value)}}));
}

void GetCertificate(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal =
          CheckServiceAuth(c->policies(), req, kRead, false, &c->hub().service_limits())) {
    return res.Send(*refusal);
  }
  auto cert = c->hub().certificates().Get(req.Param("name"));
  if (!cert) {
    return res.Send(ErrorResponse(
        Error(Errc::kCertificateNotFound,
              fmt::format("no CA certificate named '{}' is registered", req.Param("name")))));
  }
  res.Send(JsonResponse(200, CertificateJson(*cert, false)));
}

void PutCertificate(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal =
          CheckServiceAuth(c->policies(), req, kWrite, false, &c->hub().service_limits())) {
    return res.Send(*refusal);
  }
  auto body = ParseJsonBody(req);
  if (!body) return res.Send(ErrorResponse(body.error()));
  auto cert = CertificateBody(*body);
  if (!cert) return res.Send(ErrorResponse(cert.error()));
  c->hub().certificates().Put(
      std::string(req.Param("name")), cert->first, cert->second,
      [res](Result<hub::CaCertificate> r) {
        res.Send(r ? JsonResponse(200, CertificateJson(*r, false)) : ErrorResponse(r.error()));
      });
}

void DeleteCertificate(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal =
          CheckServiceAuth(c->policies(), req, kWrite, false, &c->hub().service_limits())) {
    return res.Send(*refusal);
  }
  c->hub().certificates().Delete(req.Param("name"), [res](Status st) {
    res.Send(st ? HttpResponse::Empty(204) : ErrorResponse(st.error()));
  });
}

void CertificateCode(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal =
          CheckServiceAuth(c->policies(), req, kWrite, false, &c->hub().service_limits())) {
    return res.Send(*refusal);
  }
  c->hub().certificates().GenerateVerificationCode(
      req.Param("name"), [res](Result<hub::CaCertificate> r) {
        res.Send(r ? JsonResponse(200, CertificateJson(*r, true)) : ErrorResponse(r.error()));
      });
}

void VerifyCertificate(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal =
          CheckServiceAuth(c->policies(), req, kWrite, false, &c->hub().service_limits())) {
    return res.Send(*refusal);
  }
  auto body = ParseJsonBody(req);
  if (!body) return res.Send(ErrorResponse(body.error()));
  auto proof = CertificateBody(*body);
  if (!proof) return res.Send(ErrorResponse(proof.error()));
  c->hub().certificates().Verify(
      req.Param("name"), proof->first, [res](Result<hub::CaCertificate> r) {
        res.Send(r ? JsonResponse(200, CertificateJson(*r, false)) : ErrorResponse(r.error()));
      });
}

// ---------------------------------------------------------------- shared access policies

// Managing policies takes a policy with every permission (iothubowner): a narrower one could
// otherwise grant itself more.
constexpr uint32_t kOwner =
    hub::kRegistryRead | hub::kRegistryWrite | hub::kServiceConnect | hub::kDeviceConnect;

json::object PolicyJson(const hub::AccessPolicy& p) {
  return json::object{{"keyName", p.name},
                      {"primaryKey", p.primary_key},
                      {"secondaryKey", p.secondary_key},
                      {"rights", hub::PermissionsToString(p.permissions)}};
}

// The policy file is small and changes rarely: these handlers write it (with fsync) inline.
void ListPolicies(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal = CheckServiceAuth(c->policies(), req, kOwner)) return res.Send(*refusal);
  json::array value;
  for (auto& p : c->o.policies->List())
    value.push_back(PolicyJson(p));
  res.Send(JsonResponse(200, json::object{{"value", std::move(value)}}));
}

void PutPolicy(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal = CheckServiceAuth(c->policies(), req, kOwner)) return res.Send(*refusal);
  auto body = ParseJsonBody(req);
  if (!body) return res.Send(ErrorResponse(body.error()));
  auto* rights = body->is_object() ? body->get_object().if_contains("rights") : nullptr;
  if (!rights || !rights->is_string()) {
    return res.Send(Invalid(R"(the body must be {"rights":"RegistryRead, ServiceConnect, …"})"));
  }
  auto bits = hub::PermissionsFromString(rights->get_string());
  if (!bits) return res.Send(Invalid(bits.error().message()));
  auto p = c->o.policies->Put(req.Param("name"), *bits);
  res.Send(p ? JsonResponse(200, PolicyJson(*p)) : ErrorResponse(p.error()));
}

void DeletePolicy(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal = CheckServiceAuth(c->policies(), req, kOwner)) return res.Send(*refusal);
  auto st = c->o.policies->Remove(req.Param("name"));
  res.Send(st ? HttpResponse::Empty(204) : ErrorResponse(st.error()));
}

void RegeneratePolicyKey(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal = CheckServiceAuth(c->policies(), req, kOwner)) return res.Send(*refusal);
  auto body = ParseJsonBody(req, /*allow_empty=*/true);
  if (!body) return res.Send(ErrorResponse(body.error()));
  std::string type = "primary";
  if (body->is_object()) {
    if (auto* t = body->get_object().if_contains("keyType"); t && t->is_string()) {
      type = strings::ToLower(t->get_string());
    }
  }
  if (type != "primary" && type != "secondary") {
    return res.Send(Invalid("keyType must be primary or secondary"));
  }
  auto p = c->o.policies->RegenerateKey(req.Param("name"), type == "secondary");
  res.Send(p ? JsonResponse(200, PolicyJson(*p)) : ErrorResponse(p.error()));
}

// ---------------------------------------------------------------- jobs v2

void CreateJob(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal =
          CheckServiceAuth(c->policies(), req, kService, false, &c->hub().service_limits()))
    return res.Send(*refusal);
  auto body = ParseJsonBody(req);
  if (!body) return res.Send(ErrorResponse(body.error()));
  if (!body->is_object()) return res.Send(Invalid("the job must be a JSON object"));
  c->o.jobs->Create(std::string(req.Param("id")), body->get_object(),
                    [res](Result<json::object> r) {
                      res.Send(r ? JsonResponse(200, *r) : ErrorResponse(r.error()));
                    });
}

void GetJob(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal =
          CheckServiceAuth(c->policies(), req, kService, false, &c->hub().service_limits()))
    return res.Send(*refusal);
  auto j = c->o.jobs->Get(req.Param("id"));
  res.Send(j ? JsonResponse(200, *j) : ErrorResponse(j.error()));
}

void CancelJob(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal =
          CheckServiceAuth(c->policies(), req, kService, false, &c->hub().service_limits()))
    return res.Send(*refusal);
  c->o.jobs->Cancel(req.Param("id"), [res](Result<json::object> r) {
    res.Send(r ? JsonResponse(200, *r) : ErrorResponse(r.error()));
  });
}

void QueryJobs(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal =
          CheckServiceAuth(c->policies(), req, kService, false, &c->hub().service_limits()))
    return res.Send(*refusal);
  auto page = PageSize(req, c->o.max_query_page);
  if (!page) return res.Send(ErrorResponse(page.error()));
  PageToken at;
  if (auto t = req.headers.Get("x-ms-continuation"); t && !t->empty()) {
    auto d = DecodeToken(*t);
    if (!d) return res.Send(ErrorResponse(d.error()));
    at = *d;
  }
  std::vector<json::value> rows;
  for (auto& j :
       c->o.jobs->List(req.Query("jobType").value_or(""), req.Query("jobStatus").value_or(""))) {
    rows.emplace_back(std::move(j));
  }
  res.Send(OffsetPage(rows, at, *page, "JobResponse"));
}

}  // namespace

void RegisterServiceRoutes(net::Router& router, const ServiceApiOptions& options) {
  auto c = std::make_shared<const Ctx>(Ctx{options});
  auto on = [&](std::string_view method, std::string_view pattern,
                void (*fn)(const CtxPtr&, HttpRequest&, Responder)) {
    router.Add(method, pattern, [c, fn](HttpRequest& req, Responder res) { fn(c, req, res); });
  };
  // Registry.
  on("GET", "/devices", ListDevices);
  on("POST", "/devices", BulkRegistry);
  on("PUT", "/devices/{id}", PutIdentity);
  on("GET", "/devices/{id}", GetIdentity);
  on("DELETE", "/devices/{id}", DeleteIdentity);
  on("GET", "/devices/{id}/modules", ListModules);
  on("PUT", "/devices/{id}/modules/{mid}", PutIdentity);
  on("GET", "/devices/{id}/modules/{mid}", GetIdentity);
  on("DELETE", "/devices/{id}/modules/{mid}", DeleteIdentity);
  on("GET", "/statistics/devices", DeviceStatistics);
  on("GET", "/statistics/service", ServiceStatistics);
  // Twins.
  on("GET", "/twins/{id}", GetTwin);
  on("GET", "/twins/{id}/modules/{mid}", GetTwin);
  router.Add("PATCH", "/twins/{id}",
             [c](HttpRequest& req, Responder res) { ChangeTwin(c, req, res, false); });
  router.Add("PATCH", "/twins/{id}/modules/{mid}",
             [c](HttpRequest& req, Responder res) { ChangeTwin(c, req, res, false); });
  router.Add("PUT", "/twins/{id}",
             [c](HttpRequest& req, Responder res) { ChangeTwin(c, req, res, true); });
  router.Add("PUT", "/twins/{id}/modules/{mid}",
             [c](HttpRequest& req, Responder res) { ChangeTwin(c, req, res, true); });
  // Direct methods.
  on("POST", "/twins/{id}/methods", InvokeMethod);
  on("POST", "/twins/{id}/modules/{mid}/methods", InvokeMethod);
  // Cloud-to-device (sending over REST is Orrery's extension; IoT Hub uses AMQP for it).
  router.Add("POST", "/devices/{id}/messages/devicebound",
             [c](HttpRequest& req, Responder res) { SendC2d(c, req, res); },
             {.max_body = 64 * 1024 + 1024});
  on("DELETE", "/devices/{id}/commands", PurgeC2d);
  // Device queries (POST /devices/query; the literal segment wins over /devices/{id}).
  router.Add("POST", "/devices/query",
             [c](HttpRequest& req, Responder res) { Query(c, req, res); });
  // CA certificates for certificateAuthority devices (IoT Hub's management-plane shapes).
  on("GET", "/certificates", ListCertificates);
  on("GET", "/certificates/{name}", GetCertificate);
  on("PUT", "/certificates/{name}", PutCertificate);
  on("DELETE", "/certificates/{name}", DeleteCertificate);
  on("POST", "/certificates/{name}/generateVerificationCode", CertificateCode);
  on("POST", "/certificates/{name}/verify", VerifyCertificate);
  if (options.policies) {
    on("GET", "/policies", ListPolicies);
    on("PUT", "/policies/{name}", PutPolicy);
    on("DELETE", "/policies/{name}", DeletePolicy);
    on("POST", "/policies/{name}/regenerateKey", RegeneratePolicyKey);
  }
  if (options.jobs) {
    on("PUT", "/jobs/v2/{id}", CreateJob);
    on("GET", "/jobs/v2/query", QueryJobs);
    on("GET", "/jobs/v2/{id}", GetJob);
    on("POST", "/jobs/v2/{id}/cancel", CancelJob);
  }
  on("GET", "/messages/serviceBound/feedback", ReceiveFeedback);
  router.Add("DELETE", "/messages/serviceBound/feedback/{lock}",
             [c](HttpRequest& req, Responder res) { SettleFeedback(c, req, res, true); });
  router.Add("POST", "/messages/serviceBound/feedback/{lock}/abandon",
             [c](HttpRequest& req, Responder res) { SettleFeedback(c, req, res, false); });
}

}  // namespace orrery::api
