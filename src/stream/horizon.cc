// StreamQuery::StateHorizon and StreamQuery::PartitionParallel, from the bound plan.
#include <algorithm>
#include <cstdlib>

#include "base/strings.h"
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

namespace {

// PartitionId as the binder binds it on a SELECT reading an input: the extra the engine sets
// (root 1) to the partition the event came on.
bool IsPartitionId(const query::BoundExpr& e) {
  return e.op == query::BoundOp::kPath && e.args.empty() && e.root == 1 && e.steps.size() == 1 &&
         !e.steps[0].is_index && strings::IEquals(e.steps[0].key, "PartitionId");
}

// Holds something of one event that a later one reads.
bool Stateful(const internal::SelectPlan& p) {
  return p.window.kind != internal::WindowKind::kNone || !p.aggs.empty() || !p.analytics.empty() ||
         p.match != nullptr || p.stream_join();
}

}  // namespace

bool StreamQuery::PartitionParallel() const {
  for (const internal::SelectPlan& p : plan_->selects) {
    if (p.stream_join()) return false;  // its sides come merged, in time order
    if (p.input >= 0) {
      // Substreams by PartitionId: a partition's events have their own clock, state and
      // policy, whatever the other partitions send.
      bool split = std::any_of(p.substream.begin(), p.substream.end(),
                               [](const query::BoundExpr& k) { return IsPartitionId(k); });
      if (split) continue;
      if (!p.substream.empty()) return false;  // keys across partitions
      // Stateless: still not with TIMESTAMP BY, whose out-of-order policy compares an event
      // with the newest event time of every partition merged.
      if (Stateful(p) || p.timestamp_by) return false;
      continue;
    }
    // Reads a WITH step (or a JOIN's sink): the step's rows of every partition come merged.
    if (Stateful(p)) return false;
  }
  return true;
}

}  // namespace orrery::stream
