// StreamQuery::StateHorizon, from the bound plan.
#include <algorithm>
#include <cstdlib>

#include "stream/plan.h"
#include "stream/stream_query.h"

namespace orrery::stream {

Micros StreamQuery::StateHorizon() const {
  // A sum, not a maximum: a step reading a step sees events its source held back for as long
  // as the source's own state reaches.
  Micros total = 0;
  for (const internal::SelectPlan& p : plan_->selects) {
    Micros span = 0;
    switch (p.window.kind) {
      case internal::WindowKind::kTumbling:
      case internal::WindowKind::kHopping:
      case internal::WindowKind::kSliding:
        span = p.window.size + p.window.offset;
        break;
      case internal::WindowKind::kSession:
        span = std::max(p.window.max_duration, p.window.size);
        break;
      case internal::WindowKind::kSnapshot:
      case internal::WindowKind::kNone:
        break;
    }
    // MATCH_RECOGNIZE: an attempt reaches back LIMIT DURATION; without one it may reach back
    // any time, taken as the longest window (7 days by default).
    if (p.match) span = p.match->duration > 0 ? p.match->duration : plan_->limits.max_window;
    Micros analytic = 0;
    for (auto& a : p.analytics) {
      // ChangePoint's remembered steps were scored against histories of their own: twice.
      analytic = std::max(
          analytic, a.kind == internal::AnalyticKind::kChangePoint ? 2 * a.duration : a.duration);
    }
    Micros join = 0;
    for (auto& j : p.joins)
      join = std::max({join, std::abs(j.lo), std::abs(j.hi)});
    total += span + analytic + join;
  }
  return total;
}

}  // namespace orrery::stream
