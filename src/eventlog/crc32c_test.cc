#include "eventlog/crc32c.h"

#include <random>
#include <string>

#include <gtest/gtest.h>

namespace orrery::eventlog {
namespace {

// Known CRC32C vectors (RFC 3720 B.4 and the common check value).
struct Vector {
  std::string data;
  uint32_t crc;
};

std::vector<Vector> KnownVectors() {
  std::string ascending(32, '\0'), descending(32, '\0');
  for (int i = 0; i < 32; ++i) {
    ascending[static_cast<size_t>(i)] = static_cast<char>(i);
    descending[static_cast<size_t>(i)] = static_cast<char>(31 - i);
  }
  return {
      {"", 0x00000000},
      {"123456789", 0xE3069283},
      {std::string(32, '\0'), 0x8A9136AA},
      {std::string(32, '\xff'), 0x62A8AB43},
      {ascending, 0x46DD794E},
      {descending, 0x113FDB5C},
  };
}

TEST(Crc32cTest, PortableMatchesKnownVectors) {
  for (const auto& v : KnownVectors()) {
    EXPECT_EQ(Crc32cPortable(0, v.data.data(), v.data.size()), v.crc) << v.data.size();
  }
}

TEST(Crc32cTest, HardwareMatchesKnownVectors) {
  if (!HasHardwareCrc32c()) GTEST_SKIP() << "no SSE4.2 on this CPU";
  for (const auto& v : KnownVectors()) {
    EXPECT_EQ(Crc32cHardware(0, v.data.data(), v.data.size()), v.crc) << v.data.size();
  }
}

TEST(Crc32cTest, DispatchMatchesAndExtendsIncrementally) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  std::mt19937 rng(7);
  std::string data(4099, '\0');
  for (auto& c : data)
    c = static_cast<char>(rng());
  // Every split point, every alignment: both implementations agree and extend correctly.
  uint32_t whole = Crc32cPortable(0, data.data(), data.size());
  EXPECT_EQ(Crc32c(data), whole);
  for (size_t split : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{13}, size_t{4096}}) {
    uint32_t a = Crc32cPortable(0, data.data(), split);
    EXPECT_EQ(Crc32cPortable(a, data.data() + split, data.size() - split), whole) << split;
    uint32_t b = Crc32c(0, data.data(), split);
    EXPECT_EQ(Crc32c(b, data.data() + split, data.size() - split), whole) << split;
  }
  for (size_t offset = 0; offset < 9; ++offset) {
    EXPECT_EQ(Crc32c(0, data.data() + offset, 100), Crc32cPortable(0, data.data() + offset, 100));
  }
}

}  // namespace
}  // namespace orrery::eventlog
