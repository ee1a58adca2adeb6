// model_f32.onnx run by an independent runtime (ONNX Runtime, through
// onnxruntime-node and run_ort.js) must agree with the worker's float
// inference (worker/training/inference.h): top-1 on at least
// kMinTop1Agreement of the rows, softmax probabilities within
// kMaxProbabilityDiff.
//
// Models: a quickly trained classification network exported by the
// quantize-evaluate task itself, and random weights (tests/support/
// model_fixtures.h) for the default classification network, MobileNetV1,
// MobileNetV2 and a hand-made graph with every layer kind.
//
// ONNX Runtime comes from ort_runtime.h.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include "impulse/model/layer_graph.h"
#include "tests/onnx_agreement/ort_runtime.h"
#include "tests/support/dir_task_context.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/temp_dir.h"
#include "worker/evaluation/evaluate_export.h"
#include "worker/export/onnx_export.h"
#include "worker/features/feature_matrix.h"
#include "worker/training/inference.h"
#include "worker/training/train.h"

namespace impulse {
namespace {

constexpr double kMinTop1Agreement = 0.999;
// float32 kernels of two runtimes differ in summation order: about 1e-7
// relative per layer. 1e-4 on a probability leaves room for deep networks
// and still catches any wrong layer (which moves probabilities by > 1e-2).
constexpr double kMaxProbabilityDiff = 1e-4;

class OnnxAgreementTest : public testing::OnnxRuntimeTest {
 protected:
  struct Agreement {
    size_t rows = 0;
    size_t agree = 0;
    double max_probability_diff = 0;
    double ort_accuracy = 0;
  };

  // The test rows of `features_path` through the worker and through ORT.
  Agreement Compare(const v1::Model& model, const std::string& onnx_path,
                    const std::string& features_path) {
    Agreement a;
    auto fm = worker::features::FeatureMatrix::Open(features_path);
    EXPECT_TRUE(fm.ok()) << fm.status().ToString();
    if (!fm.ok()) return a;
    std::vector<uint64_t> rows;
    for (uint64_t r = 0; r < fm->rows(); ++r) {
      if (fm->info(r).split == 2) rows.push_back(r);
    }
    auto logits = worker::training::PredictLogits(model, *fm, rows, 2);
    EXPECT_TRUE(logits.ok()) << logits.status().ToString();
    if (!logits.ok()) return a;

    std::string error;
    const size_t classes = model.labels_size();
    const std::vector<float> ort = testing::RunOrtOnFeatures(
        onnx_path, features_path, {}, rows.size(), classes, dir_.path(), &error);
    EXPECT_EQ(error, "");
    if (ort.empty()) return a;

    size_t ort_correct = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      const std::vector<float>& x = (*logits)[i];
      const double max = *std::max_element(x.begin(), x.end());
      double sum = 0;
      for (float v : x) sum += std::exp(v - max);
      const float* p = &ort[i * classes];
      for (size_t c = 0; c < classes; ++c) {
        const double worker_p = std::exp(x[c] - max) / sum;
        a.max_probability_diff = std::max(a.max_probability_diff, std::abs(worker_p - p[c]));
      }
      const size_t worker_top = std::max_element(x.begin(), x.end()) - x.begin();
      const size_t ort_top = std::max_element(p, p + classes) - p;
      a.agree += worker_top == ort_top;
      ort_correct += ort_top == fm->info(rows[i]).label;
    }
    a.rows = rows.size();
    a.ort_accuracy = rows.empty() ? 0 : static_cast<double>(ort_correct) / rows.size();
    std::printf("  %s: top-1 agreement %zu/%zu (%.3f %%), max |p_worker - p_ort| %.3g\n",
                model.architecture().c_str(), a.agree, a.rows, 100.0 * a.agree / a.rows,
                a.max_probability_diff);
    return a;
  }

  void ExpectAgreement(const Agreement& a) {
    ASSERT_GT(a.rows, 0u);
    EXPECT_GE(static_cast<double>(a.agree) / a.rows, kMinTop1Agreement)
        << a.agree << " of " << a.rows << " rows agree";
    EXPECT_LE(a.max_probability_diff, kMaxProbabilityDiff);
  }

