// GenerateFeatures end to end over a local directory standing in for the
// worker: PNG and IDX datasets, unreadable samples, cancellation.
#include "worker/features/generate_features.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "impulse/sha256.h"
#include "tests/support/temp_dir.h"
#include "worker/features/feature_matrix.h"

namespace impulse::worker::features {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// Blobs are files named by their sha256 under root/blobs.
class DirTaskContext final : public TaskContext {
 public:
  explicit DirTaskContext(const std::string& root)
      : blobs_(root + "/blobs"), scratch_(root + "/scratch") {
    fs::create_directories(blobs_);
    fs::create_directories(scratch_);
  }

  Result<std::string> BlobPath(const std::string& sha256) override {
    const std::string path = blobs_ + "/" + sha256;
    if (sha256.empty() || !fs::exists(path)) return NotFound("no blob " + sha256);
    return path;
  }
  Result<std::string> PutBlob(const std::string& local_path) override {
    IMPULSE_ASSIGN_OR_RETURN(std::string sha256, Sha256File(local_path));
    fs::copy_file(local_path, blobs_ + "/" + sha256, fs::copy_options::overwrite_existing);
    return sha256;
  }
  const std::string& ScratchDir() const override { return scratch_; }
  void ReportProgress(double fraction, const std::string&) override {
    std::lock_guard<std::mutex> lock(mu_);
    progress_.push_back(fraction);
  }
  void Log(const std::string& line) override {
    std::lock_guard<std::mutex> lock(mu_);
    logs_.push_back(line);
  }
  bool StopRequested() const override { return stop_; }
  int Threads() const override { return 2; }

  std::string blobs_;
  std::string scratch_;
  std::mutex mu_;
  std::vector<double> progress_;
  std::vector<std::string> logs_;
  std::atomic<bool> stop_{false};
};

class GenerateFeaturesTest : public ::testing::Test {
 protected:
  GenerateFeaturesTest() : ctx_(dir_.path()) {
    manifest_.set_name("shapes");
    manifest_.set_layout("image-folder");
    for (const char* label : {"circle", "square", "bar"}) manifest_.add_labels(label);
    spec_.mutable_impulse()->mutable_input()->set_width(16);
    spec_.mutable_impulse()->mutable_input()->set_height(16);
    spec_.mutable_impulse()->mutable_input()->set_resize(v1::RESIZE_MODE_FIT_LONGEST);
    spec_.mutable_impulse()->mutable_processing()->set_block(v1::PROCESSING_KIND_IMAGE);
  }

  // Adds a source holding `bytes` and one sample of it.
  void AddSource(const std::string& name, const std::string& bytes, v1::SourceFormat format,
                 uint32_t label, v1::Split split, uint32_t index = 0) {
    const std::string sha256 = Sha256Hex(bytes);
    std::ofstream(ctx_.blobs_ + "/" + sha256, std::ios::binary) << bytes;
    v1::DataSource* source = manifest_.add_sources();
    source->set_sha256(sha256);
    source->set_format(format);
    source->set_name(name);
    AddSample(manifest_.sources_size() - 1, index, label, split);
  }
  void AddSample(uint32_t source, uint32_t index, uint32_t label, v1::Split split) {
    v1::Sample* sample = manifest_.add_samples();
    sample->set_source(source);
    sample->set_index(index);
    sample->set_label(label);
    sample->set_split(split);
  }

  static std::string Png(uint32_t label, int variant) {
    cv::Mat image(30 + variant, 40, CV_8UC3, cv::Scalar(20, 20, 20));
    const cv::Scalar colour(50 + 60 * label, 200 - 50 * label, 30 * variant);
    if (label == 0) cv::circle(image, {20, 15}, 10, colour, cv::FILLED);
    if (label == 1) cv::rectangle(image, {8, 5, 20, 20}, colour, cv::FILLED);
    if (label == 2) cv::rectangle(image, {2, 12, 36, 6}, colour, cv::FILLED);
    std::vector<uint8_t> bytes;
    cv::imencode(".png", image, bytes);
    return std::string(bytes.begin(), bytes.end());
  }

