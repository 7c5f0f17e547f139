#include "dps/wire.h"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "base/strings.h"
#include "base/time.h"
#include "dps/errc.h"
#include "hub/sas.h"

namespace orrery::dps {
namespace json = boost::json;

std::optional<DpsUserName> ParseDpsUserName(std::string_view username) {
  // "{idScope}/registrations/{registrationId}/api-version=…" (no '?': §5.2).
  auto a = username.find('/');
  if (a == std::string_view::npos || a == 0) return std::nullopt;
  constexpr std::string_view kMid = "/registrations/";
  if (username.substr(a, kMid.size()) != kMid) return std::nullopt;
  auto rid_start = a + kMid.size();
  auto b = username.find('/', rid_start);
  if (b == std::string_view::npos || b == rid_start) return std::nullopt;
  auto rest = username.substr(b + 1);
  if (!rest.starts_with("api-version=")) return std::nullopt;
  return DpsUserName{std::string(username.substr(0, a)),
                     std::string(username.substr(rid_start, b - rid_start))};
}

std::string ErrorBody(const Error& error) {
  auto w = ToWireError(error);
  return json::serialize(json::object{{"errorCode", w.numeric},
                                      {"trackingId", crypto::HexEncode(crypto::RandomBytes(16))},
                                      {"message", error.message()},
                                      {"timestampUtc", timeutil::FormatUtcMs(timeutil::NowMs())}});
}

Result<std::vector<LinkedHubConfig>> ParseLinkedHubs(std::string_view json_text) {
  boost::system::error_code ec;
  auto v = json::parse(json_text, ec);
  if (ec || !v.is_array()) {
    return Error(Errc::kInvalidArgument,
                 "the linked hubs file must be a JSON array of {\"connectionString\": …, "
                 "\"allocationWeight\": …, \"applyAllocationPolicy\": …}");
  }
  std::vector<LinkedHubConfig> out;
  for (size_t i = 0; i < v.get_array().size(); ++i) {
    auto& item = v.get_array()[i];
    auto bad = [&](std::string_view why) {
      return Error(Errc::kInvalidArgument, fmt::format("linked hub #{}: {}", i + 1, why));
    };
    if (!item.is_object()) return bad("not an object");
    auto& o = item.get_object();
    LinkedHubConfig c;
    auto* cs = o.if_contains("connectionString");
    if (!cs || !cs->is_string()) return bad("connectionString is required");
    c.connection_string = std::string(cs->get_string());
    auto parsed = hub::ParseServiceConnectionString(c.connection_string);
    if (!parsed) return bad(parsed.error().message());
    c.host_name = parsed->host_name;
    if (auto* w = o.if_contains("allocationWeight"); w && !w->is_null()) {
      if (!w->is_int64() || w->get_int64() < 0 || w->get_int64() > 1000) {
        return bad("allocationWeight must be an integer from 0 to 1000");
      }
      c.weight = static_cast<int>(w->get_int64());
    }
    if (auto* a = o.if_contains("applyAllocationPolicy"); a && !a->is_null()) {
      if (!a->is_bool()) return bad("applyAllocationPolicy must be true or false");
      c.apply_allocation_policy = a->get_bool();
    }
    for (auto& prev : out) {
      if (strings::IEquals(prev.host_name, c.host_name)) {
        return bad(fmt::format("hub {} is linked twice", c.host_name));
      }
    }
    out.push_back(std::move(c));
  }
  if (out.size() > 50) return Error(Errc::kInvalidArgument, "at most 50 hubs can be linked");
  return out;
}

}  // namespace orrery::dps
