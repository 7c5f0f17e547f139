#include "eventlog/consumer_groups.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "base/files.h"
#include "base/strings.h"

namespace orrery::eventlog {
namespace {

constexpr std::string_view kSuffix = ".ckpt";
constexpr std::string_view kFileHeader = "orrery-checkpoints 1";

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

Error GroupNotFound(std::string_view name) {
  return Error(Errc::kGroupNotFound, fmt::format("consumer group '{}' not found", name));
}

template <class T>
bool ParseNumber(std::string_view s, T* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

}  // namespace

bool IsValidConsumerGroupName(std::string_view name) {
  if (name == kDefaultConsumerGroup) return true;
  if (name.empty() || name.size() > 50) return false;
  if (!IsAlnum(name.front()) || !IsAlnum(name.back())) return false;
  for (char c : name) {
    if (!IsAlnum(c) && c != '.' && c != '-' && c != '_') return false;
  }
  return true;
}

Result<std::unique_ptr<ConsumerGroups>> ConsumerGroups::Open(const std::filesystem::path& dir,
                                                             uint32_t partitions) {
  std::unique_ptr<ConsumerGroups> groups(new ConsumerGroups(dir, partitions));
  ORRERY_TRY(files::EnsureDirectory(dir));
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string file = entry.path().filename().string();
    if (file.size() <= kSuffix.size() || !file.ends_with(kSuffix)) continue;
    std::string name = file.substr(0, file.size() - kSuffix.size());
    if (!IsValidConsumerGroupName(name)) continue;
    ORRERY_ASSIGN_OR_RETURN(std::string text, files::ReadFile(entry.path(), 1 << 20));
    auto corrupt = [&](std::string_view why) {
      return Error(Errc::kCorrupt, fmt::format("{}: {}", entry.path().string(), why));
    };
    auto lines = strings::Split(text, '\n');
    if (lines.empty() || lines[0] != kFileHeader) return corrupt("missing header line");
    Checkpoints checkpoints(partitions);
    for (size_t i = 1; i < lines.size(); ++i) {
      if (lines[i].empty()) continue;
      auto [p, seq] = strings::SplitOnce(lines[i], ' ');
      uint32_t partition;
      uint64_t next;
      if (!seq || !ParseNumber(p, &partition) || !ParseNumber(*seq, &next)) {
        return corrupt(fmt::format("bad line {}", i + 1));
      }
      // A checkpoint for a partition beyond the count cannot happen (the count is fixed);
      // treat it as corruption rather than silently dropping it.
      if (partition >= partitions) return corrupt(fmt::format("partition {} out of range", p));
      checkpoints[partition] = next;
    }
    groups->groups_.emplace(std::move(name), std::move(checkpoints));
  }
  if (ec) {
    return Error(Errc::kIo, fmt::format("cannot list {}: {}", dir.string(), ec.message()));
  }
  if (!groups->groups_.contains(kDefaultConsumerGroup)) {
    std::lock_guard lock(groups->mu_);
    Checkpoints empty(partitions);
    ORRERY_TRY(groups->Save(std::string(kDefaultConsumerGroup), empty));
    groups->groups_.emplace(std::string(kDefaultConsumerGroup), std::move(empty));
  }
  return groups;
}

std::filesystem::path ConsumerGroups::FileOf(std::string_view name) const {
  return dir_ / (std::string(name) + std::string(kSuffix));
}

Status ConsumerGroups::Save(const std::string& name, const Checkpoints& checkpoints) const {
  std::string text = std::string(kFileHeader) + "\n";
  for (size_t p = 0; p < checkpoints.size(); ++p) {
    if (checkpoints[p]) text += fmt::format("{} {}\n", p, *checkpoints[p]);
  }
  return files::WriteFileAtomic(FileOf(name), text);
}

Status ConsumerGroups::Create(std::string_view name) {
  if (!IsValidConsumerGroupName(name)) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("invalid consumer group name '{}' (1-50 letters, digits, '.', '-', "
                             "'_', starting and ending with a letter or digit)",
                             name));
  }
  std::lock_guard lock(mu_);
  if (groups_.contains(name)) {
    return Error(Errc::kGroupExists, fmt::format("consumer group '{}' already exists", name));
  }
  Checkpoints empty(partitions_);
  ORRERY_TRY(Save(std::string(name), empty));
  groups_.emplace(std::string(name), std::move(empty));
  return Ok();
}

Status ConsumerGroups::Delete(std::string_view name) {
  if (name == kDefaultConsumerGroup) {
    return Error(Errc::kInvalidArgument, "the $Default consumer group cannot be deleted");
  }
  std::lock_guard lock(mu_);
  auto it = groups_.find(name);
  if (it == groups_.end()) return GroupNotFound(name);
  auto file = FileOf(name);
  if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
    return Error(Errc::kIo,
                 fmt::format("cannot delete {}: {}", file.string(), std::strerror(errno)));
  }
  ORRERY_TRY(files::SyncDirectory(dir_));
  groups_.erase(it);
  return Ok();
}

bool ConsumerGroups::Exists(std::string_view name) const {
  std::lock_guard lock(mu_);
  return groups_.contains(name);
}

std::vector<std::string> ConsumerGroups::List() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, _] : groups_)
    names.push_back(name);
  return names;
}

Status ConsumerGroups::Checkpoint(std::string_view group, uint32_t partition,
                                  uint64_t next_sequence) {
  if (partition >= partitions_) return PartitionOutOfRange(partition, partitions_);
  std::lock_guard lock(mu_);
  auto it = groups_.find(group);
  if (it == groups_.end()) return GroupNotFound(group);
  Checkpoints updated = it->second;
  updated[partition] = next_sequence;
  ORRERY_TRY(Save(it->first, updated));
  it->second = std::move(updated);
  return Ok();
}

Result<std::optional<uint64_t>> ConsumerGroups::GetCheckpoint(std::string_view group,
                                                              uint32_t partition) const {
  if (partition >= partitions_) return PartitionOutOfRange(partition, partitions_);
  std::lock_guard lock(mu_);
  auto it = groups_.find(group);
  if (it == groups_.end()) return GroupNotFound(group);
  return it->second[partition];
}

std::map<std::string, std::vector<std::optional<uint64_t>>> ConsumerGroups::Snapshot() const {
  std::lock_guard lock(mu_);
  return {groups_.begin(), groups_.end()};
}

}  // namespace orrery::eventlog
