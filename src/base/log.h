// Structured logging on spdlog: one named logger per component, human or JSON lines on stderr.
//
// Thread safety: Init() once at start-up before other threads log; Get() and the returned
// loggers are safe from any thread. Never log secrets (keys, tokens, passwords): log the
// key name or a fingerprint instead.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "base/error.h"

namespace orrery::log {

enum class Format { kHuman, kJson };

struct Options {
  std::string level = "info";  // trace, debug, info, warn, error, critical, off
  Format format = Format::kHuman;
};

// Parses "human"/"json".
Result<Format> ParseFormat(std::string_view text);

// Installs the stderr sink and the default level; may be called again to reconfigure.
Status Init(const Options& options);

// The logger for a component ("mqtt", "hub", ...); created on first use.
std::shared_ptr<spdlog::logger> Get(std::string_view component);

}  // namespace orrery::log
