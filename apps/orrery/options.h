// Wiring: the configuration schema of `orrery` (every component's options) and the plumbing
// from CLI flags to configuration keys.
#pragma once

#include <map>
#include <string>

#include <CLI/CLI.hpp>

#include "base/config.h"

namespace orrery::app {

// Every configuration key Orrery knows, with defaults, help and flags.
const config::Schema& Schema();

// Flags bound to configuration keys for one subcommand.
struct FlagBindings {
  std::string config_file;
  std::map<std::string, std::string> values;  // key → text given on the command line
  std::map<std::string, CLI::Option*> options;
};

// Adds --config and a flag for each of `keys` (each must have a flag name in the schema).
void AddFlags(CLI::App& cmd, FlagBindings& bindings, std::initializer_list<const char*> keys);

// Loads settings from defaults, the config file (--config or ORRERY_CONFIG), the environment
// and the flags that were given.
Result<config::Settings> LoadSettings(const FlagBindings& bindings);

}  // namespace orrery::app
