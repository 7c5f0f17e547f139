// libFuzzer target for the hub's parsers of device- and service-supplied text: the MQTT user
// name, device topics and their property bags, SAS tokens and connection strings, identity
// descriptions and twin patches (checked, then applied to a twin and encoded/decoded again).
// The first byte picks the parser; nothing may crash, read out of bounds or leave a twin that
// does not survive its own encoding.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <boost/json.hpp>

#include "hub/identity.h"
#include "hub/mqtt_topics.h"
#include "hub/sas.h"
#include "hub/twin.h"

using namespace orrery::hub;

namespace {

void Twins(std::string_view text) {
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return;
  Twin t;
  TwinLimits limits;
  for (auto kind : {SectionKind::kTags, SectionKind::kDesired, SectionKind::kReported}) {
    if (CheckPatch(t, kind, v.get_object(), limits)) {
      ApplyPatch(t, kind, v.get_object(), 1);
      // The size bookkeeping must agree with a recount.
      if (kind == SectionKind::kDesired && t.desired.size != TwinValueSize(t.desired.values)) {
        std::abort();
      }
    }
  }
  (void)ReplaceTwin(t, v.get_object(), limits, 2);
  auto back = DecodeTwin(EncodeTwin(t));
  if (!back || back->desired.values != t.desired.values || back->tags != t.tags) std::abort();
  (void)TwinToServiceJson(Identity{}, {}, t);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 6) {
    case 0:
      (void)mqtt_topics::ParseUserName(in);
      break;
    case 1: {
      auto t = mqtt_topics::ClassifyPublish(in, "dev1", data[0] & 0x80 ? "m1" : "");
      if (t.kind == mqtt_topics::Kind::kTelemetry) (void)mqtt_topics::TelemetryFromBag(t.bag, "b");
      (void)mqtt_topics::DeviceMaySubscribe(in, "dev1", "");
      break;
    }
    case 2:
      (void)ParseSasToken(in);
      (void)ParseServiceConnectionString(in);
      break;
    case 3: {
      boost::system::error_code ec;
      auto v = boost::json::parse(in, ec);
      if (!ec) (void)IdentityFromJson(v, "dev1", data[0] & 0x80 ? "m1" : "");
      (void)CheckId(in, "id");
      break;
    }
    case 4:
      Twins(in);
      break;
    default: {
      auto bag = mqtt_topics::ParsePropertyBag(in);
      if (bag) {
        C2dMessage m;
        m.properties = *bag;
        // What we encode must decode to the same properties.
        auto topic = mqtt_topics::C2dTopic("d", m);
        auto again = mqtt_topics::ParsePropertyBag(topic.substr(topic.rfind('/') + 1));
        if (!again) std::abort();
        std::vector<std::pair<std::string, std::string>> kept;
        for (auto& p : *bag)
          if (!p.first.empty()) kept.push_back(p);
        if (*again != kept) std::abort();
      }
      break;
    }
  }
  return 0;
}
