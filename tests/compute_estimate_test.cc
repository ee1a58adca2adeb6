#include "impulse/estimate/compute_estimate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>

#include "impulse/impulse_spec.h"

namespace impulse::estimate {
namespace {

using ::testing::HasSubstr;

constexpr char kClassification[] = R"(
name: t
input: { width: 32, height: 32 }
processing: { block: image, color: grayscale }
learning: { block: classification }
training: { epochs: 10, batch_size: 64 }
)";

constexpr char kTransfer[] = R"(
name: t
input: { width: 96, height: 96 }
processing: { block: image, color: rgb }
learning: { block: transfer, backbone: mobilenet_v2, alpha: 0.35 }
training: { epochs: 10, batch_size: 32 }
)";

v1::Impulse Parse(const char* yaml) {
  auto impulse = ParseImpulseYaml(yaml);
  EXPECT_TRUE(impulse.ok()) << impulse.status().ToString();
  return *impulse;
}

DatasetSize Rows(uint64_t train, uint64_t test = 1000) {
  return {.train_rows = train, .test_rows = test, .classes = 10};
}

JobEstimate Estimate(const v1::Impulse& impulse, const DatasetSize& data) {
  auto estimate = EstimateJob(impulse, data, DefaultCostTable());
  EXPECT_TRUE(estimate.ok()) << estimate.status().ToString();
  return estimate.ok() ? *estimate : JobEstimate{};
}

TEST(ComputeEstimateTest, StagesAddUpAndAreAllPositive) {
  const JobEstimate e = Estimate(Parse(kClassification), Rows(10000));
  EXPECT_GT(e.features_s, 0);
  EXPECT_GT(e.train_s, 0);
  EXPECT_GT(e.evaluate_s, 0);
  EXPECT_DOUBLE_EQ(e.total_s, e.features_s + e.train_s + e.evaluate_s);
  EXPECT_EQ(e.epochs, 10u);
  EXPECT_EQ(e.train_rows, 8000u);  // 20 % validation
  EXPECT_GT(e.macs_per_sample, 0u);
  EXPECT_EQ(e.cost_source, "default");
}

TEST(ComputeEstimateTest, GrowsWithEpochsRowsInputSizeAndAlpha) {
  v1::Impulse base = Parse(kClassification);
  const double base_s = Estimate(base, Rows(10000)).total_s;

  v1::Impulse more_epochs = base;
  more_epochs.mutable_training()->set_epochs(20);
  EXPECT_GT(Estimate(more_epochs, Rows(10000)).train_s,
            1.9 * Estimate(base, Rows(10000)).train_s);

  EXPECT_GT(Estimate(base, Rows(20000)).total_s, base_s);

  v1::Impulse bigger = base;
  bigger.mutable_input()->set_width(64);
  bigger.mutable_input()->set_height(64);
  EXPECT_GT(Estimate(bigger, Rows(10000)).total_s, 3 * base_s);

  v1::Impulse narrow = Parse(kTransfer);
  v1::Impulse wide = narrow;
  wide.mutable_learning()->set_alpha(1.0f);
  EXPECT_GT(Estimate(wide, Rows(2000)).train_s, 2 * Estimate(narrow, Rows(2000)).train_s);
}

TEST(ComputeEstimateTest, CachedFeaturesCostNothing) {
  DatasetSize data = Rows(10000);
  const JobEstimate fresh = Estimate(Parse(kClassification), data);
  data.features_cached = true;
  const JobEstimate cached = Estimate(Parse(kClassification), data);
  EXPECT_GT(fresh.features_s, 0);
  EXPECT_EQ(cached.features_s, 0);
  EXPECT_DOUBLE_EQ(cached.train_s, fresh.train_s);
  EXPECT_DOUBLE_EQ(cached.total_s, fresh.total_s - fresh.features_s);
}

TEST(ComputeEstimateTest, FeaturesOnlyJobCostsItsFeatures) {
  v1::Impulse impulse = Parse(kClassification);
  impulse.clear_learning();
  const JobEstimate e = Estimate(impulse, Rows(10000));
  EXPECT_GT(e.features_s, 0);
  EXPECT_EQ(e.train_s, 0);
  EXPECT_EQ(e.evaluate_s, 0);
  EXPECT_EQ(e.macs_per_sample, 0u);
}

TEST(ComputeEstimateTest, MobileNetWorkSplitsIntoDepthwisePointwiseAndConv) {
  auto graph = model::BuildGraph(Parse(kTransfer), 10);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const PassWork all = WorkOf(*graph);
  EXPECT_GT(all.depthwise_macs, 0);
  EXPECT_GT(all.pointwise_macs, all.depthwise_macs);  // as in every MobileNet
  EXPECT_GT(all.conv_macs, 0);                         // the stem
  EXPECT_GT(all.dense_macs, 0);                        // the classifier
  EXPECT_DOUBLE_EQ(all.conv_macs + all.depthwise_macs + all.pointwise_macs + all.dense_macs,
                   static_cast<double>(graph->TotalCost().macs));
  const PassWork head = WorkOf(*graph, Layers::kHead);
  const PassWork backbone = WorkOf(*graph, Layers::kBackbone);
  EXPECT_EQ(head.depthwise_macs, 0);
  EXPECT_DOUBLE_EQ(head.dense_macs + backbone.dense_macs, all.dense_macs);
  EXPECT_DOUBLE_EQ(head.elements + backbone.elements, all.elements);

  auto cnn = model::BuildGraph(Parse(kClassification), 10);
  ASSERT_TRUE(cnn.ok());
  EXPECT_EQ(WorkOf(*cnn).depthwise_macs, 0);
  EXPECT_EQ(WorkOf(*cnn).pointwise_macs, 0);
}

