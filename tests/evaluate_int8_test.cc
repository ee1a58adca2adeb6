// The int8 stage of quantize-evaluate on a model trained here (a small CNN
// on corner-square images): int8 metrics beside float32, the artifacts,
// the choice of ranges by validation accuracy, the warnings, the refusal
// of too small a calibration set, thread-count independence.
#include "worker/evaluation/evaluate_int8.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <opencv2/imgcodecs.hpp>

#include "impulse/impulse_spec.h"
#include "tests/support/dir_task_context.h"
#include "tests/support/feature_fixtures.h"
#include "tests/support/temp_dir.h"
#include "worker/evaluation/evaluate_export.h"
#include "worker/export/onnx_builder.h"
#include "worker/training/rows.h"
#include "worker/training/train.h"

namespace impulse::worker::evaluation {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

v1::Impulse SquaresImpulse() {
  v1::Impulse impulse;
  impulse.set_name("squares");
  impulse.mutable_input()->set_width(12);
  impulse.mutable_input()->set_height(12);
  impulse.mutable_processing()->set_block(v1::PROCESSING_KIND_IMAGE);
  impulse.mutable_processing()->set_color(v1::COLOR_DEPTH_GRAYSCALE);
  v1::LearningBlock& learning = *impulse.mutable_learning();
  learning.set_block(v1::LEARNING_KIND_CLASSIFICATION);
  auto* conv = learning.add_conv();
  conv->set_filters(4);
  conv->set_pool(2);
  learning.add_dense_layers()->set_neurons(8);
  v1::TrainingSettings& training = *impulse.mutable_training();
  training.set_epochs(6);
  training.set_batch_size(16);
  training.set_learning_rate(0.01f);
  training.set_seed(3);
  return impulse;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// One model trained for the whole suite: 60 TRAIN and 20 TEST rows per class.
class EvaluateInt8Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    features_path_ = dir_->path() + "/features.bin";
    testing::WriteCornerSquareFeatures(features_path_, 60, 20);
    testing::DirTaskContext ctx(dir_->path() + "/train");
    v1::TaskSpec spec;
    spec.set_kind(v1::TASK_KIND_TRAIN);
    *spec.mutable_impulse() = SquaresImpulse();
    (*spec.mutable_inputs())["features"] = ctx.PutBytes(ReadFile(features_path_));
    auto trained = training::Train(spec, ctx);
    ASSERT_TRUE(trained.ok()) << trained.status().ToString();
    model_bytes_ = ReadFile(*ctx.BlobPath(trained->blobs().at("model")));
  }
  static void TearDownTestSuite() { delete dir_; }

  EvaluateInt8Test() : ctx_(scratch_.path(), 2) {}

  // The inputs the task would load, and float32 accuracies as given.
  EvaluationInputs Inputs() {
    v1::Model model;
    EXPECT_TRUE(model.ParseFromString(model_bytes_));
    const v1::Impulse impulse = WithDefaults(SquaresImpulse());
    auto fm = features::FeatureMatrix::Open(features_path_).value();
    training::RowSplit split =
        training::SplitRows(fm, impulse.training().validation_split(), impulse.training().seed());
    return EvaluationInputs{.impulse = impulse,
                            .graph = model::LayerGraph::FromModel(model).value(),
                            .features = std::move(fm),
                            .split = std::move(split),
                            .labels = {"a", "b", "c"}};
  }

  v1::TaskOutput OutputWithFloat32(double validation, double test) {
    v1::TaskOutput output;
    output.mutable_results()->mutable_float32()->mutable_validation()->set_accuracy(validation);
    output.mutable_results()->mutable_float32()->mutable_test()->set_accuracy(test);
    return output;
  }

  static std::vector<std::string> Warnings(const v1::TaskOutput& output) {
    return {output.results().warnings().begin(), output.results().warnings().end()};
  }

  static inline testing::TempDir* dir_ = nullptr;
  static inline std::string features_path_;
  static inline std::string model_bytes_;
  testing::TempDir scratch_;
  testing::DirTaskContext ctx_;
};

TEST_F(EvaluateInt8Test, TheTaskReportsInt8BesideFloat32AndWritesTheInt8Artifacts) {
  v1::TaskSpec spec;
  spec.set_kind(v1::TASK_KIND_QUANTIZE_EVALUATE);
  *spec.mutable_impulse() = SquaresImpulse();
  spec.mutable_impulse()->set_target("host");
  (*spec.mutable_inputs())["features"] = ctx_.PutBytes(ReadFile(features_path_));
  (*spec.mutable_inputs())["model"] = ctx_.PutBytes(model_bytes_);
  auto output = EvaluateAndExport(spec, ctx_);
  ASSERT_TRUE(output.ok()) << output.status().ToString();
  const v1::JobResults& r = output->results();
  EXPECT_EQ(r.int8().validation().samples(), r.float32().validation().samples());
  EXPECT_EQ(r.int8().test().samples(), 60u);
  EXPECT_GE(r.float32().test().accuracy(), 0.95);
  // The trained model keeps its accuracy in int8 (60 test rows: one row is
  // 1.7 points).
  EXPECT_GE(r.int8().test().accuracy(), r.float32().test().accuracy() - 0.034);
  // Cross-entropy of the dequantized softmax (1/256 steps; a sure row is 0).
  EXPECT_LT(r.int8().test().loss(), r.float32().test().loss() + 0.1);
  EXPECT_EQ(r.int8().test().classes_size(), 3);
  EXPECT_EQ(r.quantization_method(), "minmax");
  EXPECT_THAT(Warnings(*output), Not(Contains(HasSubstr("points below float32"))));

  std::map<std::string, std::string> artifacts;
  for (const auto& a : output->artifacts()) artifacts[a.name()] = *ctx_.BlobPath(a.sha256());
  for (const char* name : {"confusion_matrix_i8.png", "model_i8/model.h", "model_i8/model.c",
                           "model_i8.onnx", "model_f32.onnx"}) {
    ASSERT_TRUE(artifacts.count(name)) << name;
  }
  EXPECT_FALSE(cv::imread(artifacts["confusion_matrix_i8.png"]).empty());
  EXPECT_THAT(ReadFile(artifacts["model_i8/model.h"]), HasSubstr("#define"));
  EXPECT_THAT(ReadFile(artifacts["model_i8/model.c"]), HasSubstr("#include \"model.h\""));
  onnx::ModelProto qdq;
  ASSERT_TRUE(qdq.ParseFromString(ReadFile(artifacts["model_i8.onnx"])));
  EXPECT_TRUE(exporters::CheckOnnxModel(qdq).ok());
  // The int8 device figures come from the C library's arena.
  EXPECT_GT(r.int8().device().ram_bytes(), 0u);
}

