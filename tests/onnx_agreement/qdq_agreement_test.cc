// model_i8.onnx (worker/export/onnx_qdq_export.h) run by ONNX Runtime
// (onnxruntime-node 1.30; on x86 it fuses the whole file into QLinearConv /
// QLinearAdd / QGemm / QLinearAveragePool / QLinearGlobalAveragePool /
// QLinearSoftmax) must agree
// with the worker's integer interpreter (worker/int8/interpreter.h) on the
// top-1 class of at least kMinTop1Agreement of the test rows (issue 4).
// Printed and bounded too: the share of int8 scores equal exactly and
// within one step, and each op alone: fed ORT's own int8 input (read
// through extra graph outputs), our kernel must land within one step of
// ORT's output everywhere — the check that the file means what the model
// means (weights, biases, padding, scales, clamps) — and equal to it on at
// least kMinOpExact of them — the check that both round alike.
//
// Which differences remain, and why. Both compute every accumulator exactly
// in int32 (same int8 weights, int32 bias, padding by the zero point), and
// the model input exactly (pixels / 255 at scale 1/255 is the pixel); they
// differ only in rounding back to int8 (docs/INT8.md, "Rounding"):
//   * requantization. ORT multiplies by the float multiplier (input scale x
//     weight scale / output scale) and rounds half to even: the exactly
//     rounded product but for float32's 2^-24. Ours (kernels.c) rounds the
//     exact int64 product with the Q31 multiplier once, ties up (TFLite's
//     TFLITE_SINGLE_ROUNDING, CMSIS-NN's CMSIS_NN_USE_SINGLE_ROUNDING).
//     Ties up or away from zero measured the same below: exact ties are
//     rare, and ORT's product is not the same number.
//   * pools: ORT's QLinearAveragePool rounds the mean of the codes half to
//     even, its QLinearGlobalAveragePool the real mean (codes less the zero
//     point); ours does each the same (every op alone: exact here).
//   * softmax: ours looks exp up in a 2^16-scaled table, ORT computes it in
//     float: equal on every output measured.
//   * one step in an early layer moves the later ones by more (a 1x1 conv
//     whose input scale is twice its output scale turns it into several
//     steps), so deep networks amplify what each op does alone.
// Measured (2-core Xeon, onnxruntime-node 1.30.0, these tests), top-1
// agreement / scores exact / scores within one step:
//                           one rounding (kernels.c)  TFLite's default two roundings
//   default network          100.00 / 99.95 / 99.99 %    99.90 / 97.75 / 98.97 %
//   MobileNetV2 0.35         100.00 / 98.64 / 99.12 %    92.00 / 48.62 / 68.04 %
//   every layer kind         100.00 / 100.0 / 100.0 %   100.00 / 98.40 / 100.0 %
// and each op alone: at least 99.999 % of its outputs exact with one
// rounding (the rest one step: float32's last bit in ORT), down to 98.9 %
// with two.
//
// Models: the default classification network and MobileNetV2 0.35 trained
// briefly on Fashion-MNIST images (so the top-1 means something) and
// quantized as the quantize-evaluate task first does (min/max ranges,
// tests/support/quantize_fixtures.h); a random-weight graph with every
// layer kind; and the model_i8.onnx artifact the task itself writes. The
// whole 10 000-image test set runs in bench/run_int8_bench.sh.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <span>

#include "impulse/model/layer_graph.h"
#include "tests/onnx_agreement/ort_runtime.h"
#include "tests/support/dir_task_context.h"
#include "tests/support/fashion_features.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/quantize_fixtures.h"
#include "tests/support/temp_dir.h"
#include "worker/evaluation/evaluate_export.h"
#include "worker/export/onnx_builder.h"
#include "worker/export/onnx_qdq_export.h"
#include "worker/features/feature_matrix.h"
#include "worker/int8/interpreter.h"
#include "worker/training/train.h"

