#include "api/dps_api.h"

#include <charconv>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "base/strings.h"
#include "base/time.h"
#include "dps/access.h"
#include "dps/errc.h"
#include "dps/mqtt_front.h"
#include "dps/provisioning.h"
#include "hub/errc.h"
#include "hub/policies.h"
#include "query/iothub/hub_query.h"

namespace orrery::api {
namespace json = boost::json;
using dps::Errc;
using net::HttpRequest;
using net::HttpResponse;
using net::Responder;

namespace {

struct Ctx {
  DpsApiOptions o;
  dps::ProvisioningService& svc() const { return *o.service; }
  dps::EnrollmentStore& store() const { return o.service->enrollments(); }
};
using CtxPtr = std::shared_ptr<const Ctx>;

HttpResponse DpsError(const Error& e) {
  auto w = dps::ToWireError(e);
  auto r = HttpResponse::Json(w.status, dps::ErrorBody(e));
  if (w.status == 429) r.headers.Set("Retry-After", "5");
  return r;
}

HttpResponse Json(int status, const json::value& v) {
  return HttpResponse::Json(status, json::serialize(v));
}

Result<json::value> Body(const HttpRequest& req, bool allow_empty = false) {
  std::string_view b = strings::Trim(req.body);
  if (b.empty()) {
    if (allow_empty) return json::value(json::object());
    return Error(Errc::kInvalidArgument, "the request needs a JSON body");
  }
  boost::system::error_code ec;
  auto v = json::parse(b, ec);
  if (ec) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("the request body is not valid JSON: {}", ec.message()));
  }
  return v;
}

// The If-Match header without quotes (the SDK sends the etag raw; others quote it).
std::string IfMatchOf(const HttpRequest& req) {
  auto v = req.headers.Get("If-Match");
  if (!v) return {};
  std::string_view s = strings::Trim(*v);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return std::string(s);
}

// The service credential: a SAS token of one of DPS's policies granting `need`.
Result<hub::AccessPolicy> ServiceAuth(const Ctx& c, const HttpRequest& req, uint32_t need) {
  auto token = req.headers.Get("Authorization");
  if (!token) {
    return Error(Errc::kUnauthorized,
                 "missing credentials: send 'Authorization: SharedAccessSignature sr=<host>&sig=…"
                 "&se=…&skn=<policy>' signed with a provisioning service policy key");
  }
  auto r = c.o.policies->Authenticate(*token, need, timeutil::NowMs() / 1000);
  if (!r) {
    bool forbidden = r.error().code() == make_error_code(hub::Errc::kForbidden);
    return Error(forbidden ? Errc::kForbidden : Errc::kUnauthorized, r.error().message());
  }
  return r;
}

#define DPS_AUTH(ctx, req, res, need, var)       \
  auto var = ServiceAuth(*(ctx), (req), (need)); \
  if (!var) return (res).Send(DpsError(var.error()))

// ---------------------------------------------------------------- enrollments

void PutEnrollment(const CtxPtr& c, bool group, HttpRequest& req, Responder res) {
  DPS_AUTH(c, req, res, dps::kEnrollmentWrite, who);
  auto body = Body(req);
  if (!body) return res.Send(DpsError(body.error()));
  auto e = dps::EnrollmentFromJson(*body, group, req.Param("id"));
  if (!e) return res.Send(DpsError(e.error()));
  auto existing = c->store().Get(group, e->id);
  bool elided = e->attestation.certificates_elided;
  dps::ResolveOmitted(e->attestation, existing ? &existing->attestation : nullptr);
  auto& a = e->attestation;
  if (elided && a.type == dps::AttestationType::kX509 && a.client_certificates.empty() &&
      a.signing_certificates.empty() && a.ca_references.empty()) {
    return res.Send(DpsError(Error(Errc::kInvalidArgument,
                                   "the x509 attestation needs a certificate (PEM in "
                                   "\"certificate\"), not only its info")));
  }
  std::string if_match = IfMatchOf(req);
  if (if_match.empty()) if_match = e->etag;  // the etag in the body is a precondition too
  c->store().Put(std::move(*e), if_match, false, [res](Result<dps::Enrollment> r) {
    res.Send(r ? Json(200, dps::EnrollmentToJson(*r)) : DpsError(r.error()));
  });
}

