// The embedded state store: an ordered key-value store with keyspaces, atomic batches and
// group-committed durable writes. RocksDB implements it on one machine; cluster mode will
// put the same interface on PostgreSQL.
//
// Durability: kDurable writes complete after an fsync of the write-ahead log that may be
// shared with concurrent writers (group commit); kBuffered writes reach the OS before they
// complete, so they survive a process crash (kill -9) but not a power loss.
//
// Thread safety: every method is safe from any thread. WriteAsync never blocks the caller;
// its callback runs on the store's writer thread (post to your own executor from there).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/metrics.h"

namespace orrery::store {

enum class Errc {
  kOpenFailed = 1,
  kIo,
  kCorruption,
  kClosed,
};
inline std::error_code make_error_code(Errc e) {
  return MakeErrorCode(e);
}

enum class Durability { kDurable, kBuffered };

class WriteBatch {
 public:
  void Put(std::string_view space, std::string_view key, std::string_view value);
  void Delete(std::string_view space, std::string_view key);
  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }
  void Append(WriteBatch&& other);

  struct Op {
    bool is_delete;
    std::string key;  // space + '\0' + key
    std::string value;
  };
  const std::vector<Op>& ops() const { return ops_; }

 private:
  std::vector<Op> ops_;
};

class KvStore {
 public:
  virtual ~KvStore() = default;

  virtual Result<std::optional<std::string>> Get(std::string_view space, std::string_view key) = 0;
  // Visits the keys of `space` that start with `prefix`, in order, until `visit` returns false.
  virtual Status Scan(
      std::string_view space, std::string_view prefix,
      const std::function<bool(std::string_view key, std::string_view value)>& visit) = 0;
  // Applies the batch atomically; blocks until done.
  virtual Status Write(WriteBatch batch, Durability durability) = 0;
  // Applies the batch durably without blocking; `done` runs on the writer thread.
  virtual void WriteAsync(WriteBatch batch, std::function<void(Status)> done) = 0;
  // Blocks until every WriteAsync accepted before the call has completed and its callback has
  // been run and destroyed, so whatever those callbacks own (connections, timers) is released
  // before its owners (I/O contexts) go away. Must not be called from a WriteAsync callback.
  virtual void Drain() = 0;
};

struct RocksDbOptions {
  std::filesystem::path path;
  size_t block_cache_bytes = 64 << 20;
  metrics::Registry* metrics = nullptr;
};

// Opens (creating if missing) a RocksDB store. Fails with a clear message when the directory
// is locked or unreadable.
Result<std::unique_ptr<KvStore>> OpenRocksDb(const RocksDbOptions& options);

}  // namespace orrery::store

template <>
struct orrery::ErrcTraits<orrery::store::Errc> {
  static constexpr const char* kName = "store";
  static std::string Message(orrery::store::Errc e) {
    switch (e) {
      case orrery::store::Errc::kOpenFailed:
        return "cannot open the state store";
      case orrery::store::Errc::kIo:
        return "state store I/O error";
      case orrery::store::Errc::kCorruption:
        return "state store corruption";
      case orrery::store::Errc::kClosed:
        return "state store is closed";
    }
    return "unknown store error";
  }
};
ORRERY_ERRC(orrery::store::Errc);
