#include "base/crypto.h"

#include <gtest/gtest.h>

namespace orrery::crypto {
namespace {

TEST(CryptoTest, Base64RoundTripAndStrictness) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    auto enc = Base64Encode(s);
    auto dec = Base64Decode(enc);
    ASSERT_TRUE(dec) << enc;
    EXPECT_EQ(*dec, s);
  }
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_FALSE(Base64Decode("Zm8"));
  EXPECT_FALSE(Base64Decode("Zm8*"));
  EXPECT_FALSE(Base64Decode("Z=m8"));
}

TEST(CryptoTest, HmacSha256KnownAnswer) {
  // RFC 4231 test case 2.
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(CryptoTest, ConstantTimeEqual) {
  EXPECT_TRUE(ConstantTimeEqual("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEqual("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEqual("abc", "abcd"));
}

TEST(CryptoTest, RandomKeysDiffer) {
  auto a = RandomKeyBase64();
  auto b = RandomKeyBase64();
  EXPECT_EQ(a.size(), 44u);
  EXPECT_NE(a, b);
}

TEST(CryptoTest, RandomUuidsAreVersion4) {
  auto a = RandomUuid();
  ASSERT_EQ(a.size(), 36u);
  for (size_t i : {8u, 13u, 18u, 23u})
    EXPECT_EQ(a[i], '-') << a;
  EXPECT_EQ(a[14], '4') << a;
  EXPECT_NE(std::string("89ab").find(a[19]), std::string::npos) << a;
  EXPECT_NE(a, RandomUuid());
}

TEST(CryptoTest, Digests) {
  EXPECT_EQ(HexEncode(Sha1("abc"), true), "A9993E364706816ABA3E25717850C26C9CD0D89D");
  EXPECT_EQ(HexEncode(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace orrery::crypto