namespace impulse {
namespace {

using worker::features::FeatureMatrix;
using worker::int8::QuantizedModel;

constexpr double kMinTop1Agreement = 0.995;
// Scores within one int8 step of ours: a wrong layer drops this far lower.
constexpr double kMinWithinOneStep = 0.97;
// Each op alone, on ORT's input: the share of its outputs equal to ORT's
// (a rounding rule of its own drops an op to 98-99.9 %).
constexpr double kMinOpExact = 0.9995;
// Test rows whose every op output is compared in isolation.
constexpr size_t kIsolationRows = 50;
constexpr int kThreads = 2;

// The test rows of a feature matrix.
std::vector<uint64_t> TestRows(const FeatureMatrix& fm) {
  std::vector<uint64_t> rows;
  for (uint64_t r = 0; r < fm.rows(); ++r) {
    if (fm.info(r).split == 2) rows.push_back(r);
  }
  return rows;
}

// The model's int8 input for one feature row: pixel - 128 (scale 1/255,
// zero point -128).
void Int8Input(const FeatureMatrix& fm, uint64_t row, std::vector<int8_t>& input) {
  const uint8_t* px = fm.pixels(row);
  input.resize(fm.shape().row_bytes());
  for (size_t k = 0; k < input.size(); ++k) input[k] = static_cast<int8_t>(px[k] - 128);
}

struct Steps {
  size_t outputs = 0, exact = 0, within_one = 0;
  int max = 0;
  void Add(int8_t ours, int8_t theirs) {
    const int diff = std::abs(int{ours} - int{theirs});
    ++outputs, exact += diff == 0, within_one += diff <= 1;
    max = std::max(max, diff);
  }
  double exact_share() const { return static_cast<double>(exact) / outputs; }
  double within_one_share() const { return static_cast<double>(within_one) / outputs; }
};

struct Agreement {
  size_t rows = 0, top1_agree = 0, ours_correct = 0, ort_correct = 0;
  Steps scores;
};

class QdqAgreementTest : public testing::OnnxRuntimeTest {
 protected:
  // Features of Fashion-MNIST at `size` x `size` (the first `train_images`
  // and `test_images`) at features_path_, with spec_'s impulse.
  void WriteFeatures(uint32_t size, bool grayscale, uint32_t train_images, uint32_t test_images) {
    v1::Impulse& impulse = *spec_.mutable_impulse();
    impulse.set_name("qdq-agreement");
    impulse.mutable_input()->set_width(size);
    impulse.mutable_input()->set_height(size);
    impulse.mutable_processing()->set_block(v1::PROCESSING_KIND_IMAGE);
    impulse.mutable_processing()->set_color(grayscale ? v1::COLOR_DEPTH_GRAYSCALE
                                                      : v1::COLOR_DEPTH_RGB);
    features_path_ = dir_.path() + "/features.bin";
    const Status written =
        testing::WriteFashionMnistFeatures(impulse, train_images, test_images, features_path_);
    ASSERT_TRUE(written.ok()) << written.ToString();
    std::ifstream in(features_path_, std::ios::binary);
    (*spec_.mutable_inputs())["features"] =
        ctx_.PutBytes(std::string((std::istreambuf_iterator<char>(in)), {}));
  }

  // spec_'s impulse with `learning` trained for `epochs` (batches of
  // `batch_size`) by the train task on features_path_; the model's blob in
  // model_blob_.
  v1::Model Train(const v1::LearningBlock& learning, uint32_t epochs, uint32_t batch_size = 64) {
    *spec_.mutable_impulse()->mutable_learning() = learning;
    v1::TrainingSettings& training = *spec_.mutable_impulse()->mutable_training();
    training.set_epochs(epochs), training.set_batch_size(batch_size);
    training.set_learning_rate(0.002f), training.set_seed(5);
    spec_.set_kind(v1::TASK_KIND_TRAIN);
    auto trained = worker::training::Train(spec_, ctx_);
    EXPECT_TRUE(trained.ok()) << trained.status().ToString();
    v1::Model model;
    if (!trained.ok()) return model;
    model_blob_ = trained->blobs().at("model");
    std::ifstream in(*ctx_.BlobPath(model_blob_), std::ios::binary);
    EXPECT_TRUE(model.ParseFromIstream(&in));
    return model;
  }

  static QuantizedModel Quantize(const v1::Model& model, const FeatureMatrix& fm) {
    auto quantized = testing::QuantizeMinMax(model, fm, kThreads);
    EXPECT_TRUE(quantized.ok()) << quantized.status().ToString();
    return quantized.ok() ? *std::move(quantized) : QuantizedModel{};
  }

