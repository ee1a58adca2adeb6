// The train task on small synthetic features: learning, determinism,
// checkpoint resume, NaN detection, cancellation, transfer weights.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>

#include "impulse/model/layer_graph.h"
#include "impulse/sha256.h"
#include "tests/support/temp_dir.h"
#include "worker/features/feature_matrix.h"
#include "worker/training/inference.h"
#include "worker/training/rows.h"
#include "worker/training/train.h"

namespace impulse::worker::training {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Blobs in a directory, named by sha256; records what the task reports.
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
  void ReportProgress(double, const std::string&) override {}
  void Log(const std::string&) override {}
  bool StopRequested() const override { return stop_; }
  int Threads() const override { return 2; }
  void ReportEpoch(const v1::EpochStats& stats) override {
    std::lock_guard<std::mutex> lock(mu_);
    epochs_.push_back(stats);
  }
  void ReportCheckpoint(const std::string& sha256, uint32_t epoch) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkpoints_.emplace_back(sha256, epoch);
    if (stop_after_epoch_ == epoch) stop_ = true;
  }

  std::string blobs_, scratch_;
  std::mutex mu_;
  std::vector<v1::EpochStats> epochs_;
  std::vector<std::pair<std::string, uint32_t>> checkpoints_;
  uint32_t stop_after_epoch_ = 0;
  std::atomic<bool> stop_{false};
};

// Three classes of 1x12x12 images: a bright 4x4 square in a class-specific
// corner, on noise. Linearly separable; a tiny CNN learns it in a few epochs.
std::string WriteFeatures(const std::string& path, int per_class, int test_per_class) {
  features::FeatureShape shape;
  shape.channels = 1;
  shape.height = 12;
  shape.width = 12;
  shape.labels = {"a", "b", "c"};
  const int rows = 3 * (per_class + test_per_class);
  auto writer = features::FeatureMatrixWriter::Create(path, shape, rows);
  EXPECT_TRUE(writer.ok());
  std::mt19937 rng(7);
  for (int i = 0; i < rows; ++i) {
    const uint32_t label = i % 3;
    std::vector<uint8_t> px(144);
    for (auto& p : px) p = static_cast<uint8_t>(rng() % 60);
    const int oy = label == 1 ? 6 : 1, ox = label == 2 ? 6 : 1;
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) px[(oy + y) * 12 + ox + x] = 200 + rng() % 55;
    const uint8_t split = i < 3 * per_class ? 1 : 2;
    EXPECT_TRUE((*writer)->Append({label, split, static_cast<uint32_t>(i)}, px.data()).ok());
  }
  EXPECT_TRUE((*writer)->Finish().ok());
  return path;
}

class TrainingTest : public ::testing::Test {
 protected:
  TrainingTest() {
    features_path_ = WriteFeatures(dir_.path() + "/features.bin", 60, 20);
    features_sha_ = *Sha256File(features_path_);
  }

  std::unique_ptr<DirTaskContext> NewContext(const std::string& name) {
    auto ctx = std::make_unique<DirTaskContext>(dir_.path() + "/" + name);
    fs::copy_file(features_path_, ctx->blobs_ + "/" + features_sha_);
    return ctx;
  }

  v1::TaskSpec Spec(uint32_t epochs, bool augmentation) {
    v1::TaskSpec spec;
    spec.set_task_id("t1");
    spec.set_job_id("j1");
    spec.set_kind(v1::TASK_KIND_TRAIN);
    v1::Impulse& impulse = *spec.mutable_impulse();
    impulse.set_name("synthetic");
    impulse.mutable_input()->set_width(12);
    impulse.mutable_input()->set_height(12);
    impulse.mutable_processing()->set_block(v1::PROCESSING_KIND_IMAGE);
    impulse.mutable_processing()->set_color(v1::COLOR_DEPTH_GRAYSCALE);
    v1::LearningBlock& learning = *impulse.mutable_learning();
    learning.set_block(v1::LEARNING_KIND_CLASSIFICATION);
    auto* conv = learning.add_conv();
    conv->set_filters(4);
    conv->set_pool(2);
    conv->set_dropout(0.1f);
    learning.add_dense_layers()->set_neurons(8);
    v1::TrainingSettings& training = *impulse.mutable_training();
    training.set_epochs(epochs);
    training.set_batch_size(16);
    training.set_learning_rate(0.01f);
    training.set_augmentation(augmentation);
    training.set_seed(3);
    (*spec.mutable_inputs())["features"] = features_sha_;
    return spec;
  }

  v1::Model ReadModel(DirTaskContext& ctx, const v1::TaskOutput& output) {
    v1::Model model;
    std::ifstream in(*ctx.BlobPath(output.blobs().at("model")), std::ios::binary);
    EXPECT_TRUE(model.ParseFromIstream(&in));
    return model;
  }

  impulse::testing::TempDir dir_;
  std::string features_path_, features_sha_;
};