  // `test_rows` random test rows of [c, h, w] over `classes` classes, then
  // `train_per_class` rows per class of a learnable pattern (class k is
  // brighter in band k) for training.
  std::string WriteFeatures(uint32_t c, uint32_t h, uint32_t w, uint32_t classes,
                            uint32_t test_per_class, uint32_t train_per_class, uint64_t seed) {
    worker::features::FeatureShape shape{.channels = c, .height = h, .width = w};
    for (uint32_t k = 0; k < classes; ++k) shape.labels.push_back("class" + std::to_string(k));
    const std::string path = dir_.path() + "/features-" + std::to_string(seed) + ".bin";
    const uint64_t total = uint64_t{classes} * (test_per_class + train_per_class);
    auto writer = worker::features::FeatureMatrixWriter::Create(path, shape, total);
    EXPECT_TRUE(writer.ok());
    std::mt19937_64 rng(seed);
    uint32_t sample = 0;
    std::vector<uint8_t> px(shape.row_bytes());
    for (uint8_t split : {uint8_t{1}, uint8_t{2}}) {
      for (uint32_t k = 0; k < classes; ++k) {
        for (uint32_t i = 0; i < (split == 2 ? test_per_class : train_per_class); ++i) {
          for (size_t j = 0; j < px.size(); ++j) {
            const uint32_t band = static_cast<uint32_t>((j % (h * w)) / w * classes / h);
            px[j] = static_cast<uint8_t>((band == k ? 150 : 0) + rng() % 100);
          }
          EXPECT_TRUE(
              (*writer)->Append({.label = k, .split = split, .sample = sample++}, px.data()).ok());
        }
      }
    }
    EXPECT_TRUE((*writer)->Finish().ok());
    return path;
  }

  // Random weights for `graph`, labels class0.., exported to model_f32.onnx.
  v1::Model RandomExport(Result<model::LayerGraph> graph, const std::string& onnx_path) {
    EXPECT_TRUE(graph.ok()) << graph.status().ToString();
    v1::Model& m = graph->mutable_model();
    const uint32_t classes = graph->classes();
    m.clear_labels();
    for (uint32_t k = 0; k < classes; ++k) m.add_labels("class" + std::to_string(k));
    m.set_input_normalization("pixels/255");
    testing::FillRandomWeights(*graph, 17);
    const Status exported = worker::exporters::ExportFloatOnnx(
        *graph, {.impulse_name = "agreement", .normalization = "pixels / 255"}, onnx_path);
    EXPECT_TRUE(exported.ok()) << exported.ToString();
    return graph->model();
  }

