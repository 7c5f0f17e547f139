// Layered configuration: defaults < TOML file < ORRERY_* environment variables < flags.
//
// Components declare their options in a Schema (key, type, default, help, bounds, optional
// flag). Settings::Load merges the layers, validates every value against the schema and
// remembers where each value came from, so errors read like
//   "https.port: expected an integer in 0..65535, got 'abc' (from ORRERY_HTTPS_PORT)".
// Keys are dotted ("https.port"); in TOML they are tables ([https] port = 443); in the
// environment they are upper-cased with '.' → '_' and the ORRERY_ prefix (ORRERY_HTTPS_PORT).
//
// Thread safety: Schema and Settings are immutable after construction and safe to share.
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/error.h"

namespace orrery::config {

enum class Type {
  kString,
  kInt,
  kBool,
  kStringList,  // TOML array of strings; comma-separated in env and flags
  kDuration,    // "500ms", "30s", "5m", "12h", "7d"; stored as milliseconds
  kSize,        // "512", "64KiB", "256MiB", "1GiB" (also KB/MB/GB as powers of 1000); bytes
};

struct Option {
  std::string key;  // dotted, e.g. "https.port"
  Type type = Type::kString;
  std::string default_value;  // textual, parsed like an environment value
  std::string help;           // one line, for --help and the README reference
  int64_t min = std::numeric_limits<int64_t>::min();  // bounds for kInt/kDuration/kSize
  int64_t max = std::numeric_limits<int64_t>::max();
  std::vector<std::string> choices;  // allowed values for kString, when non-empty
  std::string flag;                  // long flag name without dashes ("https-port"), optional
};

class Schema {
 public:
  Schema& Add(Option option);
  const Option* Find(std::string_view key) const;
  const std::vector<Option>& options() const { return options_; }

  // "https.port" → "ORRERY_HTTPS_PORT".
  static std::string EnvName(std::string_view key);
  // The configuration reference as a Markdown table (key, env, flag, default, meaning).
  std::string MarkdownReference() const;

 private:
  std::vector<Option> options_;
};

using Value = std::variant<std::string, int64_t, bool, std::vector<std::string>>;

struct Sources {
  std::optional<std::filesystem::path> file;  // TOML file, if any
  std::map<std::string, std::string> env;     // the process environment (all of it)
  std::map<std::string, std::string> flags;   // key → text, for flags given
};

class Settings {
 public:
  // Merges the layers. Fails on a missing or malformed file, an unknown key in the file, or
  // any value that does not fit its option.
  static Result<Settings> Load(const Schema& schema, const Sources& sources);

  // Accessors. REQUIRES: the key is in the schema with the matching type (else aborts: a
  // programming error, not a user error).
  const std::string& String(std::string_view key) const;
  int64_t Int(std::string_view key) const;
  bool Bool(std::string_view key) const;
  const std::vector<std::string>& List(std::string_view key) const;
  int64_t DurationMs(std::string_view key) const { return Int(key); }
  int64_t Bytes(std::string_view key) const { return Int(key); }

  // Where the value came from: "default", "file <path>", "env ORRERY_X", "flag --x".
  const std::string& Origin(std::string_view key) const;

  // Environment variables with the ORRERY_ prefix that match no key (likely typos).
  const std::vector<std::string>& unknown_env() const { return unknown_env_; }

  // Overrides a value after loading (tests and derived defaults). Validates like Load.
  Status Set(const Schema& schema, std::string_view key, std::string_view text, std::string origin);

 private:
  struct Entry {
    Value value;
    std::string origin;
  };
  const Entry& Get(std::string_view key) const;

  std::map<std::string, Entry, std::less<>> entries_;
  std::vector<std::string> unknown_env_;
};

// Parses "30s"-style durations into milliseconds and "64KiB"-style sizes into bytes.
Result<int64_t> ParseDurationMs(std::string_view text);
Result<int64_t> ParseSize(std::string_view text);

}  // namespace orrery::config
