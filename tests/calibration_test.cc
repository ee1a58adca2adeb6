// Calibration: the stratified, seeded row sample; per-layer min/max and
// histograms that agree with the float layer outputs; percentile ranges;
// refusals.
#include "worker/training/calibration.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "impulse/model/layer_graph.h"
#include "tests/support/feature_fixtures.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/temp_dir.h"
#include "worker/training/inference.h"

namespace impulse::worker::training {
namespace {

using ::testing::HasSubstr;

features::FeatureMatrix RandomFeatures(const std::string& path, std::vector<int> per_label,
                                       uint32_t c, uint32_t h, uint32_t w) {
  return testing::WriteRandomFeatures(path, per_label, {}, c, h, w);
}

v1::Model EveryKindWithWeights() {
  auto graph = model::LayerGraph::FromModel(testing::EveryLayerKindModel());
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  testing::FillRandomWeights(*graph, 5);
  graph->mutable_model().set_input_normalization("pixels/255");
  return graph->model();
}

std::vector<uint64_t> AllRows(const features::FeatureMatrix& fm) {
  std::vector<uint64_t> rows(fm.rows());
  std::iota(rows.begin(), rows.end(), 0);
  return rows;
}

TEST(CalibrationRowsTest, StratifiedSeededAndSorted) {
  testing::TempDir dir;
  auto fm = RandomFeatures(dir.path() + "/f.bin", {30, 60, 90}, 1, 2, 2);
  const std::vector<uint64_t> train = AllRows(fm);
  const auto rows = CalibrationRows(fm, train, 60, 7);
  ASSERT_EQ(rows.size(), 60u);
  EXPECT_TRUE(std::is_sorted(rows.begin(), rows.end()));
  EXPECT_EQ(std::adjacent_find(rows.begin(), rows.end()), rows.end());
  std::vector<int> per_label(3);
  for (uint64_t r : rows) ++per_label[fm.info(r).label];
  EXPECT_EQ(per_label, (std::vector<int>{10, 20, 30}));
  EXPECT_EQ(CalibrationRows(fm, train, 60, 7), rows);
  EXPECT_NE(CalibrationRows(fm, train, 60, 8), rows);
  // Remainders: 7 of 180 rows -> 1.17, 2.33, 3.5 -> 1, 2, 4 (largest first).
  per_label.assign(3, 0);
  for (uint64_t r : CalibrationRows(fm, train, 7, 1)) ++per_label[fm.info(r).label];
  EXPECT_EQ(per_label, (std::vector<int>{1, 2, 4}));
  EXPECT_EQ(CalibrationRows(fm, train, 500, 1), train);
}

TEST(CollectActivationStatsTest, MinMaxAndHistogramsMatchTheLayerOutputs) {
  testing::TempDir dir;
  auto fm = RandomFeatures(dir.path() + "/f.bin", {20, 20, 10}, 3, 8, 8);
  const v1::Model model = EveryKindWithWeights();
  const auto graph = model::LayerGraph::FromModel(model).value();
  const std::vector<uint64_t> rows = AllRows(fm);
  auto stats = CollectActivationStats(model, fm, rows, 2);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->rows, rows.size());
  ASSERT_EQ(stats->layers.size(), static_cast<size_t>(graph.size()));

  std::vector<int> run;  // the layers forward() runs: 1..logits
  for (int i = 1; i <= graph.logits_layer(); ++i) run.push_back(i);
  auto outputs = LayerOutputs(model, fm, rows, run, 1);
  ASSERT_TRUE(outputs.ok()) << outputs.status().ToString();
  for (size_t k = 0; k < run.size(); ++k) {
    const LayerActivationStats& s = stats->layers[run[k]];
    ASSERT_TRUE(s.observed) << graph.layer(run[k]).name();
    float min = INFINITY, max = -INFINITY;
    uint64_t values = 0;
    for (const auto& row : *outputs) {
      for (float v : row[k]) min = std::min(min, v), max = std::max(max, v);
      values += row[k].size();
    }
    EXPECT_EQ(s.min, min) << graph.layer(run[k]).name();
    EXPECT_EQ(s.max, max) << graph.layer(run[k]).name();
    ASSERT_EQ(s.histogram.size(), static_cast<size_t>(kHistogramBins));
    EXPECT_EQ(std::accumulate(s.histogram.begin(), s.histogram.end(), uint64_t{0}), values);
  }
  EXPECT_FALSE(stats->layers[0].observed);                 // the input
  EXPECT_FALSE(stats->layers[graph.size() - 1].observed);  // the softmax