  // The interpreter and ORT on model_i8.onnx over every test row.
  Agreement CompareScores(const QuantizedModel& qm, const FeatureMatrix& fm) {
    Agreement a;
    const std::string onnx_path = dir_.path() + "/model_i8.onnx";
    const Status exported = worker::exporters::ExportQdqOnnx(
        qm, {.impulse_name = "qdq-agreement", .normalization = "pixels / 255"}, onnx_path);
    EXPECT_TRUE(exported.ok()) << exported.ToString();
    const std::vector<uint64_t> rows = TestRows(fm);
    const size_t classes = qm.ops.back().op.output_elements;
    std::string error;
    const std::vector<float> ort = testing::RunOrtOnFeatures(
        onnx_path, features_path_, {}, rows.size(), classes, dir_.path(), &error);
    EXPECT_EQ(error, "");
    if (ort.empty()) return a;

    const worker::int8::QuantParams& out = qm.ops.back().output;
    worker::int8::Interpreter interpreter(qm);
    std::vector<int8_t> input, ours(classes), theirs(classes);
    for (size_t i = 0; i < rows.size(); ++i) {
      Int8Input(fm, rows[i], input);
      interpreter.Invoke(input, ours);
      for (size_t c = 0; c < classes; ++c) {
        // ORT's scores are (q - zero point) * scale exactly: read q back.
        theirs[c] =
            static_cast<int8_t>(std::lround(ort[i * classes + c] / out.scale) + out.zero_point);
        a.scores.Add(ours[c], theirs[c]);
      }
      // The first maximum on both sides, so equal outputs give equal classes.
      const size_t our_top = std::max_element(ours.begin(), ours.end()) - ours.begin();
      const size_t their_top = std::max_element(theirs.begin(), theirs.end()) - theirs.begin();
      a.top1_agree += our_top == their_top;
      a.ours_correct += our_top == fm.info(rows[i]).label;
      a.ort_correct += their_top == fm.info(rows[i]).label;
    }
    a.rows = rows.size();
    std::printf(
        "  %s: top-1 agreement %zu/%zu (%.2f %%); scores exact %.2f %%, within one step %.2f %%, "
        "max %d steps; top-1 accuracy interpreter %.4f, ORT %.4f\n",
        qm.architecture.c_str(), a.top1_agree, a.rows, 100.0 * a.top1_agree / a.rows,
        100.0 * a.scores.exact_share(), 100.0 * a.scores.within_one_share(), a.scores.max,
        static_cast<double>(a.ours_correct) / a.rows, static_cast<double>(a.ort_correct) / a.rows);
    return a;
  }

  // Each op with one input on ORT's own int8 input (ORT's output of the op
  // before it, read through extra graph outputs), against ORT's output of
  // the op, over the first kIsolationRows test rows: differences that one
  // op makes by itself, before later layers amplify them. One entry per op;
  // ADD (two inputs) is left out (empty Steps).
  std::vector<Steps> CompareOpsInIsolation(const QuantizedModel& qm, const FeatureMatrix& fm) {
    auto built = worker::exporters::BuildQdqOnnx(qm, {});
    EXPECT_TRUE(built.ok()) << built.status().ToString();
    if (!built.ok()) return {};
    for (const auto& q : qm.ops) {
      // The exporter names op X's QuantizeLinear "X_quantize".
      auto& nodes = built->graph().node();
      auto node = std::find_if(nodes.begin(), nodes.end(),
                               [&](const auto& n) { return n.name() == q.name + "_quantize"; });
      EXPECT_NE(node, nodes.end()) << q.name;
      if (node == nodes.end()) return {};
      onnx::ValueInfoProto* value = built->mutable_graph()->add_output();
      value->set_name(node->output(0));
      // Activations are uint8 in the file: q + 128.
      value->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto_DataType_UINT8);
    }
    const std::string onnx_path = dir_.path() + "/model_i8_ops.onnx";
    const std::string outputs_dir = dir_.path() + "/ops";
    std::filesystem::create_directories(outputs_dir);
    EXPECT_TRUE(worker::exporters::WriteOnnxFile(*built, onnx_path).ok());
    const std::vector<uint64_t> rows = TestRows(fm);
    const size_t n = std::min(rows.size(), kIsolationRows);
    std::string error;
    testing::RunOrtOnFeatures(onnx_path, features_path_,
                              {.max_rows = n, .outputs_dir = outputs_dir}, n,
                              qm.ops.back().op.output_elements, dir_.path(), &error);
    EXPECT_EQ(error, "");
    std::vector<std::vector<int8_t>> ort(qm.ops.size());
    for (size_t i = 0; i < qm.ops.size(); ++i) {
      // Output 0 is "scores"; op i's tensor is output i + 1.
      std::ifstream in(outputs_dir + "/" + std::to_string(i + 1) + ".bin", std::ios::binary);
      for (auto it = std::istreambuf_iterator<char>(in); it != std::istreambuf_iterator<char>();
           ++it) {
        ort[i].push_back(static_cast<int8_t>(static_cast<uint8_t>(*it) - 128));
      }
      EXPECT_EQ(ort[i].size(), n * qm.ops[i].op.output_elements) << qm.ops[i].name;
      if (ort[i].size() != n * qm.ops[i].op.output_elements) return {};
    }

