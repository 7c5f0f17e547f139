#include "dps/access.h"

#include <cctype>

#include <fmt/format.h>

#include "base/crypto.h"
#include "base/files.h"
#include "base/strings.h"
#include "dps/errc.h"

namespace orrery::dps {

namespace {
Status CheckScope(std::string_view scope, std::string_view where) {
  bool ok = !scope.empty() && scope.size() <= 32;
  for (char c : scope)
    ok = ok && std::isalnum(static_cast<unsigned char>(c));
  if (ok) return Ok();
  return Error(
      Errc::kInvalidArgument,
      fmt::format("{}: an ID scope is 1 to 32 letters and digits, not '{}'", where, scope));
}
}  // namespace

Result<std::string> LoadIdScope(const std::filesystem::path& data_dir,
                                std::string_view configured) {
  if (!configured.empty()) {
    ORRERY_TRY(CheckScope(configured, "dps.id_scope"));
    return std::string(configured);
  }
  auto dir = data_dir / "dps";
  auto file = dir / "id_scope";
  if (std::filesystem::exists(file)) {
    ORRERY_ASSIGN_OR_RETURN(std::string text, files::ReadFile(file, 256));
    std::string scope(strings::Trim(text));
    ORRERY_TRY(CheckScope(scope, file.string()));
    return scope;
  }
  ORRERY_TRY(files::EnsureDirectory(dir, std::filesystem::perms::owner_all));
  std::string scope = "0ne" + crypto::HexEncode(crypto::RandomBytes(4), /*upper=*/true);
  ORRERY_TRY(files::WriteFileAtomic(file, scope + "\n", files::kSecretPerms));
  return scope;
}

const hub::PolicySchema& DpsPolicySchema() {
  static const hub::PolicySchema schema{
      .subdir = "dps",
      .permissions = {{kServiceConfig, "ServiceConfig"},
                      {kEnrollmentRead, "EnrollmentRead"},
                      {kEnrollmentWrite, "EnrollmentWrite"},
                      {kRegistrationStatusRead, "RegistrationStatusRead"},
                      {kRegistrationStatusWrite, "RegistrationStatusWrite"}},
      .defaults = {{"provisioningserviceowner", kServiceConfig | kEnrollmentRead |
                                                    kEnrollmentWrite | kRegistrationStatusRead |
                                                    kRegistrationStatusWrite},
                   {"enrollmentread", kEnrollmentRead | kRegistrationStatusRead},
                   {"enrollmentwrite", kEnrollmentRead | kEnrollmentWrite |
                                           kRegistrationStatusRead | kRegistrationStatusWrite}},
      .manage_permission = kServiceConfig};
  return schema;
}

}  // namespace orrery::dps
