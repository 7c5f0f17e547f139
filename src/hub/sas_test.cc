#include "hub/sas.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include "hub/policies.h"

namespace orrery::hub {
namespace {

// base64("0123456789abcdef0123456789abcdef"); signatures below computed independently
// (Python's hmac) and matching the captured SDK token in the wire contract.
constexpr std::string_view kKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
constexpr std::string_view kDeviceToken =
    "SharedAccessSignature sr=localhost%2Fdevices%2Fdev1"
    "&sig=3ZhlkF%2F8LVxRpLCHe9ODPfRL4RXD4yHCc7PaIubiM6k%3D&se=1795322094";

TEST(SasTest, ParsesAndVerifiesADeviceSdkToken) {
  auto t = ParseSasToken(kDeviceToken);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->resource_raw, "localhost%2Fdevices%2Fdev1");
  EXPECT_EQ(t->resource, "localhost/devices/dev1");
  EXPECT_EQ(t->expiry, 1795322094);
  EXPECT_TRUE(t->key_name.empty());
  EXPECT_TRUE(SasSignatureMatches(*t, kKey));
  EXPECT_FALSE(SasSignatureMatches(*t, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="));
}

TEST(SasTest, SignsTheResourceExactlyAsSentAndAcceptsAnyFieldOrder) {
  // Service style: sr not encoded, skn between sig and se as the SDK orders it.
  auto made = MakeSasToken("localhost", kKey, 1795322094, "iothubowner");
  ASSERT_TRUE(made);
  EXPECT_EQ(
      *made,
      "SharedAccessSignature sr=localhost&sig=FGPHjpvXfPWucvMtB1AXXxANW62O5SDK%2FeTpPH5oOow%3D"
      "&skn=iothubowner&se=1795322094");
  auto reordered = ParseSasToken(
      "SharedAccessSignature se=1795322094&skn=iothubowner&extra=1"
      "&sig=FGPHjpvXfPWucvMtB1AXXxANW62O5SDK%2FeTpPH5oOow%3D&sr=localhost");
  ASSERT_TRUE(reordered);
  EXPECT_TRUE(SasSignatureMatches(*reordered, kKey));
  EXPECT_EQ(reordered->key_name, "iothubowner");
  // The same resource encoded differently is a different signed string.
  auto encoded = MakeSasToken("localhost/devices/dev1", kKey, 1795322094, {}, true);
  ASSERT_TRUE(encoded);
  EXPECT_EQ(*encoded, kDeviceToken);
  // Tampering with the expiry breaks the signature.
  std::string tampered(kDeviceToken);
  tampered.replace(tampered.size() - 1, 1, "5");
  auto t = ParseSasToken(tampered);
  ASSERT_TRUE(t);
  EXPECT_FALSE(SasSignatureMatches(*t, kKey));
}

TEST(SasTest, MalformedTokensAreClearErrors) {
  for (std::string_view bad :
       {"", "Bearer abc", "SharedAccessSignaturesr=a&sig=b&se=1", "SharedAccessSignature sr=a&se=1",
        "SharedAccessSignature sr=a&sig=b", "SharedAccessSignature sr=a&sig=b&se=soon",
        "SharedAccessSignature sr=a&sig=b&se=-5", "SharedAccessSignature sr=%zz&sig=b&se=1"}) {
    auto t = ParseSasToken(bad);
    ASSERT_FALSE(t) << bad;
    EXPECT_EQ(t.error().code(), make_error_code(Errc::kUnauthorized)) << bad;
    EXPECT_FALSE(t.error().message().empty());
  }
  EXPECT_FALSE(ParseSasToken(std::string(5000, 'x')));
}

TEST(SasTest, ParsesServiceConnectionStrings) {
  auto cs = ParseServiceConnectionString(
      "HostName=localhost;SharedAccessKeyName=service;SharedAccessKey=" + std::string(kKey));
  ASSERT_TRUE(cs) << cs.error().message();
  EXPECT_EQ(cs->host_name, "localhost");
  EXPECT_EQ(cs->key_name, "service");
  EXPECT_EQ(cs->key, kKey);
  auto bad = ParseServiceConnectionString("HostName=h;;SharedAccessKey=");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(),
            "the service connection string lacks SharedAccessKeyName, SharedAccessKey");
  EXPECT_FALSE(ParseServiceConnectionString("HostName=h;SharedAccessKeyName=s;SharedAccessKey=%%"));
}

class PolicyAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("orrery-sas-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    auto s = PolicyStore::Open(dir_);
    ASSERT_TRUE(s);
    store_ = std::move(*s);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Token(std::string_view policy, bool secondary = false, int64_t se = 2'000'000'000,
                    std::string_view sr = "localhost") {
    auto p = store_->Find(policy);
    return *MakeSasToken(sr, secondary ? p->secondary_key : p->primary_key, se, policy);
  }
  std::string Why(const Result<AccessPolicy>& r) { return r ? "" : r.error().message(); }

  std::filesystem::path dir_;
  std::unique_ptr<PolicyStore> store_;
};

TEST_F(PolicyAuthTest, AcceptsEitherKeyOfAPolicyWithTheRights) {
  constexpr int64_t kNow = 1'800'000'000;
  auto r = store_->Authenticate(Token("service"), kServiceConnect, kNow);
  ASSERT_TRUE(r) << Why(r);
  EXPECT_EQ(r->name, "service");
  EXPECT_TRUE(store_->Authenticate(Token("iothubowner", true), kServiceConnect, kNow));
}

TEST_F(PolicyAuthTest, RefusesWrongRightsExpiryKeysAndResources) {
  constexpr int64_t kNow = 1'800'000'000;
  EXPECT_NE(Why(store_->Authenticate(Token("registryRead"), kServiceConnect, kNow))
                .find("lacks the ServiceConnect permission"),
            std::string::npos);
  EXPECT_NE(Why(store_->Authenticate(Token("service", false, kNow - 1), kServiceConnect, kNow))
                .find("expired"),
            std::string::npos);
  // A token signed with another policy's key, or naming a policy that does not exist.
  auto forged = *MakeSasToken("localhost", store_->Find("registryRead")->primary_key, 2'000'000'000,
                              "iothubowner");
  EXPECT_NE(Why(store_->Authenticate(forged, kServiceConnect, kNow)).find("does not verify"),
            std::string::npos);
  auto unknown = *MakeSasToken("localhost", std::string(kKey), 2'000'000'000, "nobody");
  EXPECT_EQ(Why(store_->Authenticate(unknown, kServiceConnect, kNow)),
            Why(store_->Authenticate(forged, kServiceConnect, kNow)));
  // A device resource is not a service credential, even when signed by a policy key.
  EXPECT_NE(Why(store_->Authenticate(Token("service", false, 2'000'000'000, "localhost/devices/d"),
                                     kServiceConnect, kNow))
                .find("host name"),
            std::string::npos);
  auto no_skn = *MakeSasToken("localhost", store_->Find("service")->primary_key, 2'000'000'000);
  EXPECT_NE(Why(store_->Authenticate(no_skn, kServiceConnect, kNow)).find("skn"),
            std::string::npos);
}

}  // namespace
}  // namespace orrery::hub
