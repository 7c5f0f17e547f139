// Consumer groups and their durable checkpoints (Event Hubs' consumer groups, with the
// checkpoint store built in).
//
// Each group is one file <dir>/<name>.ckpt holding "next sequence to read" per partition,
// replaced atomically (files::WriteFileAtomic: write, fsync, rename, fsync the directory) on
// every Checkpoint(). Checkpoints are infrequent (a consumer checkpoints every few seconds or
// every N events), so a whole-file replace is simpler than an append-only journal and leaves
// nothing to compact. `$Default` always exists and cannot be deleted.
//
// Thread safety: all methods are safe from any thread; writes are serialised.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "eventlog/errc.h"

namespace orrery::eventlog {

inline constexpr std::string_view kDefaultConsumerGroup = "$Default";

// Event Hubs' rule: 1–50 letters, digits, '.', '-', '_', starting and ending with a letter or
// digit; or exactly "$Default".
bool IsValidConsumerGroupName(std::string_view name);

class ConsumerGroups {
 public:
  // Loads every <name>.ckpt in `dir` (created if missing) and creates $Default when absent.
  static Result<std::unique_ptr<ConsumerGroups>> Open(const std::filesystem::path& dir,
                                                      uint32_t partitions);

  Status Create(std::string_view name);  // kGroupExists, kInvalidArgument
  Status Delete(std::string_view name);  // kGroupNotFound; kInvalidArgument for $Default
  bool Exists(std::string_view name) const;
  std::vector<std::string> List() const;  // sorted

  // Records that `group` has processed everything before `next_sequence` in `partition`;
  // durable on return.
  Status Checkpoint(std::string_view group, uint32_t partition, uint64_t next_sequence);
  // The last checkpoint, or nullopt if the group never checkpointed this partition.
  Result<std::optional<uint64_t>> GetCheckpoint(std::string_view group, uint32_t partition) const;

  // Every group's checkpoints, indexed by partition (for lag metrics).
  std::map<std::string, std::vector<std::optional<uint64_t>>> Snapshot() const;

 private:
  using Checkpoints = std::vector<std::optional<uint64_t>>;
  ConsumerGroups(std::filesystem::path dir, uint32_t partitions)
      : dir_(std::move(dir)), partitions_(partitions) {}
  std::filesystem::path FileOf(std::string_view name) const;
  Status Save(const std::string& name, const Checkpoints& checkpoints) const;  // REQUIRES: mu_

  const std::filesystem::path dir_;
  const uint32_t partitions_;
  mutable std::mutex mu_;
  std::map<std::string, Checkpoints, std::less<>> groups_;
};

}  // namespace orrery::eventlog
