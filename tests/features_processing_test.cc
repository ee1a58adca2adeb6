// The input and processing blocks against hand-computed pixels, and image
// decoding (broken, truncated, 16-bit, alpha, IDX).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <vector>

#include "tests/support/temp_dir.h"
#include "worker/features/image_source.h"
#include "worker/features/processing.h"

namespace impulse::worker::features {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<uint8_t> Bytes(const cv::Mat& m) {
  const cv::Mat c = m.isContinuous() ? m : m.clone();
  return std::vector<uint8_t>(c.data, c.data + c.total() * c.elemSize());
}

// 4 wide, 2 high:  10 20 30 40 / 50 60 70 80
cv::Mat Gray4x2() { return (cv::Mat_<uint8_t>(2, 4) << 10, 20, 30, 40, 50, 60, 70, 80); }

cv::Mat Resized(const cv::Mat& src, int w, int h, v1::ResizeMode mode) {
  cv::Mat dst;
  ResizeImage(src, w, h, mode, dst);
  EXPECT_EQ(dst.cols, w);
  EXPECT_EQ(dst.rows, h);
  return dst;
}

TEST(ResizeTest, SquashAveragesPairsWhenHalvingTheWidth) {
  EXPECT_THAT(Bytes(Resized(Gray4x2(), 2, 2, v1::RESIZE_MODE_SQUASH)), ElementsAre(15, 35, 55, 75));
}

TEST(ResizeTest, FitShortestCropsTheCentre) {
  EXPECT_THAT(Bytes(Resized(Gray4x2(), 2, 2, v1::RESIZE_MODE_FIT_SHORTEST)),
              ElementsAre(20, 30, 60, 70));
  // Tall source: 2 wide, 4 high -> the middle two rows.
  const cv::Mat tall = (cv::Mat_<uint8_t>(4, 2) << 1, 2, 3, 4, 5, 6, 7, 8);
  EXPECT_THAT(Bytes(Resized(tall, 2, 2, v1::RESIZE_MODE_FIT_SHORTEST)), ElementsAre(3, 4, 5, 6));
  // Odd extra width: 5 wide -> offset floor(3 / 2) = 1.
  const cv::Mat odd = (cv::Mat_<uint8_t>(2, 5) << 1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
  EXPECT_THAT(Bytes(Resized(odd, 2, 2, v1::RESIZE_MODE_FIT_SHORTEST)), ElementsAre(2, 3, 7, 8));
}

TEST(ResizeTest, FitLongestLetterboxesWithZeros) {
  // Scale 0.5: 2x1 of 2x2 box averages, at row (2 - 1) / 2 = 0.
  EXPECT_THAT(Bytes(Resized(Gray4x2(), 2, 2, v1::RESIZE_MODE_FIT_LONGEST)),
              ElementsAre(35, 55, 0, 0));
  // Scale 1 into 4x4: the image at rows 1-2, zeros above and below.
  EXPECT_THAT(Bytes(Resized(Gray4x2(), 4, 4, v1::RESIZE_MODE_FIT_LONGEST)),
              ElementsAre(0, 0, 0, 0, 10, 20, 30, 40, 50, 60, 70, 80, 0, 0, 0, 0));
  // Tall source into 4x4: columns 1-2.
  const cv::Mat tall = (cv::Mat_<uint8_t>(4, 2) << 1, 2, 3, 4, 5, 6, 7, 8);
  EXPECT_THAT(Bytes(Resized(tall, 4, 4, v1::RESIZE_MODE_FIT_LONGEST)),
              ElementsAre(0, 1, 2, 0, 0, 3, 4, 0, 0, 5, 6, 0, 0, 7, 8, 0));
}

TEST(ResizeTest, UpscalingIsBilinear) {
  const cv::Mat two = (cv::Mat_<uint8_t>(1, 2) << 0, 100);
  // Half-pixel centres: x = 0, 1, 2, 3 sample source 0 (clamped), 0.25, 0.75, 1.
  EXPECT_THAT(Bytes(Resized(two, 4, 1, v1::RESIZE_MODE_SQUASH)), ElementsAre(0, 25, 75, 100));
}

ProcessingParams Params(int w, int h, bool grayscale,
                        v1::ResizeMode mode = v1::RESIZE_MODE_SQUASH) {
  ProcessingParams p;
  p.width = w;
  p.height = h;
  p.grayscale = grayscale;
  p.resize = mode;
  return p;
}

std::vector<uint8_t> ProcessRow(const cv::Mat& image, const ProcessingParams& params) {
  std::vector<uint8_t> row(params.row_bytes());
  ImageProcessor processor(params);
  processor.Process(image, row.data());
  return row;
}

TEST(ProcessingTest, GrayscaleUsesBt601Weights) {
  // BGR pixels: pure red, pure green, pure blue, white.
  cv::Mat bgr(1, 4, CV_8UC3);
  bgr.at<cv::Vec3b>(0, 0) = {0, 0, 255};
  bgr.at<cv::Vec3b>(0, 1) = {0, 255, 0};
  bgr.at<cv::Vec3b>(0, 2) = {255, 0, 0};
  bgr.at<cv::Vec3b>(0, 3) = {255, 255, 255};
  // 0.299 * 255 = 76.2, 0.587 * 255 = 149.7, 0.114 * 255 = 29.1.
  EXPECT_THAT(ProcessRow(bgr, Params(4, 1, true)), ElementsAre(76, 150, 29, 255));
}

TEST(ProcessingTest, RgbIsPlanarInRgbOrder) {
  cv::Mat bgr(1, 2, CV_8UC3);
  bgr.at<cv::Vec3b>(0, 0) = {1, 2, 3};  // B, G, R
  bgr.at<cv::Vec3b>(0, 1) = {4, 5, 6};
  EXPECT_THAT(ProcessRow(bgr, Params(2, 1, false)), ElementsAre(3, 6, 2, 5, 1, 4));
}

TEST(ProcessingTest, GraySourceIsRepeatedIntoThreeChannels) {
  const cv::Mat gray = (cv::Mat_<uint8_t>(1, 2) << 7, 9);
  EXPECT_THAT(ProcessRow(gray, Params(2, 1, false)), ElementsAre(7, 9, 7, 9, 7, 9));
  EXPECT_THAT(ProcessRow(gray, Params(2, 1, true)), ElementsAre(7, 9));
}

TEST(ProcessingTest, ProcessImageFollowsTheImpulse) {
  v1::Impulse impulse;
  impulse.mutable_input()->set_width(2);
  impulse.mutable_input()->set_height(2);
  impulse.mutable_input()->set_resize(v1::RESIZE_MODE_FIT_LONGEST);
  impulse.mutable_processing()->set_color(v1::COLOR_DEPTH_GRAYSCALE);
  EXPECT_THAT(ProcessImage(Gray4x2(), impulse), ElementsAre(35, 55, 0, 0));
  impulse.mutable_input()->set_width(0);
  EXPECT_TRUE(ProcessImage(Gray4x2(), impulse).empty());
}

TEST(ProcessingTest, RawKeepsTheBytesAndFlags) {
  v1::Impulse impulse;
  impulse.mutable_input()->set_width(4);
  impulse.mutable_input()->set_height(2);
  impulse.mutable_processing()->set_block(v1::PROCESSING_KIND_RAW);
  impulse.mutable_processing()->set_color(v1::COLOR_DEPTH_GRAYSCALE);
  Result<ProcessingParams> params = ProcessingParamsFromImpulse(impulse);
  ASSERT_TRUE(params.ok());
  EXPECT_TRUE(params->flattened);
  EXPECT_EQ(params->row_bytes(), 8u);
  EXPECT_EQ(ProcessImage(Gray4x2(), impulse), Bytes(Gray4x2()));
}

TEST(ProcessingTest, FeatureRowToMatInvertsThePlanarLayout) {
  const std::vector<uint8_t> row = {3, 6, 2, 5, 1, 4};  // R, G, B planes of 2x1
  const cv::Mat bgr = FeatureRowToMat(row.data(), 3, 1, 2);
  EXPECT_EQ(bgr.at<cv::Vec3b>(0, 0), cv::Vec3b(1, 2, 3));
  EXPECT_EQ(bgr.at<cv::Vec3b>(0, 1), cv::Vec3b(4, 5, 6));
}

class ImageSourceTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::string Slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  testing::TempDir dir_;
};

TEST_F(ImageSourceTest, BrokenPngIsReportedByName) {
  const std::string path = Write("broken.png", std::string("\x89PNG\r\n\x1a\nnot really", 18));
  Result<cv::Mat> image = ReadImageFile(path, "cats/broken.png");
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(image.status().message(), HasSubstr("cats/broken.png"));
}

TEST_F(ImageSourceTest, TruncatedJpegIsReportedByName) {
  cv::Mat noise(64, 64, CV_8UC3);
  cv::randu(noise, 0, 255);
  const std::string full = dir_.path() + "/full.jpg";
  ASSERT_TRUE(cv::imwrite(full, noise));
  const std::string bytes = Slurp(full);
  ASSERT_TRUE(ReadImageFile(full, "full.jpg").ok());
  const std::string cut = Write("cut.jpg", bytes.substr(0, bytes.size() / 2));
  Result<cv::Mat> image = ReadImageFile(cut, "dogs/cut.jpg");
  ASSERT_FALSE(image.ok());
  EXPECT_THAT(image.status().message(), HasSubstr("dogs/cut.jpg"));
  // Trailing bytes after the end marker are harmless.
  EXPECT_TRUE(DecodeImage(bytes + "trailer", "trailer.jpg").ok());
}

TEST_F(ImageSourceTest, SixteenBitAndAlphaBecomeEightBit) {
  cv::Mat deep(3, 3, CV_16UC1, cv::Scalar(65535));
  const std::string deep_path = dir_.path() + "/deep.png";
  ASSERT_TRUE(cv::imwrite(deep_path, deep));
  Result<cv::Mat> gray = ReadImageFile(deep_path, "deep.png");
  ASSERT_TRUE(gray.ok()) << gray.status().ToString();
  EXPECT_EQ(gray->type(), CV_8UC1);
  EXPECT_EQ(gray->at<uint8_t>(1, 1), 255);

  cv::Mat rgba(2, 2, CV_8UC4, cv::Scalar(10, 20, 30, 0));
  const std::string rgba_path = dir_.path() + "/alpha.png";
  ASSERT_TRUE(cv::imwrite(rgba_path, rgba));
  Result<cv::Mat> bgr = ReadImageFile(rgba_path, "alpha.png");
  ASSERT_TRUE(bgr.ok()) << bgr.status().ToString();
  EXPECT_EQ(bgr->type(), CV_8UC3);
  EXPECT_EQ(bgr->at<cv::Vec3b>(0, 0), cv::Vec3b(10, 20, 30));
}

TEST_F(ImageSourceTest, IdxSamplesAndOutOfRangeIndex) {
  // IDX3: magic 0x00000803, count 2, rows 1, cols 2, big-endian.
  const std::string idx("\0\0\x08\x03\0\0\0\x02\0\0\0\x01\0\0\0\x02\x0a\x0b\x0c\x0d", 20);
  Write("idxsha", idx);
  v1::DatasetManifest manifest;
  manifest.add_labels("a");
  v1::DataSource* source = manifest.add_sources();
  source->set_sha256("idxsha");
  source->set_format(v1::SOURCE_FORMAT_IDX_IMAGES);
  source->set_name("images.idx");
  for (uint32_t index : {1u, 5u}) manifest.add_samples()->set_index(index);
  int resolved = 0;
  SampleReader reader(manifest, [&](const std::string& sha) -> Result<std::string> {
    ++resolved;
    return dir_.path() + "/" + sha;
  });
  Result<cv::Mat> second = reader.Read(0);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_THAT(Bytes(*second), ElementsAre(0x0c, 0x0d));
  Result<cv::Mat> missing = reader.Read(1);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("images.idx[5]"));
  EXPECT_EQ(resolved, 1);  // the file was read once
}

}  // namespace
}  // namespace impulse::worker::features