Error NoSuchEnrollment(bool group, std::string_view id) {
  return Error(
      Errc::kEnrollmentNotFound,
      fmt::format("{} '{}' does not exist", group ? "enrollment group" : "enrollment", id));
}

void GetEnrollment(const CtxPtr& c, bool group, HttpRequest& req, Responder res) {
  DPS_AUTH(c, req, res, dps::kEnrollmentRead, who);
  auto e = c->store().Get(group, req.Param("id"));
  if (!e) return res.Send(DpsError(NoSuchEnrollment(group, req.Param("id"))));
  // Keys go only to credentials that may also change them.
  res.Send(Json(200, dps::EnrollmentToJson(*e, (who->permissions & dps::kEnrollmentWrite) != 0)));
}

void DeleteEnrollment(const CtxPtr& c, bool group, HttpRequest& req, Responder res) {
  DPS_AUTH(c, req, res, dps::kEnrollmentWrite, who);
  c->store().Delete(group, req.Param("id"), IfMatchOf(req), [res](Status st) {
    res.Send(st ? HttpResponse::Empty(204) : DpsError(st.error()));
  });
}

void AttestationMechanism(const CtxPtr& c, bool group, HttpRequest& req, Responder res) {
  DPS_AUTH(c, req, res, dps::kEnrollmentWrite, who);
  auto e = c->store().Get(group, req.Param("id"));
  if (!e) return res.Send(DpsError(NoSuchEnrollment(group, req.Param("id"))));
  res.Send(Json(200, dps::AttestationToJson(e->attestation, group, true)));
}

// ---------------------------------------------------------------- queries

Result<size_t> PageSize(const Ctx& c, const HttpRequest& req) {
  auto h = req.headers.Get("x-ms-max-item-count");
  if (!h) return std::min<size_t>(100, c.o.max_query_page);
  size_t n = 0;
  auto [end, ec] = std::from_chars(h->data(), h->data() + h->size(), n);
  if (ec != std::errc() || end != h->data() + h->size() || n == 0) {
    return Error(Errc::kInvalidArgument, "x-ms-max-item-count must be a positive integer");
  }
  return std::min(n, c.o.max_query_page);
}

// x-ms-continuation: base64 of the last id returned.
Result<std::string> After(const HttpRequest& req) {
  auto t = req.headers.Get("x-ms-continuation");
  if (!t || t->empty()) return std::string();
  auto raw = crypto::Base64Decode(*t);
  if (!raw)
    return Error(Errc::kInvalidArgument, "x-ms-continuation is not a token this server issued");
  return *raw;
}

// The query specification {"query": "*" | "SELECT * FROM enrollments [WHERE …]"}: a filter
// over the enrollment's JSON (the shared query foundation's condition language).
Result<std::optional<query::HubCondition>> ParseSpec(const json::value& body, bool group) {
  if (!body.is_object())
    return Error(Errc::kInvalidArgument, "the query specification must be an object");
  auto* q = body.get_object().if_contains("query");
  if (!q || !q->is_string()) {
    return Error(Errc::kInvalidArgument,
                 "the query specification needs \"query\": \"*\" or "
                 "\"SELECT * FROM enrollments WHERE …\"");
  }
  std::string_view text = strings::Trim(q->get_string());
  if (text == "*" || text.empty()) return std::optional<query::HubCondition>();
  std::string lower = strings::ToLower(text);
  std::string from = group ? "select * from enrollmentgroups" : "select * from enrollments";
  if (!lower.starts_with(from)) {
    return Error(
        Errc::kInvalidArgument,
        fmt::format("unsupported query '{}': use \"*\" or \"{} [WHERE …]\"", text,
                    group ? "SELECT * FROM enrollmentGroups" : "SELECT * FROM enrollments"));
  }
  std::string_view rest = strings::Trim(text.substr(from.size()));
  if (rest.empty()) return std::optional<query::HubCondition>();
  if (!strings::ToLower(rest).starts_with("where ")) {
    return Error(Errc::kInvalidArgument, fmt::format("unexpected '{}' after FROM", rest));
  }
  auto cond = query::ParseHubCondition(rest.substr(6));
  if (!cond) return Error(Errc::kInvalidArgument, cond.error().message());
  return std::optional<query::HubCondition>(std::move(*cond));
}

