// Wiring for `orrery serve`: builds every enabled service from the settings, runs them on the
// I/O pool, and shuts them down on SIGINT/SIGTERM. Returns the process exit code.
#pragma once

#include "base/config.h"

namespace orrery::app {

int Serve(const config::Settings& settings);

}  // namespace orrery::app
