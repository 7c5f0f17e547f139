// Stream job outputs that act on the hub and the twin graph: a row becomes a cloud-to-device
// message, a direct method call, a desired-properties patch (of the device named by
// deviceIdColumn) or a digital-twin patch (of the twin named by twinIdColumn).
//
//   c2d                the row (JSON) is the message body; its message id is the row's id
//   method             methodName (or the row's methodNameColumn) with the row, less the id
//                      and name columns, as the payload
//   desiredProperties  {"properties":{"desired": the row less the id column}}
//   digitalTwin        a JSON Patch "add" of each of the row's other columns
//
// Delivery is at-least-once from the job's output log (routing::Sink, one reader per output).
// A refusal that retrying cannot mend (no such device or twin, device offline, a patch the
// model refuses) is counted as a runtime error and the row is passed; an unavailable hub or
// store is retried with backoff — or, with outputErrorPolicy "drop", the row is passed too.
//
// Thread safety: a sink lives on its endpoint worker's thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "asa/job.h"
#include "routing/endpoints.h"

namespace orrery::hub {
class Hub;
}
namespace orrery::twins {
class TwinGraph;
}

namespace orrery::asa {

struct ActionTargets {
  hub::Hub* hub = nullptr;
  twins::TwinGraph* graph = nullptr;
  std::function<int64_t()> now_ms;
};

bool IsAction(JobOutput::Type type);

// `errors` (nullable) counts rows refused. Errors: the output needs a target that is null.
Result<std::unique_ptr<routing::Sink>> MakeActionSink(const JobOutput& output, std::string endpoint,
                                                      bool drop_on_error, ActionTargets targets,
                                                      std::atomic<uint64_t>* errors);

}  // namespace orrery::asa
