// The evaluation pictures: sizes, class counts from 1 to many, empty logs,
// refusals.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include "tests/support/temp_dir.h"
#include "worker/evaluation/plots.h"

namespace impulse::worker::evaluation {
namespace {

v1::ConfusionMatrix Diagonal(uint32_t n, uint64_t on, uint64_t off) {
  v1::ConfusionMatrix m;
  m.set_classes(n);
  for (uint32_t i = 0; i < n; ++i) {
    for (uint32_t j = 0; j < n; ++j) m.add_counts(i == j ? on : off);
  }
  return m;
}

std::vector<std::string> Labels(uint32_t n) {
  std::vector<std::string> labels;
  for (uint32_t i = 0; i < n; ++i) labels.push_back("class number " + std::to_string(i));
  return labels;
}

TEST(EvaluationPlotsTest, ConfusionMatrixForFewAndManyClasses) {
  testing::TempDir dir;
  for (uint32_t n : {1u, 2u, 10u, 40u}) {
    SCOPED_TRACE(n);
    const std::string path = dir.path() + "/cm" + std::to_string(n) + ".png";
    const Status written =
        WriteConfusionMatrixPng(path, Diagonal(n, 1234, 7), Labels(n), "float32, test set");
    ASSERT_TRUE(written.ok()) << written.ToString();
    const cv::Mat image = cv::imread(path);
    ASSERT_FALSE(image.empty());
    EXPECT_GE(image.cols, 420);
    EXPECT_GT(image.rows, 24 * static_cast<int>(n));
  }
}

TEST(EvaluationPlotsTest, ConfusionMatrixRefusesMismatchedShapes) {
  testing::TempDir dir;
  EXPECT_EQ(
      WriteConfusionMatrixPng(dir.path() + "/x.png", Diagonal(3, 1, 0), Labels(2), "t").code(),
      StatusCode::kInvalidArgument);
  v1::ConfusionMatrix short_counts = Diagonal(3, 1, 0);
  short_counts.mutable_counts()->RemoveLast();
  EXPECT_EQ(WriteConfusionMatrixPng(dir.path() + "/x.png", short_counts, Labels(3), "t").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteConfusionMatrixPng(dir.path() + "/no/dir/x.png", Diagonal(2, 1, 0), Labels(2), "t")
                .code(),
            StatusCode::kInternal);
}

TEST(EvaluationPlotsTest, TrainingCurvesForEmptyOneAndManyEpochs) {
  testing::TempDir dir;
  for (uint32_t epochs : {0u, 1u, 30u}) {
    SCOPED_TRACE(epochs);
    std::vector<v1::EpochStats> log;
    for (uint32_t e = 1; e <= epochs; ++e) {
      v1::EpochStats s;
      s.set_epoch(e);
      s.set_train_loss(2.0 / e), s.set_validation_loss(2.2 / e);
      s.set_train_accuracy(1 - 0.5 / e), s.set_validation_accuracy(1 - 0.6 / e);
      log.push_back(s);
    }
    const std::string path = dir.path() + "/curves" + std::to_string(epochs) + ".png";
    ASSERT_TRUE(WriteTrainingCurvesPng(path, log).ok());
    const cv::Mat image = cv::imread(path);
    EXPECT_EQ(image.cols, 1000);
    EXPECT_EQ(image.rows, 440);
  }
}

}  // namespace
}  // namespace impulse::worker::evaluation
