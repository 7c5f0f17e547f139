// The hub's hook for message routing (implemented by routing::Router): at ingestion, before a
// message is appended to the event log, the annotator decides where it goes and records that
// in message.system.route_annotation. The hub also asks whether anyone routes a source at all
// before it produces that source's system events (twin changes, lifecycle, connection state).
//
// Thread safety: implementations are called from any thread, concurrently, on the ingestion
// path: they must be fast and must not block.
#pragma once

#include "eventlog/message.h"

namespace orrery::hub {

enum class MessageSource {
  kDeviceMessages,
  kTwinChangeEvents,
  kDeviceLifecycleEvents,
  kDeviceConnectionStateEvents,
  kDeviceJobLifecycleEvents,
};

class MessageAnnotator {
 public:
  virtual ~MessageAnnotator() = default;
  // Whether an enabled route takes messages of `source`.
  virtual bool Wants(MessageSource source) const = 0;
  // Decides the message's endpoints (and enrichments) and records them in
  // message.system.route_annotation.
  virtual void Annotate(eventlog::Message& message, MessageSource source) const = 0;
};

}  // namespace orrery::hub
