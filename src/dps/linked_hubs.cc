#include "dps/linked_hubs.h"

#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "base/strings.h"
#include "base/time.h"
#include "dps/errc.h"
#include "hub/errc.h"
#include "hub/hub.h"
#include "hub/sas.h"
#include "net/http_client.h"

namespace orrery::dps {
namespace json = boost::json;

namespace {

// {"tags":…,"properties":{"desired":…}} of a service twin, without metadata.
json::object TwinData(const json::object& twin) {
  json::object out;
  if (auto* t = twin.if_contains("tags"); t && t->is_object()) out["tags"] = *t;
  json::object desired;
  if (auto* p = twin.if_contains("properties"); p && p->is_object()) {
    if (auto* d = p->get_object().if_contains("desired"); d && d->is_object()) {
      for (auto& [k, v] : d->get_object()) {
        if (!k.starts_with("$")) desired[k] = v;
      }
    }
  }
  out["properties"] = json::object{{"desired", std::move(desired)}};
  return out;
}

// A full replacement needs both sections present (missing ones become empty).
json::object CompleteTwin(json::object twin) {
  if (!twin.contains("tags") || twin["tags"].is_null()) twin["tags"] = json::object();
  auto& props = twin["properties"];
  if (!props.is_object()) props = json::object();
  auto& desired = props.as_object()["desired"];
  if (!desired.is_object()) desired = json::object();
  return twin;
}

class Local final : public HubTarget, public std::enable_shared_from_this<Local> {
 public:
  explicit Local(hub::Hub* hub) : hub_(hub) {}

  void Provision(DeviceSpec spec, std::function<void(Status)> done) override {
    auto existing = hub_->registry().Get(spec.device_id);
    hub::Identity id;
    if (existing) {
      id = existing->identity;
    } else {
      id.device_id = spec.device_id;
    }
    id.auth = spec.auth;
    id.iot_edge = spec.iot_edge;
    auto self = shared_from_this();
    auto then_twin = [self, spec, done](Result<hub::IdentityView> r) mutable {
      if (!r) return done(r.error());
      self->ApplyTwin(std::move(spec), std::move(done));
    };
    if (existing) {
      hub_->UpdateIdentity(std::move(id), "*", std::move(then_twin));
    } else {
      hub_->CreateIdentity(std::move(id), std::move(then_twin));
    }
  }

  void ReadTwin(std::string device_id, std::function<void(Result<json::object>)> done) override {
    auto twin = hub_->registry().GetTwin(device_id);
    if (!twin) return done(twin.error());
    done(TwinData(*twin));
  }

 private:
  void ApplyTwin(DeviceSpec spec, std::function<void(Status)> done) {
    if (!spec.twin) return done(Ok());
    auto reply = [done = std::move(done)](Result<hub::TwinChange> r) {
      done(r ? Ok() : Status(r.error()));
    };
    if (spec.replace_twin) {
      hub_->ReplaceTwin(spec.device_id, CompleteTwin(std::move(*spec.twin)), "*", reply);
    } else {
      hub_->UpdateTwin(spec.device_id, *spec.twin, "*", reply);
    }
  }

  hub::Hub* hub_;
};

constexpr std::string_view kApi = "?api-version=2021-04-12";

class Remote final : public HubTarget, public std::enable_shared_from_this<Remote> {
 public:
  Remote(std::shared_ptr<net::HttpClient> client, hub::ServiceConnectionString cs)
      : client_(std::move(client)), cs_(std::move(cs)) {}

  void Provision(DeviceSpec spec, std::function<void(Status)> done) override {
    auto self = shared_from_this();
    // Paths first: the callbacks below take `spec` by move.
    std::string path = "/devices/" + strings::UrlEncode(spec.device_id);
    Call("GET", path, "",
         [self, path, spec = std::move(spec),
          done = std::move(done)](Result<net::HttpResponse> r) mutable {
           if (!r) return done(r.error());
           json::object body;
           std::string if_match;
           if (r->status == 200) {
             boost::system::error_code ec;
             auto v = json::parse(r->body, ec);
             if (!ec && v.is_object()) body = v.get_object();
             if_match = "*";
           } else if (r->status != 404) {
             return done(self->Failure(*r, "read the device"));
           }
           body["deviceId"] = spec.device_id;
           json::object auth{{"type", hub::AuthTypeName(spec.auth.type)}};
           auth["symmetricKey"] = json::object{{"primaryKey", spec.auth.primary_key},
                                               {"secondaryKey", spec.auth.secondary_key}};
           auth["x509Thumbprint"] =
               json::object{{"primaryThumbprint", spec.auth.primary_thumbprint},
                            {"secondaryThumbprint", spec.auth.secondary_thumbprint}};
           body["authentication"] = std::move(auth);
           body["capabilities"] = json::object{{"iotEdge", spec.iot_edge}};
           if (!body.contains("status")) body["status"] = "enabled";
           self->Call(
               "PUT", path, json::serialize(body),
               [self, spec = std::move(spec),
                done = std::move(done)](Result<net::HttpResponse> put) mutable {
                 if (!put) return done(put.error());
                 if (put->status != 200) {
                   return done(self->Failure(*put, "create the device"));
                 }
                 self->ApplyTwin(std::move(spec), std::move(done));
               },
               if_match);
         });
  }

