#include "worker/evaluation/split_metrics.h"

#include <algorithm>
#include <cmath>

namespace impulse::worker::evaluation {
namespace {

constexpr double kMinProbability = 1e-7;

// -log p[label] of one row.
double CrossEntropy(std::span<const float> scores, uint32_t label, ScoreKind kind) {
  if (kind == ScoreKind::kLogits) {
    // log-softmax: x[label] - (max + log sum exp(x - max)); no overflow.
    const double max = *std::max_element(scores.begin(), scores.end());
    double sum = 0;
    for (float s : scores) sum += std::exp(static_cast<double>(s) - max);
    return -(static_cast<double>(scores[label]) - max - std::log(sum));
  }
  double sum = 0;
  for (float s : scores) sum += std::max(0.0, static_cast<double>(s));
  double p = std::max(0.0, static_cast<double>(scores[label]));
  if (sum > 0) p /= sum;
  return -std::log(std::clamp(p, kMinProbability, 1.0));
}

double Ratio(uint64_t num, uint64_t den) {
  return den == 0 ? 0.0 : static_cast<double>(num) / static_cast<double>(den);
}

}  // namespace

uint32_t ArgMax(std::span<const float> scores) {
  uint32_t best = 0;
  for (uint32_t i = 1; i < scores.size(); ++i) {
    // NaN never wins: a model that outputs NaN predicts class 0 for that row.
    if (scores[i] > scores[best]) best = i;
  }
  return best;
}

SplitMetricsAccumulator::SplitMetricsAccumulator(std::vector<std::string> labels, ScoreKind kind)
    : labels_(std::move(labels)), kind_(kind), counts_(labels_.size() * labels_.size(), 0) {}

Status SplitMetricsAccumulator::Add(uint32_t true_label, std::span<const float> scores) {
  const size_t n = labels_.size();
  if (scores.size() != n || n == 0) {
    return InvalidArgument("metrics: a row has " + std::to_string(scores.size()) +
                           " scores, expected " + std::to_string(n));
  }
  if (true_label >= n) {
    return InvalidArgument("metrics: true label " + std::to_string(true_label) + " not below " +
                           std::to_string(n) + " classes");
  }
  const uint32_t predicted = ArgMax(scores);
  ++counts_[true_label * n + predicted];
  ++samples_;
  if (predicted == true_label) ++correct_;
  loss_sum_ += CrossEntropy(scores, true_label, kind_);
  return Status::Ok();
}

v1::SplitMetrics SplitMetricsAccumulator::Finish() const {
  const size_t n = labels_.size();
  v1::SplitMetrics out;
  out.set_samples(samples_);
  out.set_accuracy(Ratio(correct_, samples_));
  out.set_loss(samples_ == 0 ? 0.0 : loss_sum_ / static_cast<double>(samples_));
  out.mutable_confusion()->set_classes(static_cast<uint32_t>(n));
  for (uint64_t c : counts_) out.mutable_confusion()->add_counts(c);
  double weighted_f1 = 0;
  for (size_t c = 0; c < n; ++c) {
    uint64_t support = 0, predicted = 0;
    for (size_t j = 0; j < n; ++j) support += counts_[c * n + j];
    for (size_t i = 0; i < n; ++i) predicted += counts_[i * n + c];
    const uint64_t tp = counts_[c * n + c];
    v1::ClassMetrics* m = out.add_classes();
    m->set_label(labels_[c]);
    m->set_support(support);
    m->set_precision(Ratio(tp, predicted));
    m->set_recall(Ratio(tp, support));
    const double pr = m->precision() + m->recall();
    m->set_f1(pr == 0 ? 0.0 : 2 * m->precision() * m->recall() / pr);
    weighted_f1 += static_cast<double>(support) * m->f1();
  }
  out.set_weighted_f1(samples_ == 0 ? 0.0 : weighted_f1 / static_cast<double>(samples_));
  return out;
}

Result<v1::SplitMetrics> ComputeSplitMetrics(std::span<const uint32_t> true_labels,
                                             std::span<const float> scores,
                                             const std::vector<std::string>& labels,
                                             ScoreKind kind) {
  const size_t n = labels.size();
  if (n == 0) return InvalidArgument("metrics: no class labels");
  if (scores.size() != true_labels.size() * n) {
    return InvalidArgument("metrics: " + std::to_string(scores.size()) + " scores for " +
                           std::to_string(true_labels.size()) + " samples of " + std::to_string(n) +
                           " classes");
  }
  SplitMetricsAccumulator acc(labels, kind);
  for (size_t row = 0; row < true_labels.size(); ++row) {
    Status added = acc.Add(true_labels[row], scores.subspan(row * n, n));
    if (!added.ok()) return added.WithContext("row " + std::to_string(row));
  }
  return acc.Finish();
}

}  // namespace impulse::worker::evaluation
