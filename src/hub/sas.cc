#include "hub/sas.h"

#include <charconv>

#include <fmt/format.h>

#include "base/crypto.h"
#include "base/strings.h"
#include "hub/errc.h"

namespace orrery::hub {

namespace {
constexpr std::string_view kScheme = "SharedAccessSignature";
// Tokens travel in headers and MQTT passwords; anything longer is not a SAS token.
constexpr size_t kMaxTokenBytes = 4096;

Error Unauthorized(std::string message) {
  return Error(Errc::kUnauthorized, std::move(message));
}
}  // namespace

Result<SasToken> ParseSasToken(std::string_view text) {
  if (text.size() > kMaxTokenBytes) return Unauthorized("the SAS token is too long");
  text = strings::Trim(text);
  if (!strings::StartsWith(text, kScheme)) {
    return Unauthorized("expected a token of the form 'SharedAccessSignature sr=…&sig=…&se=…'");
  }
  std::string_view rest = text.substr(kScheme.size());
  if (rest.empty() || (rest.front() != ' ' && rest.front() != '\t')) {
    return Unauthorized("expected a space after 'SharedAccessSignature'");
  }
  rest = strings::Trim(rest);
  SasToken token;
  bool have_sr = false, have_sig = false, have_se = false;
  for (std::string_view field : strings::Split(rest, '&')) {
    auto [name, value] = strings::SplitOnce(field, '=');
    if (!value) continue;
    if (name == "sr") {
      auto decoded = strings::UrlDecode(*value);
      if (!decoded) return Unauthorized("the SAS token's 'sr' is not validly URL-encoded");
      token.resource_raw = std::string(*value);
      token.resource = std::move(*decoded);
      have_sr = true;
    } else if (name == "sig") {
      auto decoded = strings::UrlDecode(*value);
      if (!decoded) return Unauthorized("the SAS token's 'sig' is not validly URL-encoded");
      token.signature = std::move(*decoded);
      have_sig = true;
    } else if (name == "se") {
      auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), token.expiry);
      if (ec != std::errc() || end != value->data() + value->size() || token.expiry < 0) {
        return Unauthorized("the SAS token's 'se' is not a number of seconds since 1970");
      }
      have_se = true;
    } else if (name == "skn") {
      auto decoded = strings::UrlDecode(*value);
      if (!decoded) return Unauthorized("the SAS token's 'skn' is not validly URL-encoded");
      token.key_name = std::move(*decoded);
    }
  }
  if (!have_sr || !have_sig || !have_se) {
    return Unauthorized(fmt::format("the SAS token lacks{}{}{}", have_sr ? "" : " 'sr'",
                                    have_sig ? "" : " 'sig'", have_se ? "" : " 'se'"));
  }
  return token;
}

Result<std::string> SasSignature(std::string_view resource_raw, int64_t expiry,
                                 std::string_view key_base64) {
  auto key = crypto::Base64Decode(key_base64);
  if (!key) return Error(BaseErrc::kInvalidArgument, "the shared access key is not base64");
  return crypto::Base64Encode(
      crypto::HmacSha256(*key, fmt::format("{}\n{}", resource_raw, expiry)));
}

bool SasSignatureMatches(const SasToken& token, std::string_view key_base64) {
  auto expected = SasSignature(token.resource_raw, token.expiry, key_base64);
  return expected && crypto::ConstantTimeEqual(*expected, token.signature);
}

Result<std::string> MakeSasToken(std::string_view resource, std::string_view key_base64,
                                 int64_t expiry, std::string_view key_name, bool encode_resource) {
  std::string sr = encode_resource ? strings::UrlEncode(resource) : std::string(resource);
  ORRERY_ASSIGN_OR_RETURN(std::string sig, SasSignature(sr, expiry, key_base64));
  std::string token =
      fmt::format("SharedAccessSignature sr={}&sig={}", sr, strings::UrlEncode(sig));
  if (!key_name.empty()) token += fmt::format("&skn={}", strings::UrlEncode(key_name));
  token += fmt::format("&se={}", expiry);
  return token;
}

Result<ServiceConnectionString> ParseServiceConnectionString(std::string_view text) {
  ServiceConnectionString cs;
  for (std::string_view piece : strings::Split(text, ';')) {
    auto [name, value] = strings::SplitOnce(strings::Trim(piece), '=');
    if (name.empty() || !value || value->empty()) continue;
    if (name == "HostName") cs.host_name = std::string(*value);
    if (name == "SharedAccessKeyName") cs.key_name = std::string(*value);
    if (name == "SharedAccessKey") cs.key = std::string(*value);
  }
  std::string missing;
  for (auto [name, value] :
       {std::pair{"HostName", &cs.host_name}, std::pair{"SharedAccessKeyName", &cs.key_name},
        std::pair{"SharedAccessKey", &cs.key}}) {
    if (value->empty()) missing += fmt::format("{}{}", missing.empty() ? "" : ", ", name);
  }
  if (!missing.empty()) {
    return Error(BaseErrc::kInvalidArgument,
                 fmt::format("the service connection string lacks {}", missing));
  }
  if (!crypto::Base64Decode(cs.key)) {
    return Error(BaseErrc::kInvalidArgument,
                 "the connection string's SharedAccessKey is not base64");
  }
  return cs;
}

}  // namespace orrery::hub
