#include "routing/service.h"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/files.h"
#include "base/log.h"
#include "routing/errc.h"

namespace orrery::routing {
namespace json = boost::json;

namespace {
constexpr std::string_view kMasked = "********";
}

RoutingService::RoutingService(eventlog::EventLog* log, ServiceOptions options)
    : log_(log), options_(std::move(options)) {
  if (options_.endpoints.dead_letter_root.empty()) {
    options_.endpoints.dead_letter_root = options_.state_dir / "dead-letter";
  }
  router_ = std::make_shared<Router>(options_.router);
  endpoints_ = std::make_unique<EndpointManager>(log_, options_.endpoints);
}

RoutingService::~RoutingService() {
  Stop();
}

Result<std::unique_ptr<RoutingService>> RoutingService::Open(eventlog::EventLog* log,
                                                             ServiceOptions options) {
  std::unique_ptr<RoutingService> s(new RoutingService(log, std::move(options)));
  ORRERY_TRY(files::EnsureDirectory(s->options_.state_dir, std::filesystem::perms::owner_all));
  std::filesystem::path source = s->options_.config_file;
  bool from_file = !source.empty();
  if (!from_file) source = s->options_.state_dir / "routing.json";
  if (!std::filesystem::exists(source)) {
    if (from_file) {
      return Error(Errc::kInvalidConfig,
                   fmt::format("routing.file {} does not exist", source.string()));
    }
    return s;  // not configured: everything goes to the built-in endpoint
  }
  ORRERY_ASSIGN_OR_RETURN(std::string text, files::ReadFile(source, 4 << 20));
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) {
    return Error(Errc::kInvalidConfig,
                 fmt::format("{} is not JSON: {}", source.string(), ec.message()));
  }
  auto config = ConfigFromJson(v, s->options_.limits);
  if (!config) {
    return Error(Errc::kInvalidConfig,
                 fmt::format("{}: {}", source.string(), config.error().message()));
  }
  ORRERY_TRY(s->Install(*config, /*save=*/from_file));
  log::Get("routing")->info("routing: {} routes, {} storage and {} webhook endpoints (from {})",
                            config->routes.size(), config->storage.size(), config->webhooks.size(),
                            source.string());
  return s;
}

Status RoutingService::Install(const RoutingConfig& config, bool save) {
  // Conditions first (nothing changes if one does not compile), then readers, then routing.
  Router probe(options_.router);
  ORRERY_TRY(probe.SetConfig(config));
  ORRERY_TRY(endpoints_->Apply(config));
  ORRERY_TRY(router_->SetConfig(config));
  configured_ = true;
  if (save) {
    ORRERY_TRY(files::WriteFileAtomic(options_.state_dir / "routing.json",
                                      json::serialize(ConfigToJson(config, true)) + "\n",
                                      files::kSecretPerms));
  }
  return Ok();
}

Result<RoutingConfig> RoutingService::Configure(const json::value& v) {
  std::lock_guard lock(mu_);
  ORRERY_ASSIGN_OR_RETURN(RoutingConfig config, ConfigFromJson(v, options_.limits));
  auto current = router_->config();
  for (auto& w : config.webhooks) {
    if (w.secret != kMasked) continue;
    w.secret.clear();
    for (auto& old : current->webhooks) {
      if (old.name == w.name) w.secret = old.secret;
    }
  }
  ORRERY_TRY(Install(config, /*save=*/true));
  return config;
}

void RoutingService::Stop() {
  if (endpoints_) endpoints_->Stop();
}

}  // namespace orrery::routing