    std::vector<Steps> steps(qm.ops.size());
    std::vector<int8_t> input, out;
    for (size_t op = 0; op < qm.ops.size(); ++op) {
      if (qm.ops[op].op.inputs.size() != 1) continue;
      const int from = qm.ops[op].op.inputs[0];
      // A model of this op alone, reading the tensor it reads in qm.
      QuantizedModel alone;
      alone.input_shape = from < 0 ? qm.input_shape : qm.ops[from].op.output_shape;
      alone.input = from < 0 ? qm.input : qm.ops[from].output;
      alone.ops = {qm.ops[op]};
      alone.ops[0].op.inputs = {-1};
      worker::int8::Interpreter interpreter(alone);
      const size_t in_size = from < 0 ? fm.shape().row_bytes() : qm.ops[from].op.output_elements;
      const size_t out_size = qm.ops[op].op.output_elements;
      out.resize(out_size);
      for (size_t r = 0; r < n; ++r) {
        if (from < 0) {
          Int8Input(fm, rows[r], input);
        } else {
          input.assign(ort[from].begin() + r * in_size, ort[from].begin() + (r + 1) * in_size);
        }
        interpreter.Invoke(input, out);
        for (size_t k = 0; k < out_size; ++k) steps[op].Add(out[k], ort[op][r * out_size + k]);
      }
    }
    size_t worst = 0;
    for (size_t op = 0; op < steps.size(); ++op) {
      if (steps[op].outputs > 0 &&
          (steps[worst].outputs == 0 || steps[op].exact_share() < steps[worst].exact_share())) {
        worst = op;
      }
    }
    std::printf("  %s, each op on ORT's input: least exact op %s, %.3f %% exact, max %d steps\n",
                qm.architecture.c_str(), qm.ops[worst].name.c_str(),
                100.0 * steps[worst].exact_share(), steps[worst].max);
    return steps;
  }

  // Every op alone (ADD aside) within one step of ORT, and nearly always equal.
  static void ExpectEachOpAgrees(const QuantizedModel& qm, const std::vector<Steps>& steps) {
    for (size_t op = 0; op < steps.size(); ++op) {
      if (steps[op].outputs == 0) continue;
      EXPECT_LE(steps[op].max, 1) << qm.ops[op].name << " differs from ORT's by itself";
      EXPECT_GE(steps[op].exact_share(), kMinOpExact) << qm.ops[op].name;
    }
  }

  // Quantize `model`, then: every op alone lands within one step of ORT;
  // the scores agree on the top-1 and within a step as the constants say.
  Agreement QuantizeAndCompare(const v1::Model& model) {
    auto fm = FeatureMatrix::Open(features_path_);
    EXPECT_TRUE(fm.ok()) << fm.status().ToString();
    if (!fm.ok()) return {};
    const QuantizedModel qm = Quantize(model, *fm);
    if (qm.ops.empty()) return {};
    EXPECT_EQ(qm.ops.back().op.kind, model::OpKind::kSoftmax) << "scores are read back as int8";
    const std::vector<Steps> steps = CompareOpsInIsolation(qm, *fm);
    EXPECT_EQ(steps.size(), qm.ops.size());
    ExpectEachOpAgrees(qm, steps);
    const Agreement a = CompareScores(qm, *fm);
    EXPECT_GT(a.rows, 0u);
    if (a.rows == 0) return a;
    EXPECT_GE(static_cast<double>(a.top1_agree) / a.rows, kMinTop1Agreement)
        << a.top1_agree << " of " << a.rows << " rows agree";
    EXPECT_GE(a.scores.within_one_share(), kMinWithinOneStep);
    return a;
  }

