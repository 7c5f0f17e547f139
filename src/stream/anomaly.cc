#include "stream/anomaly.h"

#include <algorithm>
#include <cmath>

namespace orrery::stream::internal {

size_t AnomalyWarmup(uint32_t history_size) {
  return std::max<size_t>(2, (static_cast<size_t>(history_size) + 1) / 2);
}

// The history's size, mean and sample standard deviation (0 for one value).
struct Moments {
  double n, mean, sd;
};
static Moments MomentsOf(std::span<const double> history) {
  double n = static_cast<double>(history.size());
  double mean = 0;
  for (double h : history)
    mean += h;
  mean /= n;
  double ss = 0;
  for (double h : history)
    ss += (h - mean) * (h - mean);
  return {n, mean, history.size() > 1 ? std::sqrt(ss / (n - 1)) : 0};
}

double KernelCdf(std::span<const double> history, double x) {
  auto [n, mean, sd] = MomentsOf(history);
  double b = 1.06 * sd * std::pow(n, -0.2);
  double sum = 0;
  if (!(b > 0) || !std::isfinite(b)) {
    for (double h : history)
      sum += h < x ? 1 : h == x ? 0.5 : 0;
    return sum / n;
  }
  for (double h : history)
    sum += 0.5 * std::erfc(-(x - h) / (b * std::sqrt(2.0)));
  return std::clamp(sum / n, 0.0, 1.0);
}

namespace {

// The regularized incomplete beta function I_x(a, b) (Lentz's continued fraction).
double IncompleteBeta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - IncompleteBeta(b, a, 1 - x);
  double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) +
                          b * std::log(1 - x)) /
                 a;
  constexpr double kTiny = 1e-300;
  double f = 1, c = 1, d = 0;
  for (int i = 0; i <= 300; ++i) {
    int m = i / 2;
    double num;
    if (i == 0) {
      num = 1;
    } else if (i % 2 == 0) {
      num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
    } else {
      num = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
    }
    d = 1 + num * d;
    if (std::abs(d) < kTiny) d = kTiny;
    d = 1 / d;
    c = 1 + num / c;
    if (std::abs(c) < kTiny) c = kTiny;
    double cd = c * d;
    f *= cd;
    if (std::abs(1 - cd) < 1e-15) break;
  }
  return front * (f - 1);
}

}  // namespace

double PredictiveCdf(std::span<const double> history, double x) {
  auto [n, mean, sd] = MomentsOf(history);
  if (!(sd > 0) || !std::isfinite(sd)) return x > mean ? 1 : x < mean ? 0 : 0.5;
  double t = (x - mean) / (sd * std::sqrt(1 + 1 / n));
  double nu = n - 1;
  double tail = 0.5 * IncompleteBeta(nu / 2, 0.5, nu / (nu + t * t));  // P(T > |t|)
  return t > 0 ? 1 - tail : tail;
}

namespace {

double PValue(std::span<const double> history, double x, AnomalySide side) {
  double k = KernelCdf(history, x), t = PredictiveCdf(history, x);
  double up = std::max(1 - k, 1 - t), down = std::max(k, t);
  switch (side) {
    case AnomalySide::kSpikes:
      return up;
    case AnomalySide::kDips:
      return down;
    case AnomalySide::kBoth:
      break;
  }
  return std::min(1.0, 2 * std::min(up, down));
}

}  // namespace

AnomalyScore ScoreSpike(std::span<const double> history, double x, double confidence,
                        AnomalySide side) {
  double p = PValue(history, x, side);
  return {p, p < 1 - confidence / 100};
}

double ChangePointStep(std::span<const double> history, double x) {
  double p = std::max(kMinP, PValue(history, x, AnomalySide::kBoth));
  return std::log(kEpsilon) + (kEpsilon - 1) * std::log(p);
}

AnomalyScore ScoreChangePoint(std::span<const double> steps, double confidence) {
  // The largest sum of the steps of a run ending with the newest, at least 0.
  double sum = 0, best = 0;
  for (size_t i = steps.size(); i-- > 0;) {
    sum += steps[i];
    best = std::max(best, sum);
  }
  double log_m = std::min(best, kMaxLogMartingale);
  // confidence 100: 1/(1 - 1) = ∞, never an anomaly.
  bool anomaly = confidence < 100 && log_m >= -std::log(1 - confidence / 100);
  return {std::exp(log_m), anomaly};
}

}  // namespace orrery::stream::internal
