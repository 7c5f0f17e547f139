#include "hub/identity.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "hub/errc.h"

namespace orrery::hub {
namespace {
namespace json = boost::json;

Result<Identity> Parse(std::string_view body, std::string_view device = "dev1",
                       std::string_view module = "") {
  return IdentityFromJson(json::parse(body), device, module);
}

TEST(IdentityTest, IdRules) {
  EXPECT_TRUE(IsValidId("dev-1:a.b+c%d_e#f*g?h!i(j)k,l=m@n;o$p'q"));
  EXPECT_FALSE(IsValidId(""));
  EXPECT_FALSE(IsValidId(std::string(129, 'a')));
  EXPECT_TRUE(IsValidId(std::string(128, 'a')));
  EXPECT_FALSE(IsValidId("a/b"));
  EXPECT_FALSE(IsValidId("a b"));
  EXPECT_FALSE(IsValidId("caf\xc3\xa9"));
  auto st = CheckId("a/b", "device id");
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().Is(Errc::kInvalidArgument));
  EXPECT_NE(st.error().message().find("device id 'a/b'"), std::string::npos);
}

TEST(IdentityTest, EmptyKeysAreGeneratedAsTheSdkExpects) {
  // What Registry.create sends when the caller gave no authentication (§4.3).
  auto id = Parse(R"({"deviceId":"dev1","authentication":{"type":"sas",
                     "symmetricKey":{"primaryKey":"","secondaryKey":""}}})");
  ASSERT_TRUE(id) << id.error().message();
  EXPECT_EQ(id->auth.type, AuthType::kSas);
  EXPECT_EQ(id->auth.primary_key.size(), 44u);
  EXPECT_NE(id->auth.primary_key, id->auth.secondary_key);
  EXPECT_TRUE(crypto::Base64Decode(id->auth.secondary_key));
  auto bare = Parse(R"({"deviceId":"dev1"})");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->auth.type, AuthType::kSas);
  EXPECT_FALSE(bare->auth.primary_key.empty());
  EXPECT_TRUE(bare->enabled);
}

TEST(IdentityTest, ThumbprintsWithoutTypeMeanSelfSigned) {
  auto id = Parse(R"({"authentication":{"x509Thumbprint":{"primaryThumbprint":
                     "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01"}}})");
  ASSERT_TRUE(id) << id.error().message();
  EXPECT_EQ(id->auth.type, AuthType::kSelfSigned);
  EXPECT_EQ(id->auth.primary_thumbprint, "ABCDEF0123456789ABCDEF0123456789ABCDEF01");
  EXPECT_TRUE(id->auth.primary_key.empty());
}

TEST(IdentityTest, RefusesWhatIotHubRefuses) {
  auto why = [](Result<Identity> r) { return r ? std::string("accepted") : r.error().message(); };
  EXPECT_NE(why(Parse(R"({"deviceId":"other"})")).find("does not match"), std::string::npos);
  EXPECT_NE(why(Parse(R"({"status":"paused"})")).find("neither enabled nor disabled"),
            std::string::npos);
  EXPECT_NE(why(Parse(R"({"authentication":{"type":"sas","symmetricKey":{"primaryKey":"abc"}}})"))
                .find("not valid base64"),
            std::string::npos);
  EXPECT_NE(why(Parse(R"({"authentication":{"type":"sas","symmetricKey":{"primaryKey":"AAAA"}}})"))
                .find("16 to 64 bytes"),
            std::string::npos);
  EXPECT_NE(why(Parse(R"({"authentication":{"type":"selfSigned"}})")).find("primaryThumbprint"),
            std::string::npos);
  EXPECT_NE(why(Parse(R"({"authentication":{"type":"kerberos"}})")).find("not one of"),
            std::string::npos);
  EXPECT_NE(why(Parse(R"({"authentication":{"x509Thumbprint":{"primaryThumbprint":"12"}}})"))
                .find("SHA-1"),
            std::string::npos);
  EXPECT_NE(why(Parse("[]")).find("object"), std::string::npos);
  EXPECT_NE(why(Parse("{}", "bad/id")).find("device id"), std::string::npos);
}

TEST(IdentityTest, JsonAndStorageForms) {
  auto id = Parse(R"({"status":"disabled","statusReason":"maintenance",
                     "capabilities":{"iotEdge":true},"parentScopes":["p1"]})");
  ASSERT_TRUE(id);
  id->generation_id = NewGenerationId();
  id->etag_counter = 7;
  id->etag = EtagForCounter(7);
  EXPECT_EQ(id->generation_id.size(), 18u);
  EXPECT_EQ(EtagForCounter(1), "MQ==");
  auto o = IdentityToJson(*id, {.connected = true, .c2d_message_count = 3});
  EXPECT_EQ(o["status"], "disabled");
  EXPECT_EQ(o["statusReason"], "maintenance");
  EXPECT_EQ(o["connectionState"], "Connected");
  EXPECT_EQ(o["cloudToDeviceMessageCount"], 3);
  EXPECT_EQ(o["capabilities"].as_object()["iotEdge"], true);
  EXPECT_EQ(o["authentication"].as_object()["type"], "sas");
  auto back = DecodeIdentity(EncodeIdentity(*id));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->generation_id, id->generation_id);
  EXPECT_EQ(back->etag, id->etag);
  EXPECT_EQ(back->auth.primary_key, id->auth.primary_key);
  EXPECT_FALSE(back->enabled);
  EXPECT_TRUE(back->iot_edge);
  EXPECT_EQ(back->parent_scopes, id->parent_scopes);
  // Modules carry moduleId and managedBy, not status or capabilities.
  auto mod = Parse(R"({"moduleId":"m1","managedBy":"edge"})", "dev1", "m1");
  ASSERT_TRUE(mod);
  auto mo = IdentityToJson(*mod, {});
  EXPECT_EQ(mo["moduleId"], "m1");
  EXPECT_EQ(mo["managedBy"], "edge");
  EXPECT_FALSE(mo.contains("status"));
  EXPECT_FALSE(DecodeIdentity("garbage"));
}

}  // namespace
}  // namespace orrery::hub