TEST_F(TrainingTest, LearnsSeparableDataInAFewEpochs) {
  auto ctx = NewContext("learn");
  auto output = Train(Spec(6, false), *ctx);
  ASSERT_TRUE(output.ok()) << output.status().ToString();
  const auto& log = output->results().training_log();
  ASSERT_EQ(log.size(), 6);
  EXPECT_GE(log.rbegin()->validation_accuracy(), 0.95);
  EXPECT_EQ(ctx->epochs_.size(), 6u);
  EXPECT_EQ(ctx->checkpoints_.size(), 6u);
  EXPECT_THAT(output->results().labels(), ::testing::ElementsAre("a", "b", "c"));
  EXPECT_EQ(output->blobs().at("checkpoint"), ctx->checkpoints_.back().first);

  const v1::Model model = ReadModel(*ctx, *output);
  auto graph = model::LayerGraph::FromModel(model);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_TRUE(graph->CheckWeights().ok());
  EXPECT_EQ(model.labels_size(), 3);

  auto fm = features::FeatureMatrix::Open(features_path_);
  ASSERT_TRUE(fm.ok());
  const RowSplit split = SplitRows(*fm, 0.2, 3);
  EXPECT_EQ(split.test.size(), 60u);
  EXPECT_EQ(split.validation.size(), 36u);
  auto logits = PredictLogits(model, *fm, split.test, 2);
  ASSERT_TRUE(logits.ok()) << logits.status().ToString();
  int correct = 0;
  for (size_t i = 0; i < split.test.size(); ++i) {
    const auto& row = (*logits)[i];
    const int predicted = static_cast<int>(std::max_element(row.begin(), row.end()) - row.begin());
    correct += predicted == static_cast<int>(fm->info(split.test[i]).label);
  }
  EXPECT_GE(correct, 57);
}

TEST_F(TrainingTest, SameSeedGivesBitwiseEqualWeights) {
  auto a = NewContext("a");
  auto b = NewContext("b");
  auto first = Train(Spec(2, true), *a);
  auto second = Train(Spec(2, true), *b);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(first->blobs().at("model"), second->blobs().at("model"));
}

TEST_F(TrainingTest, ResumingFromACheckpointEqualsAnUninterruptedRun) {
  auto whole = NewContext("whole");
  auto uninterrupted = Train(Spec(4, true), *whole);
  ASSERT_TRUE(uninterrupted.ok()) << uninterrupted.status().ToString();

  auto parts = NewContext("parts");
  parts->stop_after_epoch_ = 2;  // the "worker dies" after its second checkpoint
  auto stopped = Train(Spec(4, true), *parts);
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.status().code(), StatusCode::kCancelled);
  ASSERT_EQ(parts->checkpoints_.size(), 2u);

  auto resumed_ctx = NewContext("resumed");
  fs::copy_file(*parts->BlobPath(parts->checkpoints_.back().first),
                resumed_ctx->blobs_ + "/" + parts->checkpoints_.back().first);
  v1::TaskSpec spec = Spec(4, true);
  (*spec.mutable_inputs())["checkpoint"] = parts->checkpoints_.back().first;
  auto resumed = Train(spec, *resumed_ctx);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(resumed_ctx->epochs_.size(), 2u);  // only epochs 3 and 4 ran
  EXPECT_EQ(resumed->results().training_log_size(), 4);
  EXPECT_EQ(resumed->results().warnings_size(), 0);
  EXPECT_EQ(resumed->blobs().at("model"), uninterrupted->blobs().at("model"));
}

