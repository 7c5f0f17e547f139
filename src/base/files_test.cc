#include "base/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace orrery::files {
namespace {

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("orrery-files-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(FilesTest, AtomicWriteReplacesAndHonoursPermissions) {
  ASSERT_TRUE(EnsureDirectory(dir_));
  auto p = dir_ / "secret.json";
  ASSERT_TRUE(WriteFileAtomic(p, "one", kSecretPerms));
  ASSERT_TRUE(WriteFileAtomic(p, "two", kSecretPerms));
  EXPECT_EQ(*ReadFile(p), "two");
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "secret.json.tmp"));
}

TEST_F(FilesTest, FindFilesWalksDirectoriesAndSorts) {
  ASSERT_TRUE(EnsureDirectory(dir_ / "models" / "deep"));
  ASSERT_TRUE(WriteFileAtomic(dir_ / "models" / "deep" / "b.json", "{}"));
  ASSERT_TRUE(WriteFileAtomic(dir_ / "models" / "a.json", "{}"));
  ASSERT_TRUE(WriteFileAtomic(dir_ / "models" / "notes.txt", "x"));
  ASSERT_TRUE(WriteFileAtomic(dir_ / "single.txt", "x"));
  auto found = FindFiles({dir_ / "models", dir_ / "single.txt"}, ".json");
  ASSERT_TRUE(found) << found.error().message();
  ASSERT_EQ(found->size(), 3u);
  EXPECT_EQ((*found)[0], dir_ / "models" / "a.json");
  EXPECT_EQ((*found)[1], dir_ / "models" / "deep" / "b.json");
  EXPECT_EQ((*found)[2], dir_ / "single.txt");  // named explicitly: taken whatever its name
  auto missing = FindFiles({dir_ / "nope"}, ".json");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("neither a file nor a directory"), std::string::npos);
}

TEST_F(FilesTest, ReadIsBounded) {
  ASSERT_TRUE(EnsureDirectory(dir_));
  ASSERT_TRUE(WriteFileAtomic(dir_ / "big", std::string(100, 'x')));
  auto r = ReadFile(dir_ / "big", 99);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(BaseErrc::kTooLarge));
  auto missing = ReadFile(dir_ / "missing");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().Is(BaseErrc::kNotFound));
}

}  // namespace
}  // namespace orrery::files
