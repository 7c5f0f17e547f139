#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "base/files.h"
#include "identity/principals.h"
#include "identity/token.h"

namespace orrery::identity {
namespace {

namespace json = boost::json;

class IdentityTest : public ::testing::Test {
 protected:
  IdentityTest() {
    dir_ = std::filesystem::temp_directory_path() /
           ("orrery-identity-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  ~IdentityTest() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

constexpr int64_t kNow = 1'800'000'000;
const std::vector<std::string> kAud = {"https://digitaltwins.azure.net"};

Claims Sample(const TokenIssuer& t) {
  return Claims{.issuer = "https://localhost:9443/" + t.tenant() + "/v2.0",
                .subject = "3f0c1d3e-0000-4000-8000-000000000001",
                .audience = kAud[0],
                .roles = {"owner"},
                .issued_at_s = kNow,
                .expires_at_s = kNow + 3600};
}

TEST(Base64UrlTest, RoundTripsWithoutPadding) {
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  auto d = Base64UrlDecode("-_8");
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, "\xfb\xff");
  EXPECT_FALSE(Base64UrlDecode("+/8="));
}

TEST_F(IdentityTest, IssuesAndVerifiesTokensWithAStableKeyAndTenant) {
  auto t = TokenIssuer::Open(dir_);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ((*t)->tenant().size(), 36u);
  EXPECT_EQ(
      std::filesystem::status(dir_ / "signing-key.pem").permissions() & std::filesystem::perms::all,
      files::kSecretPerms);
  std::string jwt = (*t)->Issue(Sample(**t));
  auto c = (*t)->Verify(jwt, kAud, "", kNow + 10);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->subject, "3f0c1d3e-0000-4000-8000-000000000001");
  EXPECT_EQ(c->roles, std::vector<std::string>{"owner"});
  EXPECT_EQ(c->tenant, (*t)->tenant());

  // A second open (a restart) has the same key and tenant: old tokens stay valid.
  auto t2 = TokenIssuer::Open(dir_);
  ASSERT_TRUE(t2);
  EXPECT_EQ((*t2)->tenant(), (*t)->tenant());
  EXPECT_EQ((*t2)->key_id(), (*t)->key_id());
  EXPECT_TRUE((*t2)->Verify(jwt, kAud, "", kNow));

  auto jwks = (*t)->Jwks();
  auto& key = jwks.at("keys").as_array().at(0).as_object();
  EXPECT_EQ(key.at("kid").as_string(), (*t)->key_id());
  EXPECT_EQ(key.at("crv").as_string(), "P-256");
  EXPECT_EQ(key.at("x").as_string().size(), 43u);
}

TEST_F(IdentityTest, RefusesTamperedExpiredAndForeignTokens) {
  auto t = TokenIssuer::Open(dir_);
  ASSERT_TRUE(t);
  std::string jwt = (*t)->Issue(Sample(**t));
  auto expect_refused = [&](std::string_view token, int64_t now, std::string_view why) {
    auto c = (*t)->Verify(token, kAud, "", now);
    ASSERT_FALSE(c) << why;
    EXPECT_EQ(c.error().code(), Errc::kUnauthorized);
    EXPECT_NE(c.error().message().find(why), std::string::npos) << c.error().message();
  };
  expect_refused(jwt, kNow + 3600 + 301, "expired");
  expect_refused(jwt, kNow - 301, "not valid yet");
  // Change one claim: the signature no longer matches.
  size_t d1 = jwt.find('.'), d2 = jwt.rfind('.');
  auto body = Base64UrlDecode(jwt.substr(d1 + 1, d2 - d1 - 1));
  ASSERT_TRUE(body);
  std::string forged = *body;
  forged.replace(forged.find("owner"), 5, "ownex");
  expect_refused(jwt.substr(0, d1 + 1) + Base64UrlEncode(forged) + jwt.substr(d2), kNow,
                 "signature does not verify");
  expect_refused(Base64UrlEncode(R"({"alg":"none"})") + jwt.substr(d1), kNow, "not ES256");
  expect_refused("a.b", kNow, "compact");
  auto other = (*t)->Verify(jwt, {"https://management.azure.com"}, "", kNow);
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message().find("audience"), std::string::npos);
  // Another server's key (another data directory) is not ours.
  auto stranger = TokenIssuer::Open(dir_ / "other");
  ASSERT_TRUE(stranger);
  Claims c = Sample(**t);
  c.tenant = (*t)->tenant();
  expect_refused((*stranger)->Issue(c), kNow, "unknown key");
}

TEST_F(IdentityTest, PrincipalsAuthenticateWithTheirSecretOnly) {
  PrincipalStore store(dir_);
  auto owner = store.Create("builder", kOwner);
  ASSERT_TRUE(owner) << owner.error().message();
  auto reader = store.Create("viewer", kReader);
  ASSERT_TRUE(reader);
  EXPECT_EQ(owner->principal.client_id.size(), 36u);
  EXPECT_EQ(owner->secret.size(), 40u);
  EXPECT_EQ(
      std::filesystem::status(dir_ / "principals.json").permissions() & std::filesystem::perms::all,
      files::kSecretPerms);
  // The file holds no secret.
  auto text = files::ReadFile(dir_ / "principals.json");
  ASSERT_TRUE(text);
  EXPECT_EQ(text->find(owner->secret), std::string::npos);

  auto ok = store.Authenticate(owner->principal.client_id, owner->secret);
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->roles, static_cast<uint32_t>(kOwner));
  EXPECT_FALSE(store.Authenticate(owner->principal.client_id, reader->secret));
  EXPECT_FALSE(store.Authenticate("nobody", owner->secret));

  // Another process (the CLI) deletes one: this store sees it on the next call.
  PrincipalStore cli(dir_);
  auto listed = cli.List();
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->size(), 2u);
  ASSERT_TRUE(cli.Remove("viewer"));
  EXPECT_EQ(cli.Remove("viewer").error().code(), Errc::kNotFound);
  auto gone = store.Authenticate(reader->principal.client_id, reader->secret);
  EXPECT_FALSE(gone);
  EXPECT_TRUE(store.Authenticate(owner->principal.client_id, owner->secret));

  EXPECT_EQ(store.Create("builder", kReader).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(store.Create("bad name", kReader).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(store.Create("norole", 0).error().code(), Errc::kInvalidArgument);
  auto roles = ParseRoles({"Azure Digital Twins Data Reader"});
  ASSERT_TRUE(roles);
  EXPECT_EQ(*roles, static_cast<uint32_t>(kReader));
  EXPECT_FALSE(ParseRoles({"admin"}));
}

}  // namespace
}  // namespace orrery::identity
