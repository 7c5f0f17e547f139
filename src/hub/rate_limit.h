// Token-bucket rate limits by key (a shared access policy, a device): IoT Hub's throttles,
// off unless configured. Each key's bucket holds up to `burst` tokens and refills at
// `per_second`; a request takes one.
//
// Thread safety: Take() is safe from any thread (one mutex, O(1)). Buckets idle long enough
// to be full again are forgotten, so memory follows the active keys, bounded by max_keys.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace orrery::hub {

class RateLimiter {
 public:
  // per_second <= 0 turns the limiter off (Take always allows). burst >= 1.
  RateLimiter(double per_second, double burst, std::function<int64_t()> now_ms = {},
              size_t max_keys = 1'000'000);

  bool enabled() const { return per_second_ > 0; }
  // Takes a token for `key`: 0 when allowed, otherwise the milliseconds until one is
  // available (nothing is taken then).
  int64_t Take(std::string_view key);

 private:
  struct Bucket {
    double tokens;
    int64_t updated_ms;
  };
  void Forget(int64_t now);  // REQUIRES: mu_ held

  double per_second_, burst_;
  std::function<int64_t()> now_ms_;
  size_t max_keys_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;  // guarded by mu_
  int64_t last_sweep_ms_ = 0;                        // guarded by mu_
};

}  // namespace orrery::hub
