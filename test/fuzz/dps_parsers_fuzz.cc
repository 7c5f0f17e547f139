// libFuzzer target for the provisioning service's parsers of device- and service-supplied
// text: enrollments and enrollment groups (with attestation, initial twin, policies), stored
// enrollment and registration records, the DPS MQTT user name and the linked-hubs file. The
// first byte picks the parser; nothing may crash, and an enrollment that parses must survive
// its own stored encoding unchanged.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <boost/json.hpp>

#include "dps/enrollment.h"
#include "dps/wire.h"

using namespace orrery::dps;

namespace {

void Enrollments(std::string_view text, bool group) {
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec) return;
  auto e = EnrollmentFromJson(v, group, "fuzz-id");
  if (!e) return;
  ResolveOmitted(e->attestation, nullptr);
  e->etag = EtagFor(e->etag_counter);  // as the store sets it
  auto back = DecodeEnrollment(EncodeEnrollment(*e), group);
  if (!back) std::abort();
  if (EncodeEnrollment(*back) != EncodeEnrollment(*e)) std::abort();
  (void)EnrollmentToJson(*e, false);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 6) {
    case 0:
      Enrollments(text, false);
      break;
    case 1:
      Enrollments(text, true);
      break;
    case 2:
      (void)DecodeEnrollment(text, data[0] & 0x80);
      break;
    case 3:
      if (auto r = DecodeRegistration(text)) (void)RegistrationToJson(*r);
      break;
    case 4:
      (void)ParseDpsUserName(text);
      (void)CheckId(text, "id");
      break;
    case 5:
      (void)ParseLinkedHubs(text);
      break;
  }
  return 0;
}
