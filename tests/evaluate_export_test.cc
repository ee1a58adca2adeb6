// EvaluateAndExport over a local directory: the split matches training's,
// metrics match the worker's float inference, the artifacts are there and
// valid, and bad inputs are refused.
#include "worker/evaluation/evaluate_export.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <random>

#include "impulse/model/layer_graph.h"
#include "tests/support/dir_task_context.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/temp_dir.h"
#include "worker/evaluation/split_metrics.h"
#include "worker/export/onnx_builder.h"
#include "worker/features/feature_matrix.h"
#include "worker/training/inference.h"
#include "worker/training/rows.h"

namespace impulse::worker::evaluation {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

const std::vector<std::string> kLabels = {"circle", "square", "bar"};

// 3 classes of 1x8x8 rows: 30 train and 10 test per class, each class a
// different brightness pattern plus noise.
std::string WriteFeatures(const std::string& path) {
  features::FeatureShape shape{.channels = 1, .height = 8, .width = 8, .labels = kLabels};
  auto writer = features::FeatureMatrixWriter::Create(path, shape, 120);
  EXPECT_TRUE(writer.ok());
  std::mt19937 rng(11);
  uint32_t sample = 0;
  for (uint8_t split : {1, 2}) {
    for (uint32_t label = 0; label < 3; ++label) {
      for (int i = 0; i < (split == 1 ? 30 : 10); ++i) {
        std::vector<uint8_t> px(64);
        for (int k = 0; k < 64; ++k) {
          const int pattern = label == 0 ? (k % 8) * 30 : label == 1 ? (k / 8) * 30 : 120;
          px[k] = static_cast<uint8_t>(std::clamp<int>(pattern + rng() % 40, 0, 255));
        }
        EXPECT_TRUE((*writer)
                        ->Append({.label = label, .split = split, .sample = sample++}, px.data())
                        .ok());
      }
    }
  }
  EXPECT_TRUE((*writer)->Finish().ok());
  return path;
}

v1::Model RandomModel(const std::vector<std::string>& labels) {
  v1::LearningBlock learning;
  learning.set_block(v1::LEARNING_KIND_CLASSIFICATION);
  auto* conv = learning.add_conv();
  conv->set_filters(4), conv->set_kernel_size(3), conv->set_pool(2);
  learning.add_dense_layers()->set_neurons(8);
  auto graph = model::BuildClassificationGraph(learning, 1, 8, 8, 3);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  for (const auto& label : labels) graph->mutable_model().add_labels(label);
  graph->mutable_model().set_input_normalization("pixels/255");
  testing::FillRandomWeights(*graph, 21);
  return graph->model();
}

class EvaluateExportTest : public ::testing::Test {
 protected:
  EvaluateExportTest() : ctx_(dir_.path() + "/ctx") {
    features_path_ = WriteFeatures(dir_.path() + "/features.bin");
    std::ifstream in(features_path_, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    spec_.set_kind(v1::TASK_KIND_QUANTIZE_EVALUATE);
    spec_.mutable_impulse()->set_name("shapes");
    spec_.mutable_impulse()->mutable_input()->set_width(8);
    spec_.mutable_impulse()->mutable_input()->set_height(8);
    spec_.mutable_impulse()->mutable_processing()->set_color(v1::COLOR_DEPTH_GRAYSCALE);
    spec_.mutable_impulse()->mutable_learning()->set_block(v1::LEARNING_KIND_CLASSIFICATION);
    spec_.mutable_impulse()->mutable_training()->set_validation_split(0.2f);
    spec_.mutable_impulse()->mutable_training()->set_seed(5);
    (*spec_.mutable_inputs())["features"] = ctx_.PutBytes(bytes);
    model_ = RandomModel(kLabels);
    (*spec_.mutable_inputs())["model"] = ctx_.PutBytes(model_.SerializeAsString());
    for (uint32_t e = 1; e <= 4; ++e) {
      v1::EpochStats* s = spec_.mutable_dependency_results()->add_training_log();
      s->set_epoch(e);
      s->set_train_loss(1.2 / e), s->set_validation_loss(1.3 / e);
      s->set_train_accuracy(0.4 + 0.1 * e), s->set_validation_accuracy(0.35 + 0.1 * e);
    }
  }

  std::string ArtifactPath(const v1::TaskOutput& output, const std::string& name) {
    for (const auto& a : output.artifacts()) {
      if (a.name() == name) return *ctx_.BlobPath(a.sha256());
    }
    ADD_FAILURE() << "no artifact " << name;
    return "";
  }

  testing::TempDir dir_;
  testing::DirTaskContext ctx_;
  std::string features_path_;
  v1::TaskSpec spec_;
  v1::Model model_;
};

TEST_F(EvaluateExportTest, MetricsMatchTheWorkersInferenceOnTrainingsSplit) {
  auto output = EvaluateAndExport(spec_, ctx_);
  ASSERT_TRUE(output.ok()) << output.status().ToString();
  const v1::JobResults& r = output->results();
  EXPECT_THAT(std::vector<std::string>(r.labels().begin(), r.labels().end()),
              ::testing::ElementsAreArray(kLabels));
  EXPECT_EQ(r.training_log_size(), 0);  // the train task reports it

  auto fm = features::FeatureMatrix::Open(features_path_);
  ASSERT_TRUE(fm.ok());
  const training::RowSplit split = training::SplitRows(*fm, 0.2, 5);
  EXPECT_EQ(split.validation.size(), 18u);  // 6 of each class's 30
  for (auto [rows, metrics] : {std::pair{&split.validation, &r.float32().validation()},
                               std::pair{&split.test, &r.float32().test()}}) {
    auto logits = training::PredictLogits(model_, *fm, *rows, 1);
    ASSERT_TRUE(logits.ok()) << logits.status().ToString();
    SplitMetricsAccumulator expected(kLabels, ScoreKind::kLogits);
    for (size_t i = 0; i < rows->size(); ++i) {
      ASSERT_TRUE(expected.Add(fm->info((*rows)[i]).label, (*logits)[i]).ok());
    }
    EXPECT_EQ(metrics->SerializeAsString(), expected.Finish().SerializeAsString());
    EXPECT_EQ(metrics->samples(), rows->size());
  }
  EXPECT_EQ(r.float32().test().samples(), 30u);
  EXPECT_EQ(ctx_.progress().back(), 1.0);
}

TEST_F(EvaluateExportTest, WritesValidArtifacts) {
  auto output = EvaluateAndExport(spec_, ctx_);
  ASSERT_TRUE(output.ok()) << output.status().ToString();
  std::vector<std::string> names;
  for (const auto& a : output->artifacts()) {
    names.push_back(a.name());
    EXPECT_GT(a.size(), 0u);
  }
  EXPECT_THAT(names, UnorderedElementsAre("model_f32.onnx", "confusion_matrix_f32.png",
                                          "training_curves.png", "confusion_matrix_i8.png",
                                          "model_i8/model.h", "model_i8/model.c", "model_i8.onnx"));
  std::ifstream in(ArtifactPath(*output, "model_f32.onnx"), std::ios::binary);
  onnx::ModelProto onnx_model;
  ASSERT_TRUE(onnx_model.ParseFromIstream(&in));
  EXPECT_TRUE(exporters::CheckOnnxModel(onnx_model).ok());
  for (const char* png :
       {"confusion_matrix_f32.png", "training_curves.png", "confusion_matrix_i8.png"}) {
    const cv::Mat image = cv::imread(ArtifactPath(*output, png));
    EXPECT_FALSE(image.empty()) << png;
  }
  // The int8 stage's only: the 72 training rows are fewer than the 500
  // calibration rows asked, and this untrained model's argmax flips on
  // near-ties (tests/evaluate_int8_test.cc checks a trained one).
  for (const auto& warning : output->results().warnings()) {
    EXPECT_THAT(warning, ::testing::StartsWith("int8: ")) << warning;
  }
  EXPECT_THAT(output->results().warnings(),
              ::testing::Contains(HasSubstr("calibrated on 72 training rows, fewer than the 500")));
}

TEST_F(EvaluateExportTest, ReportsInt8MetricsOnTheSameRows) {
  auto output = EvaluateAndExport(spec_, ctx_);
  ASSERT_TRUE(output.ok()) << output.status().ToString();
  const v1::JobResults& r = output->results();
  EXPECT_EQ(r.int8().validation().samples(), r.float32().validation().samples());
  EXPECT_EQ(r.int8().test().samples(), 30u);
  EXPECT_EQ(r.int8().test().confusion().counts_size(), 9);
  EXPECT_THAT(r.quantization_method(),
              ::testing::AnyOf("minmax", ::testing::StartsWith("percentile(")));
}

TEST_F(EvaluateExportTest, WithoutATrainingLogWarnsAndStillDrawsTheCurves) {
  spec_.mutable_dependency_results()->clear_training_log();
  auto output = EvaluateAndExport(spec_, ctx_);
  ASSERT_TRUE(output.ok()) << output.status().ToString();
  EXPECT_THAT(output->results().warnings(), ::testing::Contains(HasSubstr("training_curves.png")));
  EXPECT_EQ(output->artifacts_size(), 7);
}

TEST_F(EvaluateExportTest, RefusesMissingInputsAndAModelOfOtherLabels) {
  v1::TaskSpec no_model = spec_;
  no_model.mutable_inputs()->erase("model");
  EXPECT_EQ(EvaluateAndExport(no_model, ctx_).status().code(), StatusCode::kFailedPrecondition);

  v1::TaskSpec other = spec_;
  (*other.mutable_inputs())["model"] =
      ctx_.PutBytes(RandomModel({"circle", "square", "star"}).SerializeAsString());
  auto refused = EvaluateAndExport(other, ctx_);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("star"));

  v1::TaskSpec garbage = spec_;
  (*garbage.mutable_inputs())["model"] = ctx_.PutBytes("not a model");
  EXPECT_EQ(EvaluateAndExport(garbage, ctx_).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(EvaluateExportTest, StopsWhenAsked) {
  ctx_.RequestStop();
  EXPECT_EQ(EvaluateAndExport(spec_, ctx_).status().code(), StatusCode::kCancelled);
}

}  // namespace
}  // namespace impulse::worker::evaluation