TEST_F(TrainingTest, NanLossStopsNamingTheEpochAndBatch) {
  auto ctx = NewContext("nan");
  v1::TaskSpec spec = Spec(3, false);
  spec.mutable_impulse()->mutable_training()->set_optimizer(v1::OPTIMIZER_SGD);
  spec.mutable_impulse()->mutable_training()->set_learning_rate(1e12f);
  auto output = Train(spec, *ctx);
  ASSERT_FALSE(output.ok());
  EXPECT_EQ(output.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(output.status().message(), HasSubstr("the loss became"));
  EXPECT_THAT(output.status().message(), HasSubstr("at epoch"));
  EXPECT_THAT(output.status().message(), HasSubstr("training.learning_rate"));
}

TEST_F(TrainingTest, StopsWhenAsked) {
  auto ctx = NewContext("cancel");
  ctx->stop_ = true;
  auto output = Train(Spec(3, false), *ctx);
  ASSERT_FALSE(output.ok());
  EXPECT_EQ(output.status().code(), StatusCode::kCancelled);
  EXPECT_THAT(output.status().message(), HasSubstr("epoch 1 batch 1"));
}

TEST_F(TrainingTest, RefusesABatchLargerThanTheTrainingRows) {
  auto ctx = NewContext("batch");
  v1::TaskSpec spec = Spec(1, false);
  spec.mutable_impulse()->mutable_training()->set_batch_size(1000);
  auto output = Train(spec, *ctx);
  ASSERT_FALSE(output.ok());
  EXPECT_EQ(output.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(output.status().message(), HasSubstr("training.batch_size"));
}

// 40 uniform 32x32 images (the MobileNet minimum), dark ones labelled "a",
// bright ones "b", stored as a features blob of `ctx`; returns its sha256.
template <typename Context>
std::string PutDarkAndBright32(Context& ctx) {
  features::FeatureShape shape;
  shape.channels = 1;
  shape.height = 32;
  shape.width = 32;
  shape.labels = {"a", "b"};
  const std::string path = ctx.blobs_ + "/dark-and-bright.bin";
  auto writer = features::FeatureMatrixWriter::Create(path, shape, 40);
  EXPECT_TRUE(writer.ok());
  std::vector<uint8_t> px(1024);
  for (uint32_t i = 0; i < 40; ++i) {
    std::fill(px.begin(), px.end(), static_cast<uint8_t>(i % 2 ? 220 : 20));
    EXPECT_TRUE((*writer)->Append({i % 2, 1, i}, px.data()).ok());
  }
  EXPECT_TRUE((*writer)->Finish().ok());
  const std::string sha = *Sha256File(path);
  fs::rename(path, ctx.blobs_ + "/" + sha);
  return sha;
}

v1::TaskSpec TransferSpec(v1::TaskSpec spec, float alpha) {
  v1::Impulse& impulse = *spec.mutable_impulse();
  impulse.mutable_input()->set_width(32);
  impulse.mutable_input()->set_height(32);
  v1::LearningBlock& learning = *impulse.mutable_learning();
  learning.Clear();
  learning.set_block(v1::LEARNING_KIND_TRANSFER);
  learning.set_backbone(v1::BACKBONE_MOBILENET_V2);
  learning.set_alpha(alpha);
  learning.set_frozen_epochs(1);
  learning.set_fine_tune(true);
  return spec;
}

TEST_F(TrainingTest, TransferWithoutWeightsWarnsAndMismatchedWeightsAreRefused) {
  auto ctx = NewContext("transfer");
  const std::string sha = PutDarkAndBright32(*ctx);
  v1::TaskSpec spec = TransferSpec(Spec(2, false), 0.35f);
  (*spec.mutable_inputs())["features"] = sha;
  auto output = Train(spec, *ctx);
  ASSERT_TRUE(output.ok()) << output.status().ToString();
  ASSERT_EQ(output->results().warnings_size(), 1);
  EXPECT_THAT(output->results().warnings(0), HasSubstr("learning.weights"));

  // The trained 0.35 model as "pretrained weights" for a 0.5 network.
  (*spec.mutable_inputs())["weights"] = output->blobs().at("model");
  auto wider = Train(TransferSpec(spec, 0.5f), *ctx);
  ASSERT_FALSE(wider.ok());
  EXPECT_EQ(wider.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(wider.status().message(), HasSubstr("learning.weights"));
  EXPECT_THAT(wider.status().message(), HasSubstr("the model needs"));

  // And for the same width: loads and trains without the warning.
  auto same = Train(spec, *ctx);
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ(same->results().warnings_size(), 0);
}

// Regression: a transfer backbone without pretrained weights stayed frozen
// for the whole run unless fine_tune was set, so from-scratch MobileNets
// learned nothing (loss stuck at ln(classes)).
TEST_F(TrainingTest, RandomBackboneTrainsWithoutFineTune) {
  auto ctx = NewContext("scratch");
  const std::string sha = PutDarkAndBright32(*ctx);
  auto backbone_after = [&](uint32_t epochs) {
    v1::TaskSpec spec = TransferSpec(Spec(epochs, false), 0.35f);
    spec.mutable_impulse()->mutable_learning()->set_frozen_epochs(0);
    spec.mutable_impulse()->mutable_learning()->set_fine_tune(false);
    (*spec.mutable_inputs())["features"] = sha;
    auto output = Train(spec, *ctx);
    EXPECT_TRUE(output.ok()) << output.status().ToString();
    v1::Model model;
    std::ifstream in(ctx->blobs_ + "/" + output->blobs().at("model"), std::ios::binary);
    EXPECT_TRUE(model.ParseFromIstream(&in));
    std::string first_backbone_weight;
    for (const auto& tensor : model.weights()) {
      const std::string layer = tensor.name().substr(0, tensor.name().rfind('.'));
      for (const auto& l : model.layers()) {
        if (l.name() == layer && l.role() == v1::LAYER_ROLE_BACKBONE &&
            first_backbone_weight.empty()) {
          first_backbone_weight = tensor.data();
        }
      }
    }
    EXPECT_FALSE(first_backbone_weight.empty());
    return first_backbone_weight;
  };
  // Same seed, same start: only training can make epoch 2 differ from epoch 1.
  EXPECT_NE(backbone_after(1), backbone_after(2));
}

}  // namespace
}  // namespace impulse::worker::training