HttpResponse Page(json::array rows, std::optional<std::string> last, std::string_view type) {
  auto r = Json(200, rows);
  if (last) r.headers.Set("x-ms-continuation", crypto::Base64Encode(*last));
  r.headers.Set("x-ms-item-type", std::string(type));
  return r;
}

void QueryEnrollments(const CtxPtr& c, bool group, HttpRequest& req, Responder res) {
  DPS_AUTH(c, req, res, dps::kEnrollmentRead, who);
  auto body = Body(req, true);
  if (!body) return res.Send(DpsError(body.error()));
  auto cond = ParseSpec(*body, group);
  if (!cond) return res.Send(DpsError(cond.error()));
  auto page = PageSize(*c, req);
  if (!page) return res.Send(DpsError(page.error()));
  auto after = After(req);
  if (!after) return res.Send(DpsError(after.error()));
  bool keys = (who->permissions & dps::kEnrollmentWrite) != 0;
  // One more than a page tells whether another page follows.
  auto list = c->store().List(group, *after, *page + 1, [&](const dps::Enrollment& e) {
    return !*cond || (*cond)->Matches(dps::EnrollmentToJson(e, false));
  });
  std::optional<std::string> next;
  if (list.size() > *page) {
    list.resize(*page);
    next = list.back().id;
  }
  json::array rows;
  for (auto& e : list)
    rows.push_back(dps::EnrollmentToJson(e, keys));
  res.Send(Page(std::move(rows), next, group ? "EnrollmentGroup" : "Enrollment"));
}

void QueryRegistrations(const CtxPtr& c, HttpRequest& req, Responder res) {
  DPS_AUTH(c, req, res, dps::kRegistrationStatusRead, who);
  auto page = PageSize(*c, req);
  if (!page) return res.Send(DpsError(page.error()));
  auto after = After(req);
  if (!after) return res.Send(DpsError(after.error()));
  std::string group(req.Param("id"));
  if (!c->store().Get(true, group)) {
    return res.Send(DpsError(NoSuchEnrollment(true, group)));
  }
  auto list = c->store().ListRegistrations(group, *after, *page + 1);
  std::optional<std::string> next;
  if (list.size() > *page) {
    list.resize(*page);
    next = list.back().registration_id;
  }
  json::array rows;
  for (auto& r : list)
    rows.push_back(dps::RegistrationToJson(r));
  res.Send(Page(std::move(rows), next, "DeviceRegistration"));
}

// ---------------------------------------------------------------- bulk

