#include "eventlog/crc32c.h"

#include <cstring>

#include <boost/crc.hpp>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace orrery::eventlog {
namespace {

// Reflected Castagnoli with the usual pre- and post-inversion.
using PortableCrc = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

uint32_t Reverse32(uint32_t v) {
  uint32_t r = 0;
  for (int i = 0; i < 32; ++i, v >>= 1)
    r = (r << 1) | (v & 1);
  return r;
}

}  // namespace

uint32_t Crc32cPortable(uint32_t crc, const void* data, size_t size) {
  // crc_optimal takes its initial remainder in unreflected bit order, while a finished
  // reflected CRC is the register (bit-reversed) after the final XOR: undo both to resume.
  PortableCrc c(Reverse32(~crc));
  c.process_bytes(data, size);
  return c.checksum();
}

#if defined(__x86_64__)

__attribute__((target("sse4.2"))) uint32_t Crc32cHardware(uint32_t crc, const void* data,
                                                          size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t c = ~crc;
  // Byte steps until 8-byte aligned, then 8 bytes per instruction, then the tail.
  while (size > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    --size;
  }
  while (size >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
    p += 8;
    size -= 8;
  }
  while (size > 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    --size;
  }
  return ~static_cast<uint32_t>(c);
}

bool HasHardwareCrc32c() {
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
}

#else

uint32_t Crc32cHardware(uint32_t crc, const void* data, size_t size) {
  return Crc32cPortable(crc, data, size);
}

bool HasHardwareCrc32c() {
  return false;
}

#endif

uint32_t Crc32c(uint32_t crc, const void* data, size_t size) {
  return HasHardwareCrc32c() ? Crc32cHardware(crc, data, size) : Crc32cPortable(crc, data, size);
}

}  // namespace orrery::eventlog
