#include "hub/rate_limit.h"

#include <algorithm>
#include <cmath>

#include "base/time.h"

namespace orrery::hub {

RateLimiter::RateLimiter(double per_second, double burst, std::function<int64_t()> now_ms,
                         size_t max_keys)
    : per_second_(per_second),
      burst_(std::max(1.0, burst)),
      now_ms_(now_ms ? std::move(now_ms) : std::function<int64_t()>(&timeutil::NowMs)),
      max_keys_(max_keys) {}

void RateLimiter::Forget(int64_t now) {
  // A bucket that has been idle for the time it takes to refill completely is the same as a
  // new one: drop it.
  auto full_after_ms = static_cast<int64_t>(std::ceil(burst_ / per_second_ * 1000));
  std::erase_if(buckets_, [&](auto& kv) { return now - kv.second.updated_ms >= full_after_ms; });
  last_sweep_ms_ = now;
}

int64_t RateLimiter::Take(std::string_view key) {
  if (!enabled()) return 0;
  int64_t now = now_ms_();
  std::lock_guard lock(mu_);
  if (buckets_.size() >= max_keys_ || now - last_sweep_ms_ > 60'000) Forget(now);
  auto it = buckets_.find(std::string(key));
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) return 1000;  // every slot busy: refuse, do not grow
    it = buckets_.emplace(std::string(key), Bucket{burst_, now}).first;
  }
  Bucket& b = it->second;
  b.tokens =
      std::min(burst_, b.tokens + static_cast<double>(now - b.updated_ms) * per_second_ / 1000);
  b.updated_ms = now;
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return 0;
  }
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1 - b.tokens) / per_second_ * 1000)));
}

}  // namespace orrery::hub
