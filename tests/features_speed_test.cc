// Speed of the feature pipeline (label "heavy": left out of the unit run).
// Prints its measurements; the bounds are loose, to catch a regression of
// an order of magnitude, not to benchmark. With IMPULSE_FEATURES_OUT set, the
// Fashion-MNIST run keeps its pictures there.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "impulse/idx.h"
#include "tests/support/temp_dir.h"
#include "worker/features/feature_matrix.h"
#include "worker/features/plots.h"
#include "worker/features/processing.h"
#include "worker/features/projection.h"

namespace impulse::worker::features {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

const char kFashionTrain[] = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
const char kFashionLabels[] = "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz";

TEST(FeaturesSpeedTest, ProcessImageThroughput) {
  cv::Mat image(28, 28, CV_8UC1);
  cv::randu(image, 0, 255);
  for (auto [side, color] :
       {std::pair{32u, v1::COLOR_DEPTH_GRAYSCALE}, std::pair{96u, v1::COLOR_DEPTH_RGB}}) {
    v1::Impulse impulse;
    impulse.mutable_input()->set_width(side);
    impulse.mutable_input()->set_height(side);
    impulse.mutable_processing()->set_color(color);
    const ProcessingParams params = ProcessingParamsFromImpulse(impulse).value();
    ImageProcessor processor(params);
    std::vector<uint8_t> row(params.row_bytes());
    constexpr int kImages = 20000;
    const auto start = Clock::now();
    for (int i = 0; i < kImages; ++i) processor.Process(image, row.data());
    const double seconds = SecondsSince(start);
    std::printf("28x28 gray -> %ux%u %s: %.0f images/s (one thread)\n", side, side,
                params.grayscale ? "gray" : "rgb", kImages / seconds);
    EXPECT_LT(seconds, 20.0);
  }
}

TEST(FeaturesSpeedTest, Tsne2000Points) {
  // 10 clusters in 50-D, like PCA output of a 10-class dataset.
  std::mt19937 rng(1);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  cv::Mat points(2000, 50, CV_32F);
  std::vector<cv::Mat> centres;
  for (int c = 0; c < 10; ++c) {
    cv::Mat centre(1, 50, CV_32F);
    for (int d = 0; d < 50; ++d) centre.at<float>(0, d) = 4.0f * noise(rng);
    centres.push_back(centre);
  }
  for (int i = 0; i < 2000; ++i) {
    for (int d = 0; d < 50; ++d)
      points.at<float>(i, d) = centres[i % 10].at<float>(0, d) + noise(rng);
  }
  TsneOptions options;
  options.threads = 2;
  const auto start = Clock::now();
  Result<cv::Mat> y = Tsne(points, options);
  const double seconds = SecondsSince(start);
  ASSERT_TRUE(y.ok());
  std::printf("t-SNE, 2000 points, 50-D, %d iterations, 2 threads: %.2f s\n", options.iterations,
              seconds);
  EXPECT_LT(seconds, 30.0);
}

TEST(FeaturesSpeedTest, FashionMnistExplorer) {
  if (!std::filesystem::exists(kFashionTrain)) GTEST_SKIP() << "no Fashion-MNIST";
  const IdxImages images = ReadIdxImages(kFashionTrain).value();
  const std::vector<uint8_t> labels = ReadIdxLabels(kFashionLabels).value();
  testing::TempDir dir;
  FeatureShape shape;
  shape.channels = 3;
  shape.height = shape.width = 96;
  shape.labels = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                  "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  constexpr uint32_t kRows = 6000;
  auto writer = FeatureMatrixWriter::Create(dir.path() + "/f.bin", shape, kRows).value();
  ProcessingParams params;
  params.width = params.height = 96;
  ImageProcessor processor(params);
  std::vector<uint8_t> row(params.row_bytes());
  for (uint32_t i = 0; i < kRows; ++i) {
    const cv::Mat image(28, 28, CV_8UC1, const_cast<uint8_t*>(&images.pixels[i * 784]));
    processor.Process(image, row.data());
    ASSERT_TRUE(writer->Append({labels[i], uint8_t(i % 6 == 0 ? 2 : 1), i}, row.data()).ok());
  }
  ASSERT_TRUE(writer->Finish().ok());
  const FeatureMatrix matrix = FeatureMatrix::Open(dir.path() + "/f.bin").value();
  ExplorerOptions options;
  options.tsne.threads = 2;
  const auto start = Clock::now();
  const Projection projection = ProjectFeatures(matrix, options).value();
  std::printf("explorer over 6000 rows of 3x96x96 (2000 sampled), 2 threads: %.2f s (%s)\n",
              SecondsSince(start), projection.name.c_str());
  const char* out = std::getenv("IMPULSE_FEATURES_OUT");
  const std::string out_dir = out != nullptr ? out : dir.path();
  ASSERT_TRUE(WriteExplorerPng(out_dir + "/feature_explorer.png", projection.points, shape.labels,
                               projection.name)
                  .ok());
  std::vector<PreviewItem> preview;
  for (uint32_t i = 0; i < 8; ++i) {
    PreviewItem& item = preview.emplace_back();
    item.original = cv::Mat(28, 28, CV_8UC1, const_cast<uint8_t*>(&images.pixels[i * 784]));
    item.processed = FeatureRowToMat(matrix.pixels(i), 3, 96, 96);
    item.caption = shape.labels[labels[i]] + "  #" + std::to_string(i);
  }
  ASSERT_TRUE(WritePreviewPng(out_dir + "/preview.png", preview).ok());
}

}  // namespace
}  // namespace impulse::worker::features