  void ReadTwin(std::string device_id, std::function<void(Result<json::object>)> done) override {
    auto self = shared_from_this();
    Call("GET", "/twins/" + strings::UrlEncode(device_id), "",
         [self, done = std::move(done)](Result<net::HttpResponse> r) {
           if (!r) return done(r.error());
           if (r->status == 404) {
             return done(Error(hub::Errc::kDeviceNotFound, "the device is not on the old hub"));
           }
           if (r->status != 200) return done(self->Failure(*r, "read the twin"));
           boost::system::error_code ec;
           auto v = json::parse(r->body, ec);
           if (ec || !v.is_object()) {
             return done(Error(Errc::kHubFailed, "the hub answered a twin that is not JSON"));
           }
           done(TwinData(v.get_object()));
         });
  }

 private:
  void ApplyTwin(DeviceSpec spec, std::function<void(Status)> done) {
    if (!spec.twin) return done(Ok());
    auto self = shared_from_this();
    json::object twin = spec.replace_twin ? CompleteTwin(std::move(*spec.twin)) : *spec.twin;
    std::string path = "/twins/" + strings::UrlEncode(spec.device_id);
    Call(
        spec.replace_twin ? "PUT" : "PATCH", path, json::serialize(twin),
        [self, done = std::move(done)](Result<net::HttpResponse> r) {
          if (!r) return done(r.error());
          if (r->status != 200) return done(self->Failure(*r, "set the initial twin"));
          done(Ok());
        },
        "*");
  }

  Error Failure(const net::HttpResponse& r, std::string_view what) const {
    std::string detail = r.body.substr(0, 300);
    return Error(Errc::kHubFailed, fmt::format("hub {} refused to {} (HTTP {}): {}", cs_.host_name,
                                               what, r.status, detail));
  }

  void Call(std::string_view method, std::string path, std::string body,
            std::function<void(Result<net::HttpResponse>)> done, std::string if_match = {}) {
    auto token =
        hub::MakeSasToken(cs_.host_name, cs_.key, timeutil::NowMs() / 1000 + 3600, cs_.key_name);
    if (!token) return done(token.error());
    net::HttpRequest req;
    req.method = std::string(method);
    req.headers.Set("Authorization", *token);
    req.headers.Set("Accept", "application/json");
    if (!body.empty()) req.headers.Set("Content-Type", "application/json; charset=utf-8");
    if (!if_match.empty()) req.headers.Set("If-Match", "\"" + if_match + "\"");
    req.body = std::move(body);
    std::string host = cs_.host_name;
    client_->Send("https://" + host + path + std::string(kApi), std::move(req),
                  [host, done = std::move(done)](Result<net::HttpResponse> r) {
                    if (!r) {
                      return done(Error(Errc::kHubFailed, fmt::format("hub {} unreachable: {}",
                                                                      host, r.error().message())));
                    }
                    done(std::move(r));
                  });
  }

  std::shared_ptr<net::HttpClient> client_;
  hub::ServiceConnectionString cs_;
};

uint64_t Fnv1a(std::string_view a, std::string_view b) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  mix(a);
  mix(std::string_view("\0", 1));
  mix(b);
  // Finaliser (splitmix64) so that similar ids spread over the whole range.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

}  // namespace

std::shared_ptr<HubTarget> LocalHubTarget(hub::Hub* hub) {
  return std::make_shared<Local>(hub);
}

Result<std::shared_ptr<HubTarget>> RemoteHubTarget(boost::asio::any_io_executor executor,
                                                   std::string_view connection_string,
                                                   net::TlsClientOptions tls) {
  auto cs = hub::ParseServiceConnectionString(connection_string);
  if (!cs) return Error(Errc::kInvalidArgument, cs.error().message());
  ORRERY_ASSIGN_OR_RETURN(auto client,
                          net::HttpClient::Create(executor, {.tls = std::move(tls),
                                                             .timeout = std::chrono::seconds(20),
                                                             .max_response_bytes = 1 << 20}));
  return std::shared_ptr<HubTarget>(std::make_shared<Remote>(std::move(client), std::move(*cs)));
}

size_t ChooseHashed(const std::vector<const LinkedHub*>& candidates,
                    std::string_view registration_id) {
  size_t best = 0;
  double best_score = -1;
  for (size_t i = 0; i < candidates.size(); ++i) {
    uint64_t h = Fnv1a(registration_id, strings::ToLower(candidates[i]->host_name));
    // A uniform (0, 1) draw per (id, hub); -w / ln(u) is largest for the hub that wins in
    // proportion to its weight (weighted rendezvous hashing).
    double u = (static_cast<double>(h >> 11) + 0.5) / 9007199254740992.0;
    double score = -static_cast<double>(std::max(candidates[i]->weight, 0)) / std::log(u);
    if (score > best_score) {
      best_score = score;
      best = i;
    }
  }
  return best;
}

}  // namespace orrery::dps
