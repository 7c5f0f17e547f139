// File helpers with the durability Orrery promises: atomic replace (write, fsync, rename,
// fsync the directory) and bounded reads.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace orrery::files {

// Reads a whole file; fails with kTooLarge beyond max_bytes.
Result<std::string> ReadFile(const std::filesystem::path& path, size_t max_bytes = 16 << 20);

// Replaces `path` atomically with `data`, created with `perms` (e.g. owner_read|owner_write
// for secrets). After success the content survives a crash.
Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data,
                       std::filesystem::perms perms = std::filesystem::perms::owner_read |
                                                      std::filesystem::perms::owner_write |
                                                      std::filesystem::perms::group_read |
                                                      std::filesystem::perms::others_read);

// Creates the directory (and parents) if missing and applies `perms` to the leaf.
Status EnsureDirectory(const std::filesystem::path& path,
                       std::filesystem::perms perms = std::filesystem::perms::owner_all |
                                                      std::filesystem::perms::group_read |
                                                      std::filesystem::perms::group_exec |
                                                      std::filesystem::perms::others_read |
                                                      std::filesystem::perms::others_exec);

// fsyncs a directory so that entries created or renamed in it are durable.
Status SyncDirectory(const std::filesystem::path& path);

// The regular files named in `paths`, and those ending in `extension` (e.g. ".json") under
// any directory named there (recursively), sorted. BaseErrc::kInvalidArgument naming the path
// that is neither a file nor a directory, or cannot be read.
Result<std::vector<std::filesystem::path>> FindFiles(
    const std::vector<std::filesystem::path>& paths, std::string_view extension);

// Secret files: owner read/write only.
constexpr std::filesystem::perms kSecretPerms =
    std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;

}  // namespace orrery::files