  void AddShapes() {
    for (uint32_t label = 0; label < 3; ++label) {
      for (int variant = 0; variant < 4; ++variant) {
        AddSource(manifest_.labels(label) + "/" + std::to_string(variant) + ".png",
                  Png(label, variant), v1::SOURCE_FORMAT_IMAGE_FILE, label,
                  variant == 3 ? v1::SPLIT_TEST : v1::SPLIT_TRAIN);
      }
    }
  }

  Result<v1::TaskOutput> Generate() {
    std::string bytes;
    manifest_.SerializeToString(&bytes);
    const std::string sha256 = Sha256Hex(bytes);
    std::ofstream(ctx_.blobs_ + "/" + sha256, std::ios::binary) << bytes;
    spec_.set_dataset_sha256(sha256);
    return GenerateFeatures(spec_, ctx_);
  }

  std::string Blob(const std::string& sha256) {
    std::ifstream in(ctx_.blobs_ + "/" + sha256, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  testing::TempDir dir_;
  DirTaskContext ctx_;
  v1::DatasetManifest manifest_;
  v1::TaskSpec spec_;
};

TEST_F(GenerateFeaturesTest, PngDatasetWithBrokenFiles) {
  AddShapes();
  AddSource("bar/broken.png", "\x89PNG garbage", v1::SOURCE_FORMAT_IMAGE_FILE, 2, v1::SPLIT_TRAIN);
  std::string jpeg = Png(0, 0);
  {
    std::vector<uint8_t> bytes;
    cv::Mat noise(48, 48, CV_8UC3);
    cv::randu(noise, 0, 255);
    cv::imencode(".jpg", noise, bytes);
    jpeg.assign(bytes.begin(), bytes.begin() + bytes.size() / 2);
  }
  AddSource("circle/cut.jpg", jpeg, v1::SOURCE_FORMAT_IMAGE_FILE, 0, v1::SPLIT_TRAIN);

  Result<v1::TaskOutput> output = Generate();
  ASSERT_TRUE(output.ok()) << output.status().ToString();
  const v1::FeatureResults& features = output->results().features();
  EXPECT_EQ(features.samples(), 12u);
  EXPECT_EQ(features.skipped(), 2u);
  EXPECT_THAT(features.skipped_names(), UnorderedElementsAre("bar/broken.png", "circle/cut.jpg"));
  EXPECT_THAT(ctx_.logs_, Contains(HasSubstr("bar/broken.png")));
  EXPECT_THAT(ctx_.logs_, Contains(HasSubstr("circle/cut.jpg")));
  EXPECT_EQ(features.channels(), 3u);
  EXPECT_EQ(features.height(), 16u);
  EXPECT_EQ(features.explorer_size(), 12);
  EXPECT_EQ(features.projection(), "pca12+tsne");  // 12 rows bound the PCA
  EXPECT_THAT(output->results().labels(), ::testing::ElementsAre("circle", "square", "bar"));
  ASSERT_FALSE(ctx_.progress_.empty());
  EXPECT_DOUBLE_EQ(ctx_.progress_.back(), 1.0);

  // The features blob reads back as a matrix of the readable samples.
  ASSERT_EQ(output->blobs().count("features"), 1u);
  EXPECT_EQ(features.features_sha256(), output->blobs().at("features"));
  Result<FeatureMatrix> matrix =
      FeatureMatrix::Open(ctx_.blobs_ + "/" + features.features_sha256());
  ASSERT_TRUE(matrix.ok()) << matrix.status().ToString();
  EXPECT_EQ(matrix->rows(), 12u);
  EXPECT_EQ(matrix->info(3).split, v1::SPLIT_TEST);

  std::map<std::string, v1::Artifact> artifacts;
  for (const v1::Artifact& a : output->artifacts()) artifacts[a.name()] = a;
  ASSERT_EQ(artifacts.size(), 3u);
  for (const char* name : {"feature_explorer.png", "feature_explorer.csv", "preview.png"}) {
    ASSERT_EQ(artifacts.count(name), 1u) << name;
    EXPECT_EQ(Blob(artifacts[name].sha256()).size(), artifacts[name].size()) << name;
  }
  const std::string csv = Blob(artifacts["feature_explorer.csv"].sha256());
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "x,y,label,sample,split");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 13);
  EXPECT_THAT(csv, HasSubstr(",square,4,train\n"));
  EXPECT_THAT(csv, HasSubstr(",bar,11,test\n"));
  const cv::Mat png = cv::imread(ctx_.blobs_ + "/" + artifacts["feature_explorer.png"].sha256());
  EXPECT_EQ(png.cols, 800);
  EXPECT_EQ(png.rows, 600);