  // The logits layer's outputs are the float model's logits.
  auto logits = PredictLogits(model, fm, rows, 1).value();
  for (size_t r = 0; r < rows.size(); ++r) {
    ASSERT_EQ(outputs->at(r).back().size(), logits[r].size());
    for (size_t j = 0; j < logits[r].size(); ++j) {
      EXPECT_NEAR(outputs->at(r).back()[j], logits[r][j], 1e-5);
    }
  }
}

TEST(RangesTest, PercentilesClipEachTailOfTheHistogram) {
  ActivationStats stats;
  stats.rows = 1;
  stats.layers.resize(3);
  // Layer 1: uniform over [-1, 3]; layer 2: constant 0.5 (no histogram).
  stats.layers[1] = {.observed = true,
                     .min = -1,
                     .max = 3,
                     .histogram = std::vector<uint64_t>(kHistogramBins, 10)};
  stats.layers[2] = {.observed = true, .min = 0.5f, .max = 0.5f};
  const auto minmax = Ranges(stats, 100);
  EXPECT_EQ(minmax[0].min, 0);
  EXPECT_EQ(minmax[0].max, 0);
  EXPECT_EQ(minmax[1].min, -1);
  EXPECT_EQ(minmax[1].max, 3);
  const auto p99 = Ranges(stats, 99);
  EXPECT_NEAR(p99[1].min, -1 + 0.01 * 4, 1e-4);
  EXPECT_NEAR(p99[1].max, 3 - 0.01 * 4, 1e-4);
  EXPECT_EQ(p99[2].min, 0.5f);
  EXPECT_EQ(p99[2].max, 0.5f);

  // One outlier far out: the 99.9th percentile ignores it.
  std::vector<uint64_t> h(kHistogramBins, 0);
  h[0] = 10000;  // values near 0
  h[kHistogramBins - 1] = 1;
  stats.layers[1] = {.observed = true, .min = 0, .max = 100, .histogram = h};
  EXPECT_LT(Ranges(stats, 99.9)[1].max, 100.0 / kHistogramBins);
  EXPECT_EQ(Ranges(stats, 100)[1].max, 100);
}

TEST(CollectActivationStatsTest, RefusesNoRowsRowsPastTheEndAndNaN) {
  testing::TempDir dir;
  auto fm = RandomFeatures(dir.path() + "/f.bin", {4, 4}, 3, 8, 8);
  v1::Model model = EveryKindWithWeights();
  auto empty = CollectActivationStats(model, fm, {}, 1);
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  auto past = CollectActivationStats(model, fm, {0, 8}, 1);
  EXPECT_EQ(past.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(past.status().message(), HasSubstr("8"));

  // A NaN in the first conv's weights: the first layer that outputs NaN is named.
  v1::Tensor* weight = model.mutable_weights(0);
  std::string data = weight->data();
  const float nan = NAN;
  std::memcpy(data.data(), &nan, sizeof(float));
  weight->set_data(data);
  auto refused = CollectActivationStats(model, fm, {0, 1}, 1);
  EXPECT_EQ(refused.status().code(), StatusCode::kInternal);
  EXPECT_THAT(refused.status().message(), HasSubstr("(" + model.layers(1).name() + ")"));
}

}  // namespace
}  // namespace impulse::worker::training
