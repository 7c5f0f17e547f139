#include "api/device_http.h"

#include <atomic>
#include <mutex>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "api/hub_http.h"
#include "base/crypto.h"
#include "base/strings.h"
#include "base/time.h"
#include "hub/errc.h"
#include "hub/hub.h"

namespace orrery::api {
namespace json = boost::json;
using hub::Errc;
using net::HttpRequest;
using net::HttpResponse;
using net::Responder;

namespace {

struct Ctx {
  DeviceHttpOptions o;
  hub::Hub& hub() const { return *o.hub; }
};
using CtxPtr = std::shared_ptr<const Ctx>;

Result<hub::DeviceIdentity> AuthenticateRequest(const Ctx& c, const HttpRequest& req) {
  hub::DeviceCredentials creds;
  creds.device_id = req.Param("id");
  creds.module_id = req.Param("mid");
  if (auto token = req.headers.Get("Authorization")) creds.sas_token = *token;
  if (req.peer) creds.client_cert_chain_der = &req.peer->client_cert_chain_der;
  return c.hub().Authenticate(creds);
}

// IoT Hub's HTTP system-property headers (case-insensitive) and app properties.
void ApplyHeaders(const net::Headers& headers, eventlog::Message& m) {
  auto& s = m.system;
  for (auto& [name, value] : headers.all()) {
    std::string k = strings::ToLower(name);
    if (k.starts_with("iothub-app-") && k.size() > 11) {
      m.properties.emplace_back(name.substr(11), value);
    } else if (k == "dt-subject") {
      m.properties.emplace_back("dt-subject", value);
    } else if (k == "iothub-messageid") {
      s.message_id = value;
    } else if (k == "iothub-correlationid") {
      s.correlation_id = value;
    } else if (k == "iothub-userid") {
      s.user_id = value;
    } else if (k == "iothub-to") {
      s.to = value;
    } else if (k == "iothub-contenttype") {
      s.content_type = value;
    } else if (k == "iothub-contentencoding") {
      s.content_encoding = value;
    } else if (k == "iothub-interface-id") {
      m.properties.emplace_back("iothub-interface-id", value);
    } else if (k == "iothub-expiry") {
      if (auto ms = timeutil::ParseUtcMs(value)) s.expiry_time_ms = *ms;
    }
  }
}

// Waits for N telemetry appends and answers once: 204, or the first error.
struct Gather {
  std::atomic<size_t> remaining;
  std::mutex mu;
  std::optional<Error> failure;
  Responder res;
  Gather(size_t n, Responder r) : remaining(n), res(std::move(r)) {}
  void Done(Status st) {
    if (!st) {
      std::lock_guard lock(mu);
      if (!failure) failure = st.error();
    }
    if (remaining.fetch_sub(1) != 1) return;
    std::lock_guard lock(mu);
    res.Send(failure ? ErrorResponse(*failure) : HttpResponse::Empty(204));
  }
};

void SendEvents(const CtxPtr& c, HttpRequest& req, Responder res) {
  auto device = AuthenticateRequest(*c, req);
  if (!device) return res.Send(ErrorResponse(device.error()));
  if (int64_t wait = c->hub().device_limits().Take(device->key()); wait > 0) {
    return res.Send(ThrottledResponse(wait, fmt::format("device '{}'", device->key())));
  }
  auto ct = req.headers.Get("Content-Type");
  bool batch =
      ct && strings::StartsWith(strings::ToLower(*ct), "application/vnd.microsoft.iothub.json");
  if (!batch) {
    eventlog::Message m;
    m.body = std::move(req.body);
    ApplyHeaders(req.headers, m);
    return c->hub().SendTelemetry(*device, std::move(m), [res](Status st) {
      res.Send(st ? HttpResponse::Empty(204) : ErrorResponse(st.error()));
    });
  }
  if (req.body.size() > c->o.max_batch_bytes) {
    return res.Send(ErrorResponse(
        Error(Errc::kTooLarge, fmt::format("the batch is {} bytes; batches are limited to {} bytes",
                                           req.body.size(), c->o.max_batch_bytes))));
  }
  auto body = ParseJsonBody(req);
  if (!body) return res.Send(ErrorResponse(body.error()));
  if (!body->is_array() || body->get_array().empty()) {
    return res.Send(ErrorResponse(
        Error(Errc::kInvalidArgument, "a batch must be a non-empty JSON array of messages")));
  }
  auto& items = body->get_array();
  if (items.size() > c->o.max_batch_messages) {
    return res.Send(ErrorResponse(
        Error(Errc::kInvalidArgument, fmt::format("a batch holds at most {} messages (got {})",
                                                  c->o.max_batch_messages, items.size()))));
  }
  // Validate every item before appending any, so a bad batch leaves nothing behind.
  std::vector<eventlog::Message> messages;
  for (auto& item : items) {
    auto* o = item.if_object();
    auto* b = o ? o->if_contains("body") : nullptr;
    if (!b || !b->is_string()) {
      return res.Send(ErrorResponse(
          Error(Errc::kInvalidArgument, "every batch item needs a base64 'body' string")));
    }
    auto raw = crypto::Base64Decode(b->get_string());
    if (!raw) {
      return res.Send(ErrorResponse(
          Error(Errc::kInvalidArgument, "a batch item's 'body' is not valid base64")));
    }
    eventlog::Message m;
    m.body = std::move(*raw);
    if (auto* p = o->if_contains("properties"); p && p->is_object()) {
      net::Headers h;
      for (auto& [k, v] : p->get_object()) {
        if (v.is_string()) h.Add(std::string(k), std::string(v.get_string()));
      }
      ApplyHeaders(h, m);
    }
    messages.push_back(std::move(m));
  }
  auto gather = std::make_shared<Gather>(messages.size(), res);
  for (auto& m : messages) {
    c->hub().SendTelemetry(*device, std::move(m), [gather](Status st) { gather->Done(st); });
  }
}

void ReceiveC2d(const CtxPtr& c, HttpRequest& req, Responder res) {
  auto device = AuthenticateRequest(*c, req);
  if (!device) return res.Send(ErrorResponse(device.error()));
  auto m = c->hub().c2d().Receive(device->device_id);
  if (!m) return res.Send(HttpResponse::Empty(204));
  HttpResponse out;
  out.status = 200;
  out.body = std::move(m->body);
  auto& h = out.headers;
  h.Set("ETag", "\"" + m->lock_token + "\"");  // the SDK strips the quotes (§3.2)
  h.Set("iothub-messageid", m->message_id);
  h.Set("iothub-to", m->to);
  h.Set("iothub-expiry", timeutil::FormatUtcMs(m->expiry_ms));
  h.Set("iothub-enqueuedtime", timeutil::FormatUtcMs(m->enqueued_ms));
  h.Set("iothub-deliverycount", std::to_string(m->delivery_count));
  h.Set("iothub-sequencenumber", std::to_string(m->sequence));
  if (!m->correlation_id.empty()) h.Set("iothub-correlationid", m->correlation_id);
  if (!m->user_id.empty()) h.Set("iothub-userid", m->user_id);
  if (!m->content_type.empty()) h.Set("iothub-contenttype", m->content_type);
  if (!m->content_encoding.empty()) h.Set("iothub-contentencoding", m->content_encoding);
  if (!m->content_type.empty()) h.Set("Content-Type", m->content_type);
  for (auto& [k, v] : m->properties)
    h.Add("iothub-app-" + k, v);
  res.Send(std::move(out));
}

// The lock token from the path, or the If-Match header as the SDK also sends it.
std::string LockToken(const HttpRequest& req) {
  std::string lock(req.Param("lock"));
  if (lock.size() >= 2 && lock.front() == '"' && lock.back() == '"') {
    lock = lock.substr(1, lock.size() - 2);
  }
  return lock;
}

void SettleC2d(const CtxPtr& c, HttpRequest& req, Responder res, bool abandon) {
  auto device = AuthenticateRequest(*c, req);
  if (!device) return res.Send(ErrorResponse(device.error()));
  std::string lock = LockToken(req);
  auto reply = [res](Status st) {
    res.Send(st ? HttpResponse::Empty(204) : ErrorResponse(st.error()));
  };
  auto& q = c->hub().c2d();
  if (abandon) {
    q.Abandon(device->device_id, lock, reply);
  } else if (req.HasQuery("reject")) {
    q.Reject(device->device_id, lock, reply);
  } else {
    q.Complete(device->device_id, lock, reply);
  }
}

}  // namespace

void RegisterDeviceHttpRoutes(net::Router& router, const DeviceHttpOptions& options) {
  auto c = std::make_shared<const Ctx>(Ctx{options});
  net::RouteOptions events{.max_body = options.max_batch_bytes + 4096};
  router.Add(
      "POST", "/devices/{id}/messages/events",
      [c](HttpRequest& req, Responder res) { SendEvents(c, req, res); }, events);
  router.Add(
      "POST", "/devices/{id}/modules/{mid}/messages/events",
      [c](HttpRequest& req, Responder res) { SendEvents(c, req, res); }, events);
  router.Add("GET", "/devices/{id}/messages/devicebound",
             [c](HttpRequest& req, Responder res) { ReceiveC2d(c, req, res); });
  router.Add("DELETE", "/devices/{id}/messages/devicebound/{lock}",
             [c](HttpRequest& req, Responder res) { SettleC2d(c, req, res, false); });
  router.Add("POST", "/devices/{id}/messages/devicebound/{lock}/abandon",
             [c](HttpRequest& req, Responder res) { SettleC2d(c, req, res, true); });
}

}  // namespace orrery::api