  testing::TempDir dir_;
};


// The whole float32 path: train (3 quick epochs), the quantize-evaluate
// task writes model_f32.onnx, ORT runs the artifact on the test set.
TEST_F(OnnxAgreementTest, TrainedModelExportedByTheTask) {
  const std::string features = WriteFeatures(1, 16, 16, 4, 100, 60, 1);
  testing::DirTaskContext ctx(dir_.path() + "/ctx");
  std::ifstream in(features, std::ios::binary);
  const std::string features_sha =
      ctx.PutBytes(std::string((std::istreambuf_iterator<char>(in)), {}));

  v1::TaskSpec spec;
  v1::Impulse& impulse = *spec.mutable_impulse();
  impulse.set_name("agreement");
  impulse.mutable_input()->set_width(16);
  impulse.mutable_input()->set_height(16);
  impulse.mutable_processing()->set_block(v1::PROCESSING_KIND_IMAGE);
  impulse.mutable_processing()->set_color(v1::COLOR_DEPTH_GRAYSCALE);
  v1::LearningBlock& learning = *impulse.mutable_learning();
  learning.set_block(v1::LEARNING_KIND_CLASSIFICATION);
  v1::ConvLayer* conv = learning.add_conv();
  conv->set_filters(8), conv->set_kernel_size(3), conv->set_pool(2);
  learning.add_dense_layers()->set_neurons(16);
  v1::TrainingSettings& training = *impulse.mutable_training();
  training.set_epochs(3), training.set_batch_size(32), training.set_learning_rate(0.01f);
  training.set_seed(3);
  (*spec.mutable_inputs())["features"] = features_sha;
  spec.set_kind(v1::TASK_KIND_TRAIN);
  auto trained = worker::training::Train(spec, ctx);
  ASSERT_TRUE(trained.ok()) << trained.status().ToString();

  spec.set_kind(v1::TASK_KIND_QUANTIZE_EVALUATE);
  (*spec.mutable_inputs())["model"] = trained->blobs().at("model");
  auto evaluated = worker::evaluation::EvaluateAndExport(spec, ctx);
  ASSERT_TRUE(evaluated.ok()) << evaluated.status().ToString();
  std::string onnx_path;
  for (const auto& artifact : evaluated->artifacts()) {
    if (artifact.name() == "model_f32.onnx") onnx_path = *ctx.BlobPath(artifact.sha256());
  }
  ASSERT_FALSE(onnx_path.empty());

  v1::Model model;
  std::ifstream model_in(*ctx.BlobPath(trained->blobs().at("model")), std::ios::binary);
  ASSERT_TRUE(model.ParseFromIstream(&model_in));
  const Agreement a = Compare(model, onnx_path, features);
  ExpectAgreement(a);
  EXPECT_EQ(a.rows, 400u);
  // The task's reported test accuracy is the worker's; ORT's is within the
  // disagreeing rows of it.
  EXPECT_NEAR(a.ort_accuracy, evaluated->results().float32().test().accuracy(),
              static_cast<double>(a.rows - a.agree) / a.rows + 1e-12);
  EXPECT_GT(a.ort_accuracy, 0.5) << "three epochs should learn the bands";
}

TEST_F(OnnxAgreementTest, DefaultClassificationNetworkRandomWeights) {
  v1::LearningBlock learning;
  learning.set_block(v1::LEARNING_KIND_CLASSIFICATION);
  const std::string onnx_path = dir_.path() + "/model_f32.onnx";
  const v1::Model model =
      RandomExport(model::BuildClassificationGraph(learning, 1, 28, 28, 10), onnx_path);
  ExpectAgreement(Compare(model, onnx_path, WriteFeatures(1, 28, 28, 10, 100, 0, 2)));
}

TEST_F(OnnxAgreementTest, MobileNetV1RandomWeights) {
  const std::string onnx_path = dir_.path() + "/model_f32.onnx";
  const v1::Model model = RandomExport(
      model::BuildMobileNetV1(0.25f, 3, 32, 32, 4, {.dense = 16, .dropout = 0.1f}), onnx_path);
  ExpectAgreement(Compare(model, onnx_path, WriteFeatures(3, 32, 32, 4, 250, 0, 3)));
}

TEST_F(OnnxAgreementTest, MobileNetV2RandomWeights) {
  const std::string onnx_path = dir_.path() + "/model_f32.onnx";
  const v1::Model model = RandomExport(model::BuildMobileNetV2(0.35f, 3, 48, 48, 5, {}), onnx_path);
  ExpectAgreement(Compare(model, onnx_path, WriteFeatures(3, 48, 48, 5, 200, 0, 4)));
}

TEST_F(OnnxAgreementTest, EveryLayerKindRandomWeights) {
  const std::string onnx_path = dir_.path() + "/model_f32.onnx";
  const v1::Model model =
      RandomExport(model::LayerGraph::FromModel(testing::EveryLayerKindModel()), onnx_path);
  ExpectAgreement(Compare(model, onnx_path, WriteFeatures(3, 8, 8, 3, 400, 0, 5)));
}

// An average pool with TensorFlow's asymmetric "same" padding (bottom and
// right only): model.proto says padded cells are not counted, which ONNX's
// AveragePool(count_include_pad = 0) does. Regression: GraphModule used to
// count the explicit zero padding (90.8 % top-1 agreement, max |dp| 0.075).
TEST_F(OnnxAgreementTest, AsymmetricAveragePoolPadding) {
  v1::Model m;
  m.set_architecture("asymmetric-avg-pool");
  for (uint32_t d : {1, 6, 6}) m.add_input_shape(d);
  testing::AddLayer(m, "input", v1::LAYER_KIND_INPUT, {});
  v1::Layer* pool = testing::AddLayer(m, "pool", v1::LAYER_KIND_AVG_POOL, {0});
  pool->set_kernel_h(3), pool->set_kernel_w(3), pool->set_stride_h(2), pool->set_stride_w(2);
  pool->set_pad_bottom(1), pool->set_pad_right(1);
  testing::AddLayer(m, "flatten", v1::LAYER_KIND_FLATTEN, {1});
  testing::AddLayer(m, "dense", v1::LAYER_KIND_DENSE, {2})->set_filters(3);
  testing::AddLayer(m, "softmax", v1::LAYER_KIND_SOFTMAX, {3});
  const std::string onnx_path = dir_.path() + "/model_f32.onnx";
  const v1::Model model = RandomExport(model::LayerGraph::FromModel(m), onnx_path);
  ExpectAgreement(Compare(model, onnx_path, WriteFeatures(1, 6, 6, 3, 300, 0, 7)));
}

TEST_F(OnnxAgreementTest, RawBlockNetworkRandomWeights) {
  const std::string onnx_path = dir_.path() + "/model_f32.onnx";
  const v1::Model model =
      RandomExport(model::LayerGraph::FromModel(testing::FlatModel()), onnx_path);
  ExpectAgreement(Compare(model, onnx_path, WriteFeatures(1, 4, 4, 2, 500, 0, 6)));
}

}  // namespace
}  // namespace impulse
