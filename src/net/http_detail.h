// net-internal: the shared state behind a Responder.
#pragma once

#include <atomic>
#include <functional>

#include "net/http.h"

namespace orrery::net::detail {

struct ResponderState {
  // Posts the response to the connection's executor; set by the server session.
  std::function<void(HttpResponse)> deliver;
  std::atomic<bool> sent{false};
  std::atomic<bool> closed{false};
  void Deliver(HttpResponse response);
  ~ResponderState();
};

}  // namespace orrery::net::detail
