// The provisioning service's shared access policies (DPS's "Shared access policies"): its
// permissions and default policies, kept by a hub::PolicyStore in <data-dir>/dps/.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "base/error.h"
#include "hub/policies.h"

namespace orrery::dps {

enum Permission : uint32_t {
  kEnrollmentRead = 1,
  kEnrollmentWrite = 2,
  kRegistrationStatusRead = 4,
  kRegistrationStatusWrite = 8,
  kServiceConfig = 16,
};

// provisioningserviceowner (every permission), enrollmentread (EnrollmentRead,
// RegistrationStatusRead), enrollmentwrite (EnrollmentRead, EnrollmentWrite,
// RegistrationStatusRead, RegistrationStatusWrite).
const hub::PolicySchema& DpsPolicySchema();

// The service's ID scope: `configured` when non-empty (1..32 letters and digits), else the one
// in <data_dir>/dps/id_scope, created on first use as DPS makes them ("0ne" + 8 hex digits).
// Works without a running server, so that scripts can bootstrap (`orrery dps id-scope`).
Result<std::string> LoadIdScope(const std::filesystem::path& data_dir,
                                std::string_view configured = {});

}  // namespace orrery::dps
