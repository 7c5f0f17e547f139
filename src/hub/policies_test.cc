#include "hub/policies.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include "base/files.h"

namespace orrery::hub {
namespace {

class PoliciesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("orrery-pol-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(PoliciesTest, CreatesIotHubDefaultsOnceWithPrivateFile) {
  auto a = PolicyStore::Open(dir_);
  ASSERT_TRUE(a) << a.error().message();
  auto owner = (*a)->Find("iothubowner");
  ASSERT_TRUE(owner);
  EXPECT_EQ(owner->permissions, kRegistryRead | kRegistryWrite | kServiceConnect | kDeviceConnect);
  EXPECT_EQ((*a)->Find("registryRead")->permissions, kRegistryRead);
  EXPECT_EQ((*a)->Find("service")->permissions, kServiceConnect);
  EXPECT_EQ((*a)->List().size(), 5u);
  EXPECT_NE(owner->primary_key, owner->secondary_key);
  auto perms = std::filesystem::status(dir_ / "hub" / "policies.json").permissions();
  EXPECT_EQ(perms & std::filesystem::perms::all, files::kSecretPerms);

  auto b = PolicyStore::Open(dir_);
  ASSERT_TRUE(b);
  EXPECT_EQ((*b)->Find("iothubowner")->primary_key, owner->primary_key);
  auto cs = (*b)->ConnectionString("localhost", "iothubowner");
  ASSERT_TRUE(cs);
  EXPECT_EQ(*cs, "HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=" +
                     owner->primary_key);
  auto missing = (*b)->ConnectionString("localhost", "nobody");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().Is(Errc::kPolicyNotFound));
}

TEST_F(PoliciesTest, CorruptFileIsAClearError) {
  ASSERT_TRUE(files::EnsureDirectory(dir_ / "hub"));
  ASSERT_TRUE(files::WriteFileAtomic(dir_ / "hub" / "policies.json", "{not json"));
  auto s = PolicyStore::Open(dir_);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("policies.json"), std::string::npos);
}

TEST(PermissionsTest, RoundTrip) {
  EXPECT_EQ(PermissionsToString(kRegistryRead | kServiceConnect), "RegistryRead, ServiceConnect");
  EXPECT_EQ(*PermissionsFromString("registryread,ServiceConnect"), kRegistryRead | kServiceConnect);
  EXPECT_FALSE(PermissionsFromString("Everything"));
}

}  // namespace
}  // namespace orrery::hub
