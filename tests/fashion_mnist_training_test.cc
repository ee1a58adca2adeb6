// Heavy: trains examples/fashion-mnist.yaml's learning block on Fashion-MNIST
// (32x32 grayscale, 48k train / 12k validation / 10k test) the way the
// worker does, and checks the float32 test accuracy the main job promises
// (>= 91 %). Prints per-epoch time and accuracy. IMPULSE_EPOCHS and
// IMPULSE_AUGMENTATION (0/1) override the example's settings for
// exploring; IMPULSE_FASHION_MNIST points at the IDX files.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>

#include "impulse/idx.h"
#include "impulse/impulse_spec.h"
#include "impulse/sha256.h"
#include "tests/support/temp_dir.h"
#include "worker/features/feature_matrix.h"
#include "worker/features/processing.h"
#include "worker/training/inference.h"
#include "worker/training/train.h"

namespace impulse::worker::training {
namespace {

namespace fs = std::filesystem;

class DirTaskContext final : public TaskContext {
 public:
  explicit DirTaskContext(const std::string& root)
      : blobs_(root + "/blobs"), scratch_(root + "/s") {
    fs::create_directories(blobs_);
    fs::create_directories(scratch_);
  }
  Result<std::string> BlobPath(const std::string& sha256) override { return blobs_ + "/" + sha256; }
  Result<std::string> PutBlob(const std::string& local_path) override {
    IMPULSE_ASSIGN_OR_RETURN(std::string sha256, Sha256File(local_path));
    fs::rename(local_path, blobs_ + "/" + sha256);
    return sha256;
  }
  const std::string& ScratchDir() const override { return scratch_; }
  void ReportProgress(double, const std::string&) override {}
  void Log(const std::string& line) override { std::printf("%s\n", line.c_str()); }
  bool StopRequested() const override { return false; }
  int Threads() const override { return 2; }
  void ReportEpoch(const v1::EpochStats& s) override {
    std::printf("epoch %u: %.1f s, train loss %.4f acc %.4f, val loss %.4f acc %.4f\n", s.epoch(),
                s.elapsed_s(), s.train_loss(), s.train_accuracy(), s.validation_loss(),
                s.validation_accuracy());
    std::fflush(stdout);
  }
  std::string blobs_, scratch_;
};

TEST(FashionMnistTraining, ExampleImpulseReachesNinetyOnePercentOnTheTestSet) {
  const char* env_dir = std::getenv("IMPULSE_FASHION_MNIST");
  const std::string dir = env_dir ? env_dir : "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir + "/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "no Fashion-MNIST in " << dir;
  auto loaded = LoadImpulseFile("examples/fashion-mnist.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  v1::Impulse impulse = WithDefaults(*loaded);
  if (const char* e = std::getenv("IMPULSE_EPOCHS"))
    impulse.mutable_training()->set_epochs(std::atoi(e));
  if (const char* a = std::getenv("IMPULSE_AUGMENTATION")) {
    impulse.mutable_training()->set_augmentation(std::atoi(a) != 0);
  }

  impulse::testing::TempDir tmp;
  DirTaskContext ctx(tmp.path());
  const std::string features = tmp.path() + "/features.bin";
  {
    features::FeatureShape shape;
    shape.channels = 1;
    shape.height = impulse.input().height();
    shape.width = impulse.input().width();
    shape.labels = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    auto writer = features::FeatureMatrixWriter::Create(features, shape, 70000);
    ASSERT_TRUE(writer.ok());
    uint32_t sample = 0;
    for (const auto& [prefix, split] : {std::pair<std::string, uint8_t>{"train", 1}, {"t10k", 2}}) {
      auto images = ReadIdxImages(dir + "/" + prefix + "-images-idx3-ubyte.gz");
      auto labels = ReadIdxLabels(dir + "/" + prefix + "-labels-idx1-ubyte.gz");
      ASSERT_TRUE(images.ok() && labels.ok());
      for (uint32_t i = 0; i < images->count; ++i) {
        cv::Mat image(images->rows, images->cols, CV_8UC1,
                      images->pixels.data() + size_t{i} * images->rows * images->cols);
        std::vector<uint8_t> row = features::ProcessImage(image, impulse);
        ASSERT_EQ(row.size(), shape.row_bytes());
        ASSERT_TRUE((*writer)->Append({(*labels)[i], split, sample++}, row.data()).ok());
      }
    }
    ASSERT_TRUE((*writer)->Finish().ok());
  }
  auto sha = ctx.PutBlob(features);
  ASSERT_TRUE(sha.ok());

  v1::TaskSpec spec;
  spec.set_task_id("fashion");
  spec.set_kind(v1::TASK_KIND_TRAIN);
  *spec.mutable_impulse() = impulse;
  (*spec.mutable_inputs())["features"] = *sha;
  const auto started = std::chrono::steady_clock::now();
  auto output = Train(spec, ctx);
  ASSERT_TRUE(output.ok()) << output.status().ToString();
  const double train_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  v1::Model model;
  {
    std::ifstream in(ctx.blobs_ + "/" + output->blobs().at("model"), std::ios::binary);
    ASSERT_TRUE(model.ParseFromIstream(&in));
  }
  auto fm = features::FeatureMatrix::Open(*ctx.BlobPath(*sha));
  ASSERT_TRUE(fm.ok());
  std::vector<uint64_t> test_rows;
  for (uint64_t r = 0; r < fm->rows(); ++r) {
    if (fm->info(r).split == 2) test_rows.push_back(r);
  }
  auto logits = PredictLogits(model, *fm, test_rows, 2);
  ASSERT_TRUE(logits.ok()) << logits.status().ToString();
  size_t correct = 0;
  for (size_t i = 0; i < test_rows.size(); ++i) {
    const auto& row = (*logits)[i];
    correct += static_cast<uint32_t>(std::max_element(row.begin(), row.end()) - row.begin()) ==
               fm->info(test_rows[i]).label;
  }
  const double accuracy = static_cast<double>(correct) / test_rows.size();
  std::printf("epochs %u augmentation %d: training %.1f s, test accuracy %.4f (%zu rows)\n",
              impulse.training().epochs(), impulse.training().augmentation(), train_s, accuracy,
              test_rows.size());
  EXPECT_GE(accuracy, 0.91);
}

}  // namespace
}  // namespace impulse::worker::training