// POST /enrollments {"mode": create|update|updateIfMatchEtag|delete, "enrollments": […]}:
// each applied in order; the answer lists what failed.
void Bulk(const CtxPtr& c, HttpRequest& req, Responder res) {
  DPS_AUTH(c, req, res, dps::kEnrollmentWrite, who);
  auto body = Body(req);
  if (!body) return res.Send(DpsError(body.error()));
  if (!body->is_object()) {
    return res.Send(
        DpsError(Error(Errc::kInvalidArgument, "the bulk operation must be an object")));
  }
  auto& o = body->get_object();
  auto* mode_v = o.if_contains("mode");
  auto* list_v = o.if_contains("enrollments");
  std::string mode = mode_v && mode_v->is_string() ? std::string(mode_v->get_string()) : "";
  if (mode != "create" && mode != "update" && mode != "updateIfMatchEtag" && mode != "delete") {
    return res.Send(DpsError(Error(
        Errc::kInvalidArgument, "mode must be one of create, update, updateIfMatchEtag, delete")));
  }
  if (!list_v || !list_v->is_array() || list_v->get_array().empty()) {
    return res.Send(
        DpsError(Error(Errc::kInvalidArgument, "enrollments must be a non-empty array")));
  }
  auto& list = list_v->get_array();
  if (list.size() > c->o.max_bulk) {
    return res.Send(DpsError(
        Error(Errc::kInvalidArgument,
              fmt::format("a bulk operation takes at most {} enrollments", c->o.max_bulk))));
  }
  struct State {
    std::mutex mu;
    size_t remaining;
    json::array errors;
    Responder res;
    State(size_t n, Responder r) : remaining(n), res(std::move(r)) {}
    void Done(const std::string& id, const Status& st) {
      std::lock_guard lock(mu);
      if (!st) {
        auto w = dps::ToWireError(st.error());
        errors.push_back(json::object{{"registrationId", id},
                                      {"errorCode", w.numeric},
                                      {"errorStatus", st.error().message()}});
      }
      if (--remaining == 0) {
        res.Send(Json(200, json::object{{"isSuccessful", errors.empty()}, {"errors", errors}}));
      }
    }
  };
  auto state = std::make_shared<State>(list.size(), res);
  for (auto& item : list) {
    std::string id;
    if (item.is_object()) {
      if (auto* r = item.get_object().if_contains("registrationId"); r && r->is_string()) {
        id = std::string(r->get_string());
      }
    }
    if (mode == "delete") {
      std::string etag;
      if (item.is_object()) {
        if (auto* e = item.get_object().if_contains("etag"); e && e->is_string()) {
          etag = std::string(e->get_string());
        }
      }
      c->store().Delete(false, id, etag, [state, id](Status st) { state->Done(id, st); });
      continue;
    }
    auto e = dps::EnrollmentFromJson(item, false, id);
    if (!e) {
      state->Done(id, e.error());
      continue;
    }
    auto existing = c->store().Get(false, id);
    dps::ResolveOmitted(e->attestation, existing ? &existing->attestation : nullptr);
    if (e->attestation.type == dps::AttestationType::kX509 &&
        e->attestation.client_certificates.empty()) {
      state->Done(id, Error(Errc::kInvalidArgument, "x509 attestation needs a certificate"));
      continue;
    }
    if (mode == "updateIfMatchEtag" && e->etag.empty()) {
      state->Done(id,
                  Error(Errc::kInvalidArgument, "updateIfMatchEtag needs the enrollment's etag"));
      continue;
    }
    std::string if_match = mode == "updateIfMatchEtag" ? e->etag : "";
    c->store().Put(
        std::move(*e), if_match, mode == "create",
        [state, id](Result<dps::Enrollment> r) { state->Done(id, r ? Ok() : Status(r.error())); });
  }
}

// ---------------------------------------------------------------- registration states

void GetRegistration(const CtxPtr& c, HttpRequest& req, Responder res) {
  DPS_AUTH(c, req, res, dps::kRegistrationStatusRead, who);
  auto r = c->store().GetRegistration(req.Param("id"));
  if (!r) {
    return res.Send(
        DpsError(Error(Errc::kRegistrationNotFound,
                       fmt::format("no registration state for '{}'", req.Param("id")))));
  }
  res.Send(Json(200, dps::RegistrationToJson(*r)));
}

void DeleteRegistration(const CtxPtr& c, HttpRequest& req, Responder res) {
  DPS_AUTH(c, req, res, dps::kRegistrationStatusWrite, who);
  c->store().DeleteRegistration(req.Param("id"), IfMatchOf(req), [res](Status st) {
    res.Send(st ? HttpResponse::Empty(204) : DpsError(st.error()));
  });
}

// ---------------------------------------------------------------- devices

Result<dps::Attested> DeviceAuth(const Ctx& c, const HttpRequest& req) {
  if (!c.svc().IsScope(req.Param("scope"))) {
    return Error(Errc::kUnauthorized, fmt::format("unknown ID scope '{}'", req.Param("scope")));
  }
  dps::DeviceCredentials creds{.registration_id = req.Param("rid")};
  if (auto t = req.headers.Get("Authorization")) creds.sas_token = *t;
  if (req.peer) creds.client_cert_chain_der = &req.peer->client_cert_chain_der;
  return c.svc().Authenticate(creds);
}

