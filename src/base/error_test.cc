#include "base/error.h"

#include <gtest/gtest.h>

namespace orrery {
namespace {

Result<int> Half(int v) {
  if (v % 2 != 0) return Error(BaseErrc::kInvalidArgument, "odd: " + std::to_string(v));
  return v / 2;
}

Result<int> Quarter(int v) {
  ORRERY_ASSIGN_OR_RETURN(int h, Half(v));
  return Half(h);
}

TEST(ErrorTest, PropagatesWithContext) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(BaseErrc::kInvalidArgument));
  EXPECT_EQ(r.error().message(), "odd: 3");
  EXPECT_EQ(r.error().ToString(), "odd: 3 (base: invalid argument)");
  EXPECT_EQ(r.error().code().category().name(), std::string("base"));
}

TEST(ErrorTest, ValueThrowsReadableException) {
  auto r = Half(1);
  try {
    (void)r.value();
    FAIL() << "expected a throw";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("odd: 1"), std::string::npos);
  }
}

}  // namespace
}  // namespace orrery
