// The feature explorer's projection: sampling, PCA, t-SNE.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "worker/features/projection.h"

namespace impulse::worker::features {
namespace {

TEST(StratifiedSampleTest, KeepsClassSharesAndIsSeeded) {
  std::vector<uint32_t> labels(3000, 0);
  labels.resize(4000, 1);
  const std::vector<uint64_t> a = StratifiedSample(labels, 2000, 7);
  ASSERT_EQ(a.size(), 2000u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::count_if(a.begin(), a.end(), [&](uint64_t i) { return labels[i] == 1; }), 500);
  EXPECT_EQ(StratifiedSample(labels, 2000, 7), a);
  EXPECT_NE(StratifiedSample(labels, 2000, 8), a);
  // Fewer rows than the cap: all of them.
  EXPECT_EQ(StratifiedSample({0, 1, 0}, 2000, 1), (std::vector<uint64_t>{0, 1, 2}));
}

TEST(PcaTest, FindsTheDirectionOfALine) {
  std::vector<std::vector<uint8_t>> data;
  for (int t = 0; t < 50; ++t) data.push_back({uint8_t(t), uint8_t(2 * t), 100});
  std::vector<const uint8_t*> rows;
  for (const auto& row : data) rows.push_back(row.data());
  const cv::Mat coords = PcaProject(rows, 3, 2, 1, 2);
  ASSERT_EQ(coords.rows, 50);
  ASSERT_EQ(coords.cols, 2);
  // First coordinate is t * sqrt(5) up to sign and offset; the second is 0.
  const float step = coords.at<float>(1, 0) - coords.at<float>(0, 0);
  EXPECT_NEAR(std::abs(step), std::sqrt(5.0f), 1e-3);
  for (int i = 0; i < 50; ++i) EXPECT_NEAR(coords.at<float>(i, 1), 0.0f, 1e-2);
}

// Two Gaussian blobs in 10-D, far apart.
cv::Mat TwoClusters(int per_cluster) {
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  cv::Mat points(2 * per_cluster, 10, CV_32F);
  for (int i = 0; i < points.rows; ++i) {
    const float centre = i < per_cluster ? 0.0f : 20.0f;
    for (int d = 0; d < 10; ++d) points.at<float>(i, d) = centre + noise(rng);
  }
  return points;
}

TEST(TsneTest, SeparatesTwoClustersAndIsDeterministic) {
  const cv::Mat points = TwoClusters(60);
  TsneOptions options;
  options.iterations = 300;
  options.exaggeration_iterations = 100;
  options.threads = 2;
  Result<cv::Mat> a = Tsne(points, options);
  ASSERT_TRUE(a.ok());
  // Every point's nearest neighbour in 2-D is from its own cluster.
  for (int i = 0; i < a->rows; ++i) {
    int nearest = -1;
    float best = 1e30f;
    for (int j = 0; j < a->rows; ++j) {
      if (j == i) continue;
      const float dx = a->at<float>(i, 0) - a->at<float>(j, 0);
      const float dy = a->at<float>(i, 1) - a->at<float>(j, 1);
      if (dx * dx + dy * dy < best) best = dx * dx + dy * dy, nearest = j;
    }
    EXPECT_EQ(i < 60, nearest < 60) << "point " << i;
  }
  options.threads = 1;
  Result<cv::Mat> b = Tsne(points, options);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(cv::norm(*a, *b, cv::NORM_INF), 0.0) << "thread count changed the result";
}

TEST(TsneTest, StopCancels) {
  TsneOptions options;
  options.stop = [] { return true; };
  EXPECT_EQ(Tsne(TwoClusters(5), options).status().code(), StatusCode::kCancelled);
}

}  // namespace
}  // namespace impulse::worker::features