  testing::TempDir dir_;
  testing::DirTaskContext ctx_{dir_.path() + "/ctx", kThreads};
  v1::TaskSpec spec_;
  std::string features_path_;
  std::string model_blob_;
};


TEST_F(QdqAgreementTest, DefaultNetworkTrainedOnFashionMnist) {
  if (!testing::HasFashionMnist()) GTEST_SKIP() << "no Fashion-MNIST (dataset-fashion-mnist)";
  WriteFeatures(32, true, 6000, 2000);
  v1::LearningBlock learning;
  learning.set_block(v1::LEARNING_KIND_CLASSIFICATION);
  const Agreement a = QuantizeAndCompare(Train(learning, 2));
  EXPECT_GT(static_cast<double>(a.ours_correct) / a.rows, 0.7) << "two epochs learn Fashion-MNIST";
}

// One epoch on 2 500 images (47 % top-1: trained enough for real ranges and
// classes that mean something): about 10 s here, though minutes when other
// jobs share the cores, unless OMP_WAIT_POLICY=PASSIVE stops LibTorch's
// OpenMP threads from spinning.
TEST_F(QdqAgreementTest, MobileNetV2TrainedOnFashionMnist) {
  if (!testing::HasFashionMnist()) GTEST_SKIP() << "no Fashion-MNIST (dataset-fashion-mnist)";
  WriteFeatures(32, false, 2500, 500);
  v1::LearningBlock learning;
  learning.set_block(v1::LEARNING_KIND_TRANSFER);
  learning.set_backbone(v1::BACKBONE_MOBILENET_V2);
  learning.set_alpha(0.35f);
  QuantizeAndCompare(Train(learning, 1, 32));
}

// Max and average pools (with TensorFlow's asymmetric padding), a
// standalone clamp, every kind the trained networks above lack: random
// weights, ranges calibrated on real images. Random weights make the top-1
// a near-tie more often than a trained model does, so only the per-op
// isolation and the step shares are checked.
TEST_F(QdqAgreementTest, EveryLayerKindRandomWeights) {
  if (!testing::HasFashionMnist()) GTEST_SKIP() << "no Fashion-MNIST (dataset-fashion-mnist)";
  WriteFeatures(8, false, 600, 500);
  auto graph = model::LayerGraph::FromModel(testing::EveryLayerKindModel());
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  testing::FillRandomWeights(*graph, 11);
  graph->mutable_model().set_input_normalization("pixels/255");
  auto fm = FeatureMatrix::Open(features_path_);
  ASSERT_TRUE(fm.ok());
  const QuantizedModel qm = Quantize(graph->model(), *fm);
  ASSERT_FALSE(qm.ops.empty());
  const std::vector<Steps> steps = CompareOpsInIsolation(qm, *fm);
  ASSERT_EQ(steps.size(), qm.ops.size());
  ExpectEachOpAgrees(qm, steps);
  const Agreement a = CompareScores(qm, *fm);
  EXPECT_GE(a.scores.within_one_share(), kMinWithinOneStep);
}

// The artifact the quantize-evaluate task writes: ORT's top-1 accuracy on
// it is the task's int8 test accuracy, up to the rows where the two
// runtimes may disagree.
TEST_F(QdqAgreementTest, ArtifactOfTheQuantizeEvaluateTask) {
  if (!testing::HasFashionMnist()) GTEST_SKIP() << "no Fashion-MNIST (dataset-fashion-mnist)";
  WriteFeatures(32, true, 3000, 1000);
  v1::LearningBlock learning;
  learning.set_block(v1::LEARNING_KIND_CLASSIFICATION);
  v1::ConvLayer* conv = learning.add_conv();
  conv->set_filters(8), conv->set_kernel_size(3), conv->set_pool(2);
  learning.add_dense_layers()->set_neurons(16);
  Train(learning, 2);
  v1::TaskSpec spec = spec_;
  (*spec.mutable_inputs())["model"] = model_blob_;
  spec.set_kind(v1::TASK_KIND_QUANTIZE_EVALUATE);
  auto evaluated = worker::evaluation::EvaluateAndExport(spec, ctx_);
  ASSERT_TRUE(evaluated.ok()) << evaluated.status().ToString();
  std::string onnx_path;
  for (const auto& artifact : evaluated->artifacts()) {
    if (artifact.name() == "model_i8.onnx") onnx_path = *ctx_.BlobPath(artifact.sha256());
  }
  ASSERT_FALSE(onnx_path.empty()) << "no model_i8.onnx; results: "
                                  << evaluated->results().ShortDebugString();

  auto fm = FeatureMatrix::Open(features_path_);
  ASSERT_TRUE(fm.ok());
  const std::vector<uint64_t> rows = TestRows(*fm);
  std::string error;
  const std::vector<float> ort = testing::RunOrtOnFeatures(onnx_path, features_path_, {},
                                                           rows.size(), 10, dir_.path(), &error);
  ASSERT_EQ(error, "");
  size_t correct = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const float* p = &ort[i * 10];
    correct += static_cast<uint32_t>(std::max_element(p, p + 10) - p) == fm->info(rows[i]).label;
  }
  const double ort_accuracy = static_cast<double>(correct) / rows.size();
  const double task_accuracy = evaluated->results().int8().test().accuracy();
  std::printf("  task int8 test accuracy %.4f (%s), ORT on its model_i8.onnx %.4f\n", task_accuracy,
              evaluated->results().quantization_method().c_str(), ort_accuracy);
  EXPECT_NEAR(ort_accuracy, task_accuracy, 1 - kMinTop1Agreement);
  EXPECT_GT(ort_accuracy, 0.6);
}

}  // namespace
}  // namespace impulse
