#include "mqtt/auth.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace orrery::mqtt {
namespace {

TEST(AuthTest, PasswordHashesVerifyInConstantTimeCompare) {
  auto h = HashPassword("correct horse", 1000);
  EXPECT_TRUE(VerifyPassword("correct horse", h));
  EXPECT_FALSE(VerifyPassword("correct horsE", h));
  EXPECT_FALSE(VerifyPassword("x", "$pbkdf2-sha512$1000$bad$bad"));
  EXPECT_FALSE(VerifyPassword("x", "plaintext"));
  EXPECT_NE(HashPassword("same", 1000), HashPassword("same", 1000));  // salted
}

TEST(AuthTest, FilterCoverage) {
  EXPECT_TRUE(FilterCovers("a/#", "a/b/+"));
  EXPECT_TRUE(FilterCovers("a/+/c", "a/b/c"));
  EXPECT_TRUE(FilterCovers("a/+/c", "a/+/c"));
  EXPECT_FALSE(FilterCovers("a/b", "a/+"));
  EXPECT_FALSE(FilterCovers("a/+", "a/#"));
  EXPECT_FALSE(FilterCovers("a/+", "a/b/c"));
  EXPECT_TRUE(FilterCovers("#", "x/y"));
  EXPECT_FALSE(FilterCovers("#", "$SYS/x"));
}

TEST(AuthTest, LoadsUsersAndAclsFromToml) {
  auto path = std::filesystem::temp_directory_path() /
              ("orrery-users-" + std::to_string(::getpid()) + ".toml");
  std::ofstream(path)
      << "allow_anonymous = false\n[[user]]\nname = \"bob\"\npassword_hash = \""
      << HashPassword("pw", 1000)
      << "\"\n[[acl]]\nuser = \"*\"\ntopic = \"public/#\"\naccess = \"read\"\n"
         "[[acl]]\nuser = \"bob\"\ntopic = \"devices/%c/#\"\naccess = \"readwrite\"\n";
  auto auth = ConfigAuth::Load(path.string(), true);
  ASSERT_TRUE(auth) << auth.error().message();
  ClientInfo bob{.client_id = "bob-1", .username = "bob", .principal = "bob"};
  EXPECT_EQ((*auth)->CanPublish(bob, "devices/bob-1/t"), Access::kAllow);
  EXPECT_EQ((*auth)->CanPublish(bob, "devices/other/t"), Access::kDeny);
  EXPECT_EQ((*auth)->CanSubscribe(bob, "public/+"), Access::kAllow);
  EXPECT_EQ((*auth)->CanPublish(bob, "public/x"), Access::kDeny);
  // %c with wildcards in the client id never widens a pattern.
  ClientInfo sneaky{.client_id = "#", .username = "bob", .principal = "bob"};
  EXPECT_EQ((*auth)->CanSubscribe(sneaky, "devices/#"), Access::kDeny);

  std::ofstream(path) << "[[user]]\nname = \"x\"\npassword_hash = \"plain\"\n";
  auto bad = ConfigAuth::Load(path.string(), true);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("orrery mqtt passwd"), std::string::npos);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace orrery::mqtt
