// CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected; iSCSI, ext4, RocksDB) for record
// checksums. Crc32c() picks the SSE4.2 instruction when the CPU has it (checked once at run
// time) and a table-driven portable implementation otherwise; both are exposed for tests.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace orrery::eventlog {

// Extends `crc` (the CRC32C of earlier bytes; 0 for none) over [data, data + size).
// Crc32c(Crc32c(0, a), b) == Crc32c(0, a + b).
uint32_t Crc32c(uint32_t crc, const void* data, size_t size);
inline uint32_t Crc32c(std::string_view bytes) {
  return Crc32c(0, bytes.data(), bytes.size());
}

// The two implementations behind Crc32c().
uint32_t Crc32cPortable(uint32_t crc, const void* data, size_t size);
// REQUIRES: HasHardwareCrc32c().
uint32_t Crc32cHardware(uint32_t crc, const void* data, size_t size);
bool HasHardwareCrc32c();

}  // namespace orrery::eventlog
