// The event log's external read surface on the HTTPS listener: Orrery's "Event
// Hubs-compatible endpoint" for consumers outside the process (until AMQP arrives), and what
// `orrery monitor-events` reads. Every route needs a service SAS token whose policy grants
// ServiceConnect, in the Authorization header (or, for browsers' WebSockets, the
// `authorization` query parameter). docs/eventhub.md is the user-facing reference.
//
//   GET    /eventhub                                              partitions and their state
//   GET    /eventhub/consumergroups                               consumer groups
//   PUT    /eventhub/consumergroups/{name}                        create: 201, 409 when it exists
//   DELETE /eventhub/consumergroups/{name}                        delete: 204, 404
//   GET    /eventhub/consumergroups/{group}/partitions/{p}/checkpoint
//   PUT    /eventhub/consumergroups/{group}/partitions/{p}/checkpoint  {"sequenceNumber": n}
//   WS     /eventhub/events?consumerGroup=&partition=&from=&deviceId=
//
// The WebSocket stream sends one JSON text message per event, in sequence order per partition
// (partitions interleave), and wakes on append (no polling). The client may send
// newline-terminated JSON commands: {"op":"checkpoint","partition":p,"sequenceNumber":n}.
// A slow client slows its own stream only: the next batch is read once the previous is sent.
#pragma once

#include <cstddef>

#include <boost/asio/any_io_executor.hpp>

#include "base/metrics.h"
#include "net/http.h"

namespace orrery::eventlog {
class EventLog;
}
namespace orrery::hub {
class PolicyStore;
}

namespace orrery::api {

struct EventHubApiOptions {
  eventlog::EventLog* log = nullptr;           // must outlive every stream (close it last)
  const hub::PolicyStore* policies = nullptr;  // must outlive the router
  metrics::Registry* metrics = nullptr;        // nullable
  size_t max_streams = 256;                    // concurrent WebSocket streams; then 503
  // Required: runs what must not block an I/O thread (checkpoints and group changes fsync).
  // Its owner joins it before closing the log.
  boost::asio::any_io_executor blocking;
};

void RegisterEventHubRoutes(net::Router& router, const EventHubApiOptions& options);

}  // namespace orrery::api