TEST_F(EvaluateInt8Test, TriesPercentileRangesAndKeepsTheBestOnValidation) {
  const EvaluationInputs in = Inputs();
  // A float32 validation accuracy int8 cannot reach forces the retry.
  v1::TaskOutput output = OutputWithFloat32(1.01, 1.0);
  Int8Options options;
  options.percentiles = {99.99, 90};
  ASSERT_TRUE(Int8Stage(in, options, ctx_, 0.8, output).ok());
  const auto logs = ctx_.logs();
  EXPECT_THAT(logs, Contains(HasSubstr("with percentile(99.99)")));
  EXPECT_THAT(logs, Contains(HasSubstr("with percentile(90)")));
  // Whatever won, nothing tried scored better on validation.
  const std::string method = output.results().quantization_method();
  EXPECT_THAT(method, ::testing::AnyOf("minmax", "percentile(99.99)", "percentile(90)"));
  v1::TaskOutput minmax_only = OutputWithFloat32(0, 0);
  testing::DirTaskContext other(scratch_.path() + "/other", 2);
  ASSERT_TRUE(Int8Stage(in, Int8Options{}, other, 0.8, minmax_only).ok());
  EXPECT_EQ(minmax_only.results().quantization_method(), "minmax");
  EXPECT_GE(output.results().int8().validation().accuracy(),
            minmax_only.results().int8().validation().accuracy());
}

TEST_F(EvaluateInt8Test, WarnsWithTheWorstOpsWhenInt8FallsBehind) {
  v1::TaskOutput output = OutputWithFloat32(0, 1.5);  // 150 %: always "behind"
  ASSERT_TRUE(Int8Stage(Inputs(), Int8Options{}, ctx_, 0.8, output).ok());
  EXPECT_THAT(Warnings(output),
              Contains(AllOf(HasSubstr("points below float32"), HasSubstr("minmax"),
                             HasSubstr(" dB (range ["), HasSubstr("on 8 calibration rows"))));
}

TEST_F(EvaluateInt8Test, ReportsASmallCalibrationSetAndRefusesATinyOne) {
  Int8Options options;
  options.calibration_rows = 100000;
  v1::TaskOutput output = OutputWithFloat32(0, 0);
  EvaluationInputs in = Inputs();
  const size_t train_rows = in.split.train.size();
  ASSERT_TRUE(Int8Stage(in, options, ctx_, 0.8, output).ok());
  EXPECT_THAT(Warnings(output), Contains(AllOf(HasSubstr(std::to_string(train_rows)),
                                               HasSubstr("fewer than the 100000 asked"))));
  EXPECT_TRUE(output.results().int8().has_test());

  in.split.train.resize(kMinCalibrationRows - 1);
  v1::TaskOutput tiny = OutputWithFloat32(0, 0);
  ASSERT_TRUE(Int8Stage(in, Int8Options{}, ctx_, 0.8, tiny).ok());
  EXPECT_THAT(Warnings(tiny),
              Contains(AllOf(HasSubstr("no int8 model"), HasSubstr("at least 10 training rows"))));
  EXPECT_FALSE(tiny.results().has_int8());
  EXPECT_EQ(tiny.artifacts_size(), 0);
}

TEST_F(EvaluateInt8Test, MetricsDoNotDependOnTheThreadCount) {
  const EvaluationInputs in = Inputs();
  v1::TaskOutput one = OutputWithFloat32(0, 0), two = OutputWithFloat32(0, 0);
  testing::DirTaskContext single(scratch_.path() + "/one", 1);
  ASSERT_TRUE(Int8Stage(in, Int8Options{}, single, 0.8, one).ok());
  ASSERT_TRUE(Int8Stage(in, Int8Options{}, ctx_, 0.8, two).ok());
  EXPECT_EQ(one.results().int8().SerializeAsString(), two.results().int8().SerializeAsString());
}

TEST_F(EvaluateInt8Test, StopsWhenAsked) {
  ctx_.RequestStop();
  v1::TaskOutput output = OutputWithFloat32(0, 0);
  EXPECT_EQ(Int8Stage(Inputs(), Int8Options{}, ctx_, 0.8, output).code(), StatusCode::kCancelled);
}

}  // namespace
}  // namespace impulse::worker::evaluation
