// Classification metrics of one split (validation or test) from a model's
// class scores: accuracy, mean cross-entropy, confusion matrix, per-class
// precision / recall / F1, weighted F1 — v1::SplitMetrics (results.proto).
//
// The float32 evaluator feeds it softmax probabilities or logits; the int8
// evaluator feeds it dequantized outputs (probabilities). Both go through
// the same code, so the two columns of the results table mean the same.
//
// Definitions (n = classes, N = samples):
//   prediction  argmax of the row; ties go to the lowest class index.
//   loss        mean over samples of -log p[true]. kLogits: p = softmax of
//               the row, computed as a stable log-softmax. kProbabilities:
//               the row is divided by its sum (dequantized int8 outputs do
//               not sum to exactly 1), then p is clamped to >= 1e-7 so that a
//               zero probability costs 16.1 nats instead of infinity (the
//               same clamp Keras applies).
//   precision   TP / (TP + FP); 0 when the class was never predicted.
//   recall      TP / support;   0 when the class has no samples.
//   F1          2PR / (P + R);  0 when P + R = 0.
//   weighted F1 sum over classes of support * F1, / N; 0 when N = 0.
// An empty split gives samples = 0 and zeros everywhere, with the matrix
// and the per-class entries still present (n x n zeros, n classes).
//
// Thread safety: an accumulator belongs to one thread; the free function
// shares nothing.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "impulse/status.h"
#include "impulse/v1/results.pb.h"

namespace impulse::worker::evaluation {

enum class ScoreKind {
  kLogits,         // raw class scores; softmax gives probabilities
  kProbabilities,  // non-negative, about summing to 1 per row
};

// Streams samples in any batch size, then builds the SplitMetrics.
class SplitMetricsAccumulator {
 public:
  // `labels` names the classes; labels.size() is the class count n.
  SplitMetricsAccumulator(std::vector<std::string> labels, ScoreKind kind);

  // One sample: its true class and n scores. InvalidArgument when the label
  // is out of range or scores.size() != n; nothing is counted then.
  Status Add(uint32_t true_label, std::span<const float> scores);

  // The metrics of everything added so far; the accumulator stays usable.
  v1::SplitMetrics Finish() const;

  uint64_t samples() const { return samples_; }

 private:
  std::vector<std::string> labels_;
  ScoreKind kind_;
  std::vector<uint64_t> counts_;  // n x n, [true * n + predicted]
  uint64_t samples_ = 0;
  uint64_t correct_ = 0;
  double loss_sum_ = 0;
};

// The index of the largest score; ties go to the lowest index.
// REQUIRES: !scores.empty().
uint32_t ArgMax(std::span<const float> scores);

// All samples at once: `scores` is row-major true_labels.size() x n.
// InvalidArgument when labels is empty, scores.size() != N * n, or a label
// is out of range (the message names the row).
Result<v1::SplitMetrics> ComputeSplitMetrics(std::span<const uint32_t> true_labels,
                                             std::span<const float> scores,
                                             const std::vector<std::string>& labels,
                                             ScoreKind kind);

}  // namespace impulse::worker::evaluation
