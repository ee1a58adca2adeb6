// SplitMetrics on hand-computed cases: the confusion layout, a class never
// predicted, ties, stable log-softmax, the probability clamp, empty splits.
#include "worker/evaluation/split_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

namespace impulse::worker::evaluation {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr double kTol = 1e-9;

TEST(SplitMetricsTest, HandComputedThreeClassesOneNeverPredicted) {
  // true:      a    a    b    b    c
  // predicted: a    b    b    a    b      (c is never predicted)
  const std::vector<uint32_t> truth = {0, 0, 1, 1, 2};
  const std::vector<float> probs = {0.7f, 0.2f,  0.1f,   //
                                    0.4f, 0.6f,  0.0f,   //
                                    0.1f, 0.8f,  0.1f,   //
                                    0.5f, 0.25f, 0.25f,  //
                                    0.2f, 0.7f,  0.1f};
  auto m = ComputeSplitMetrics(truth, probs, {"a", "b", "c"}, ScoreKind::kProbabilities);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->samples(), 5u);
  EXPECT_NEAR(m->accuracy(), 0.4, kTol);
  EXPECT_EQ(m->confusion().classes(), 3u);
  // counts[i * n + j]: true i predicted j.
  EXPECT_THAT(m->confusion().counts(), ElementsAre(1, 1, 0,  //
                                                   1, 1, 0,  //
                                                   0, 1, 0));
  const double loss =
      -(std::log(0.7f) + std::log(0.4f) + std::log(0.8f) + std::log(0.25f) + std::log(0.1f)) / 5;
  EXPECT_NEAR(m->loss(), loss, 1e-6);
  ASSERT_EQ(m->classes_size(), 3);
  EXPECT_EQ(m->classes(0).label(), "a");
  EXPECT_NEAR(m->classes(0).precision(), 0.5, kTol);
  EXPECT_NEAR(m->classes(0).recall(), 0.5, kTol);
  EXPECT_NEAR(m->classes(0).f1(), 0.5, kTol);
  EXPECT_EQ(m->classes(0).support(), 2u);
  EXPECT_NEAR(m->classes(1).precision(), 1.0 / 3, kTol);
  EXPECT_NEAR(m->classes(1).recall(), 0.5, kTol);
  EXPECT_NEAR(m->classes(1).f1(), 0.4, kTol);
  // Never predicted: precision 0, not NaN; F1 0.
  EXPECT_EQ(m->classes(2).precision(), 0.0);
  EXPECT_EQ(m->classes(2).recall(), 0.0);
  EXPECT_EQ(m->classes(2).f1(), 0.0);
  EXPECT_EQ(m->classes(2).support(), 1u);
  EXPECT_NEAR(m->weighted_f1(), (2 * 0.5 + 2 * 0.4 + 0) / 5, kTol);
}

TEST(SplitMetricsTest, PerfectPredictionsAndAClassWithoutSamples) {
  const std::vector<uint32_t> truth = {0, 1, 1};
  const std::vector<float> probs = {1, 0, 0, 0, 1, 0, 0, 1, 0};
  auto m = ComputeSplitMetrics(truth, probs, {"x", "y", "z"}, ScoreKind::kProbabilities);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->accuracy(), 1.0);
  EXPECT_NEAR(m->loss(), 0.0, kTol);
  EXPECT_EQ(m->classes(0).f1(), 1.0);
  EXPECT_EQ(m->classes(1).f1(), 1.0);
  // No samples and never predicted: all zeros, support 0.
  EXPECT_EQ(m->classes(2).precision(), 0.0);
  EXPECT_EQ(m->classes(2).recall(), 0.0);
  EXPECT_EQ(m->classes(2).support(), 0u);
  EXPECT_NEAR(m->weighted_f1(), 1.0, kTol);
}

TEST(SplitMetricsTest, LogitsUseStableLogSoftmaxAndTiesGoLow) {
  // [0, 0]: a tie, predicted 0, loss ln 2. [ln 3, 0] true 1: p = 1/4, loss
  // ln 4. [1000, 0] true 1: loss 1000, no overflow.
  const std::vector<uint32_t> truth = {0, 1, 1};
  const std::vector<float> logits = {0, 0, std::log(3.0f), 0, 1000, 0};
  auto m = ComputeSplitMetrics(truth, logits, {"a", "b"}, ScoreKind::kLogits);
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(m->confusion().counts(), ElementsAre(1, 0, 2, 0));
  EXPECT_NEAR(m->accuracy(), 1.0 / 3, kTol);
  EXPECT_NEAR(m->loss(), (std::log(2.0) + std::log(4.0) + 1000.0) / 3, 1e-5);
  EXPECT_TRUE(std::isfinite(m->loss()));
}

TEST(SplitMetricsTest, ProbabilitiesAreNormalizedAndClamped) {
  SplitMetricsAccumulator acc({"a", "b"}, ScoreKind::kProbabilities);
  ASSERT_TRUE(acc.Add(0, std::vector<float>{2, 2}).ok());  // normalized: ln 2
  ASSERT_TRUE(acc.Add(1, std::vector<float>{1, 0}).ok());  // clamped: -ln 1e-7
  const v1::SplitMetrics m = acc.Finish();
  EXPECT_NEAR(m.loss(), (std::log(2.0) - std::log(1e-7)) / 2, 1e-9);
  EXPECT_TRUE(std::isfinite(m.loss()));
}

TEST(SplitMetricsTest, EmptySplitIsAllZerosWithShapes) {
  auto m = ComputeSplitMetrics({}, {}, {"a", "b"}, ScoreKind::kLogits);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->samples(), 0u);
  EXPECT_EQ(m->accuracy(), 0.0);
  EXPECT_EQ(m->loss(), 0.0);
  EXPECT_EQ(m->weighted_f1(), 0.0);
  EXPECT_THAT(m->confusion().counts(), ElementsAre(0, 0, 0, 0));
  ASSERT_EQ(m->classes_size(), 2);
  EXPECT_EQ(m->classes(1).label(), "b");
}

TEST(SplitMetricsTest, RefusesBadShapesAndLabels) {
  const std::vector<uint32_t> truth = {0, 2};
  const std::vector<float> scores = {1, 0, 0, 1};
  auto bad_label = ComputeSplitMetrics(truth, scores, {"a", "b"}, ScoreKind::kLogits);
  ASSERT_FALSE(bad_label.ok());
  EXPECT_EQ(bad_label.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_label.status().message(), HasSubstr("row 1"));
  auto bad_size =
      ComputeSplitMetrics(truth, std::vector<float>{1, 0, 0}, {"a", "b"}, ScoreKind::kLogits);
  EXPECT_EQ(bad_size.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(ComputeSplitMetrics({}, {}, {}, ScoreKind::kLogits).ok());
}

TEST(SplitMetricsTest, ArgMaxTiesGoToTheLowestIndex) {
  EXPECT_EQ(ArgMax(std::vector<float>{0.5f, 0.5f}), 0u);
  EXPECT_EQ(ArgMax(std::vector<float>{0.1f, 0.5f, 0.5f}), 1u);
  EXPECT_EQ(ArgMax(std::vector<float>{3}), 0u);
}

}  // namespace
}  // namespace impulse::worker::evaluation
