// The client side of the twins Jobs API (twins_jobs_api.h):
//
//   orrery dt job import FILE [--id ID] [--no-wait]   FILE goes into the server's jobs
//                                                      directory (copied unless it is there
//                                                      already), then the job is created and
//                                                      followed, with progress, to its end
//   orrery dt job delete-all [--yes] [--id ID] [--no-wait]   every model, twin, relationship
//   orrery dt job list                                 {"imports": […], "deletions": […]}
//   orrery dt job show ID | cancel ID | delete ID      (delete: an import job's record)
//
// Waiting ends with the job as JSON on `out`; a failed or cancelled job is an error (exit 1)
// after the problems of its output file (when readable here) are printed on `err`.
#pragma once

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "api/service_cli.h"
#include "base/error.h"

namespace orrery::api {

struct JobCommandOptions {
  enum class Op { kImport, kDeleteAll, kList, kShow, kCancel, kRemove } op = Op::kList;
  std::filesystem::path file;      // import
  std::string id;                  // import, delete-all (default: generated); show, cancel, delete
  bool no_wait = false;            // import, delete-all
  bool yes = false;                // delete-all: no confirmation question
  std::filesystem::path jobs_dir;  // the server's jobs directory (twins.jobs_dir)
  std::chrono::milliseconds poll{500};
  std::FILE* in = stdin;  // delete-all's confirmation
};
Status JobCommand(const ServiceConnection& c, const JobCommandOptions& o, std::FILE* out,
                  std::FILE* err);

}  // namespace orrery::api