HttpResponse OperationResponse(const Ctx& c, const json::object& status) {
  bool assigning = status.at("status") == "assigning";
  auto r = Json(assigning ? 202 : 200, status);
  if (assigning) r.headers.Set("Retry-After", std::to_string(c.svc().options().retry_after_s));
  return r;
}

void Register(const CtxPtr& c, HttpRequest& req, Responder res) {
  auto who = DeviceAuth(*c, req);
  if (!who) return res.Send(DpsError(who.error()));
  auto body = Body(req, true);
  if (!body) return res.Send(DpsError(body.error()));
  std::optional<json::value> payload;
  if (body->is_object()) {
    auto& o = body->get_object();
    if (auto* id = o.if_contains("registrationId");
        id && (!id->is_string() || id->get_string() != req.Param("rid"))) {
      return res.Send(
          DpsError(Error(Errc::kInvalidArgument, "the body's registrationId is not the path's")));
    }
    if (o.contains("tpm")) {
      return res.Send(
          DpsError(Error(Errc::kInvalidArgument, "TPM attestation is not supported by Orrery")));
    }
    if (auto* p = o.if_contains("payload"); p && !p->is_null()) payload = *p;
  }
  c->svc().Register(std::move(*who), std::move(payload), [c, res](Result<json::object> r) {
    res.Send(r ? OperationResponse(*c, *r) : DpsError(r.error()));
  });
}

void Operation(const CtxPtr& c, HttpRequest& req, Responder res) {
  auto who = DeviceAuth(*c, req);
  if (!who) return res.Send(DpsError(who.error()));
  auto st = c->svc().OperationStatus(req.Param("rid"), req.Param("op"));
  res.Send(st ? OperationResponse(*c, *st) : DpsError(st.error()));
}

}  // namespace

void RegisterDpsRoutes(net::Router& router, const DpsApiOptions& options) {
  auto c = std::make_shared<const Ctx>(Ctx{options});
  auto bind = [c](void (*fn)(const CtxPtr&, HttpRequest&, Responder)) {
    return [c, fn](HttpRequest& req, Responder res) { fn(c, req, std::move(res)); };
  };
  auto bind_g = [c](void (*fn)(const CtxPtr&, bool, HttpRequest&, Responder), bool group) {
    return [c, fn, group](HttpRequest& req, Responder res) { fn(c, group, req, std::move(res)); };
  };
  router.Add("PUT", "/{scope}/registrations/{rid}/register", bind(Register));
  router.Add("GET", "/{scope}/registrations/{rid}/operations/{op}", bind(Operation));

  router.Add("POST", "/enrollments", bind(Bulk));
  router.Add("POST", "/enrollments/query", bind_g(QueryEnrollments, false));
  router.Add("PUT", "/enrollments/{id}", bind_g(PutEnrollment, false));
  router.Add("GET", "/enrollments/{id}", bind_g(GetEnrollment, false));
  router.Add("DELETE", "/enrollments/{id}", bind_g(DeleteEnrollment, false));
  router.Add("POST", "/enrollments/{id}/attestationmechanism", bind_g(AttestationMechanism, false));
  // The SDK spells the group collection "enrollmentGroups" for CRUD and "enrollmentgroups"
  // for the attestation mechanism: both work for every route.
  for (const char* groups : {"/enrollmentGroups", "/enrollmentgroups"}) {
    std::string g = groups;
    router.Add("POST", g + "/query", bind_g(QueryEnrollments, true));
    router.Add("PUT", g + "/{id}", bind_g(PutEnrollment, true));
    router.Add("GET", g + "/{id}", bind_g(GetEnrollment, true));
    router.Add("DELETE", g + "/{id}", bind_g(DeleteEnrollment, true));
    router.Add("POST", g + "/{id}/attestationmechanism", bind_g(AttestationMechanism, true));
  }
  router.Add("GET", "/registrations/{id}", bind(GetRegistration));
  router.Add("DELETE", "/registrations/{id}", bind(DeleteRegistration));
  router.Add("POST", "/registrations/{id}/query", bind(QueryRegistrations));
}

}  // namespace orrery::api