  // The same dataset gives the same features blob (threads write in order).
  Result<v1::TaskOutput> again = Generate();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->blobs().at("features"), features.features_sha256());
}

TEST_F(GenerateFeaturesTest, IdxDatasetSkipsIndexesPastTheEnd) {
  // 6 images of 3x2, values i*10, gzip-free IDX3.
  std::string idx("\0\0\x08\x03\0\0\0\x06\0\0\0\x02\0\0\0\x03", 16);
  for (int i = 0; i < 6; ++i) idx += std::string(6, static_cast<char>(i * 10));
  AddSource("train-images-idx3-ubyte", idx, v1::SOURCE_FORMAT_IDX_IMAGES, 0, v1::SPLIT_TRAIN, 0);
  for (uint32_t i = 1; i < 6; ++i) AddSample(0, i, i % 3, i < 4 ? v1::SPLIT_TRAIN : v1::SPLIT_TEST);
  AddSample(0, 6, 1, v1::SPLIT_TEST);  // past the end
  spec_.mutable_impulse()->mutable_processing()->set_color(v1::COLOR_DEPTH_GRAYSCALE);
  spec_.mutable_impulse()->mutable_input()->set_width(4);
  spec_.mutable_impulse()->mutable_input()->set_height(4);

  Result<v1::TaskOutput> output = Generate();
  ASSERT_TRUE(output.ok()) << output.status().ToString();
  const v1::FeatureResults& features = output->results().features();
  EXPECT_EQ(features.samples(), 6u);
  EXPECT_EQ(features.skipped(), 1u);
  EXPECT_THAT(features.skipped_names(), ::testing::ElementsAre("train-images-idx3-ubyte[6]"));
  Result<FeatureMatrix> matrix =
      FeatureMatrix::Open(ctx_.blobs_ + "/" + features.features_sha256());
  ASSERT_TRUE(matrix.ok());
  EXPECT_EQ(matrix->shape().channels, 1u);
  // Image 2 is all 20s; fit-longest 3x2 -> 4x3 letterbox: row 0 of 4x4 is zeros
  // ((4 - 3) / 2 = 0 rows above, one row below).
  const uint8_t* row = matrix->pixels(2);
  EXPECT_EQ(row[0], 20);
  EXPECT_EQ(row[15], 0);
}

TEST_F(GenerateFeaturesTest, NothingReadableIsInvalidArgumentNamingTheDataset) {
  AddSource("a.png", "nope", v1::SOURCE_FORMAT_IMAGE_FILE, 0, v1::SPLIT_TRAIN);
  Result<v1::TaskOutput> output = Generate();
  ASSERT_FALSE(output.ok());
  EXPECT_EQ(output.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(output.status().message(), HasSubstr("shapes"));
  EXPECT_THAT(output.status().message(), HasSubstr("a.png"));
}

TEST_F(GenerateFeaturesTest, StopRequestedCancels) {
  AddShapes();
  ctx_.stop_ = true;
  EXPECT_EQ(Generate().status().code(), StatusCode::kCancelled);
}

TEST_F(GenerateFeaturesTest, MissingManifestIsNotFound) {
  spec_.set_dataset_sha256("00");
  EXPECT_EQ(GenerateFeatures(spec_, ctx_).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace impulse::worker::features
