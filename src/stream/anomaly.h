// Internal to the stream component: the models behind AnomalyDetection_SpikeAndDip and
// AnomalyDetection_ChangePoint (see docs/stream.md, "Anomaly detection", for what a user sees).
//
// Design note. Both score a new value x against the history H of the values before it (at most
// historySize, within LIMIT DURATION, of its PARTITION BY key and matching WHEN). The
// distribution of H is estimated by a Gaussian kernel density with Silverman's bandwidth
// b = 1.06 · sd(H) · |H|^(-1/5), re-estimated for every event (the "adaptive" kernel density of
// ASA's description); F(x) is its cumulative distribution (with sd(H) = 0, the empirical one,
// ties counted half). A kernel density of a short history is over-confident in its tails, so
// each side's p-value is the larger of the kernel density's and the Student-t prediction
// interval's (x against mean(H) and sd(H)·sqrt(1 + 1/|H|) with |H| - 1 degrees of freedom,
// G(x) its distribution): a spike's p-value is max(1 - F(x), 1 - G(x)), a dip's
// max(F(x), G(x)), either's twice the smaller of those two (at most 1).
//
// SpikeAndDip: Score is the p-value; IsAnomaly when Score < 1 - confidence/100 (as ML.NET's
// IID spike detector, which ASA's functions come from).
//
// ChangePoint: an exchangeability martingale. Each scored value's two-sided p-value p
// (clamped to [kMinP, 1]) is a step log ε + (ε-1)·log p of a power martingale, ε = kEpsilon,
// remembered with the value. The score of an event is M = exp of the largest sum of the steps
// of a run of remembered values ending with it, at least 1 (a CUSUM of the power martingale
// over the history, so that it reacts to a change however long the quiet before it was, and
// so that the state is the history's alone: what LIMIT DURATION forgets no longer counts,
// which StateHorizon relies on). IsAnomaly when M ≥ 1/(1 - confidence/100) (Ville's
// inequality bounds the chance that a true martingale ever reaches that by 1 - confidence/100).
// One outlier multiplies M by at most ε·kMinP^(ε-1) ≈ 50, so below a confidence of 98% a
// single extreme value is enough; a level shift gives a run of small p-values and M grows
// geometrically until the history has learnt the new level.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace orrery::stream::internal {

inline constexpr uint32_t kMaxAnomalyHistory = 10'000;
inline constexpr double kEpsilon = 0.1;
inline constexpr double kMinP = 1e-3;
inline constexpr double kMaxLogMartingale = 700;  // M stays a finite double

enum class AnomalySide : uint8_t { kSpikes, kDips, kBoth };

struct AnomalyScore {
  double score = 0;
  bool anomaly = false;
};

// The values a history must hold before its next value is scored: half of historySize, at
// least 2. Before that Score is 1 and IsAnomaly 0 (ChangePoint's step is 0).
size_t AnomalyWarmup(uint32_t history_size);

// F(x) of the kernel density of `history` (see the design note). REQUIRES: history not empty.
double KernelCdf(std::span<const double> history, double x);

// G(x), the Student-t prediction of the design note. REQUIRES: history not empty.
double PredictiveCdf(std::span<const double> history, double x);

// REQUIRES: history.size() >= AnomalyWarmup(historySize).
AnomalyScore ScoreSpike(std::span<const double> history, double x, double confidence,
                        AnomalySide side);
// x's martingale step against `history`.
double ChangePointStep(std::span<const double> history, double x);
// The score of the newest of `steps` (the remembered values', oldest first, the newest last).
AnomalyScore ScoreChangePoint(std::span<const double> steps, double confidence);

}  // namespace orrery::stream::internal