TEST(ComputeEstimateTest, AFrozenPretrainedBackboneTrainsFaster) {
  v1::Impulse scratch = Parse(kTransfer);
  v1::Impulse frozen = scratch;
  frozen.mutable_learning()->set_weights("imagenet");  // pretrained, never fine-tuned
  EXPECT_LT(Estimate(frozen, Rows(2000)).train_s, 0.6 * Estimate(scratch, Rows(2000)).train_s);
}

TEST(ComputeEstimateTest, ZeroCostEntriesAreTheDefaults) {
  CostTable measured;
  measured.mutable_train()->set_conv_s_per_mac(2 * DefaultCostTable().train().conv_s_per_mac());
  measured.set_source("cpu x1");
  const CostTable filled = WithDefaultCosts(measured);
  EXPECT_EQ(filled.train().conv_s_per_mac(), measured.train().conv_s_per_mac());
  EXPECT_EQ(filled.train().dense_s_per_mac(), DefaultCostTable().train().dense_s_per_mac());
  EXPECT_EQ(filled.infer().param_s(), 0);  // inference runs no optimizer
  EXPECT_EQ(filled.source(), "cpu x1");
  EXPECT_DOUBLE_EQ(TrainGmacsPerSecond(measured), 1e-9 / measured.train().conv_s_per_mac());
  EXPECT_EQ(TrainGmacsPerSecond(CostTable()), 0);
  auto slow = EstimateJob(Parse(kClassification), Rows(10000), measured);
  ASSERT_TRUE(slow.ok());
  EXPECT_GT(slow->train_s, Estimate(Parse(kClassification), Rows(10000)).train_s);
}

TEST(ComputeEstimateTest, BadLearningBlockIsInvalidArgumentNamingTheField) {
  v1::Impulse impulse = Parse(kTransfer);
  impulse.mutable_learning()->set_alpha(0.3f);
  auto estimate = EstimateJob(impulse, Rows(1000), DefaultCostTable());
  ASSERT_FALSE(estimate.ok());
  EXPECT_EQ(estimate.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(estimate.status().message(), HasSubstr("learning.alpha"));
}

// The advice's epoch count fits the limit and one more epoch does not.
TEST(ComputeEstimateTest, AdvisedEpochsAreTheLargestThatFit) {
  v1::Impulse impulse = Parse(kClassification);
  impulse.mutable_training()->set_epochs(50);
  const DatasetSize data = Rows(20000);
  const JobEstimate full = Estimate(impulse, data);
  const double limit_s = full.total_s / 3;
  const std::string advice = FitAdvice(impulse, data, DefaultCostTable(), limit_s);
  std::smatch match;
  ASSERT_TRUE(std::regex_search(advice, match, std::regex("epochs: (\\d+)"))) << advice;
  const uint32_t epochs = static_cast<uint32_t>(std::stoul(match[1]));
  ASSERT_GT(epochs, 0u);
  ASSERT_LT(epochs, 50u);
  v1::Impulse fits = impulse;
  fits.mutable_training()->set_epochs(epochs);
  EXPECT_LE(Estimate(fits, data).total_s, limit_s);
  fits.mutable_training()->set_epochs(epochs + 1);
  EXPECT_GT(Estimate(fits, data).total_s, limit_s);
  EXPECT_THAT(advice, HasSubstr("fits with epochs: "));
  EXPECT_THAT(advice, HasSubstr("input "));
}

TEST(ComputeEstimateTest, TransferAdviceOffersASmallerAlpha) {
  v1::Impulse impulse = Parse(kTransfer);
  impulse.mutable_learning()->set_alpha(1.0f);
  const DatasetSize data = Rows(4000);
  const double limit_s = 0.5 * Estimate(impulse, data).total_s;
  const std::string advice = FitAdvice(impulse, data, DefaultCostTable(), limit_s);
  std::smatch match;
  ASSERT_TRUE(std::regex_search(advice, match, std::regex("alpha ([0-9.]+) \\(est\\. (\\d+) s\\)")))
      << advice;
  const float alpha = std::stof(match[1]);
  EXPECT_LT(alpha, 1.0f);
  v1::Impulse narrower = impulse;
  narrower.mutable_learning()->set_alpha(alpha);
  EXPECT_LE(Estimate(narrower, data).total_s, limit_s);
}

TEST(ComputeEstimateTest, NoAdviceWhenTheJobFitsOrNothingDoes) {
  const v1::Impulse impulse = Parse(kClassification);
  const double total_s = Estimate(impulse, Rows(10000)).total_s;
  EXPECT_EQ(FitAdvice(impulse, Rows(10000), DefaultCostTable(), total_s * 2), "");
  EXPECT_EQ(FitAdvice(impulse, Rows(10000), DefaultCostTable(), 1e-6), "");
}

}  // namespace
}  // namespace impulse::estimate
