// libFuzzer target for the MQTT codec. The first input byte picks the decoder's state
// (before CONNECT, MQTT 3.1.1, MQTT 5); the rest is the byte stream. Every packet that
// decodes must re-encode to bytes that decode to the same packet (a round-trip property),
// and nothing may read out of bounds or crash.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "mqtt/codec.h"

using namespace orrery::mqtt;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::optional<Version> version;
  switch (data[0] % 3) {
    case 0:
      version = std::nullopt;
      break;
    case 1:
      version = Version::k311;
      break;
    default:
      version = Version::k5;
      break;
  }
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  DecodeLimits limits{.max_packet_size = 1 << 16};
  while (!in.empty()) {
    Packet p;
    size_t used = 0;
    DecodeError err;
    auto st = Decode(in, version, limits, p, used, err);
    if (st != DecodeStatus::kOk) break;
    Version v = version.value_or(std::holds_alternative<Connect>(p) ? std::get<Connect>(p).version
                                                                    : Version::k311);
    std::string again;
    Encode(p, v, again);
    Packet q;
    size_t used2 = 0;
    DecodeError err2;
    std::optional<Version> v2 =
        std::holds_alternative<Connect>(p) ? std::nullopt : std::optional<Version>(v);
    if (Decode(again, v2, {}, q, used2, err2) != DecodeStatus::kOk || !(p == q) ||
        used2 != again.size()) {
      // The encoder and decoder disagree: show both encodings, then crash for libFuzzer.
      auto hex = [](std::string_view b) {
        std::string h;
        for (unsigned char c : b)
          h += "0123456789abcdef"[c >> 4], h += "0123456789abcdef"[c & 15];
        return h;
      };
      std::fprintf(stderr, "round trip mismatch: type %d v%d\n in  %s\n out %s\n (%s)\n",
                   static_cast<int>(TypeOf(p)), static_cast<int>(v),
                   hex(in.substr(0, used)).c_str(), hex(again).c_str(), err2.message.c_str());
      std::abort();
    }
    if (std::holds_alternative<Connect>(p)) version = v;
    in.remove_prefix(used);
  }
  return 0;
}
