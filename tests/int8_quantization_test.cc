// Calibrate on training rows, quantize, run the integer interpreter: the
// dequantized int8 logits stay close to the float model's on fixture
// models with every layer kind, and on small MobileNets with random weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "impulse/model/fused_ops.h"
#include "impulse/model/layer_graph.h"
#include "tests/support/feature_fixtures.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/temp_dir.h"
#include "worker/int8/interpreter.h"
#include "worker/int8/quantizer.h"
#include "worker/training/calibration.h"
#include "worker/training/inference.h"

namespace impulse::worker::int8 {
namespace {

struct Agreement {
  double max_error = 0;   // largest |int8 - float| logit, in units of the logits' int8 range
  double mean_error = 0;  // mean of the same
  double max_probability_error = 0;  // largest |int8 softmax - float softmax|
  double argmax_agree = 0;           // fraction of rows with the same top class
};

// Bounds per model, measured with margin (random weights, random pixels):
// the error grows with depth, about 0.5 dB of SQNR per op of a random
// MobileNetV2 whose ReLU6s saturate.
struct Bounds {
  double max_error, mean_error, max_probability_error;
};

void ExpectWithin(const Agreement& a, const Bounds& b) {
  EXPECT_LE(a.max_error, b.max_error);
  EXPECT_LE(a.mean_error, b.mean_error);
  EXPECT_LE(a.max_probability_error, b.max_probability_error);
  EXPECT_GE(a.argmax_agree, 0.9);
}

// Calibrates on 40 training rows, then compares logits on 40 others.
Agreement Compare(model::LayerGraph graph, uint32_t c, uint32_t h, uint32_t w) {
  testing::TempDir dir;
  const uint32_t classes = graph.classes();
  auto fm = testing::WriteRandomFeatures(dir.path() + "/f.bin",
                                         std::vector<int>(classes, 80 / classes), {}, c, h, w);
  while (graph.model().labels_size() < static_cast<int>(classes)) {
    graph.mutable_model().add_labels("l" + std::to_string(graph.model().labels_size()));
  }
  graph.mutable_model().set_input_normalization("pixels/255");
  testing::FillRandomWeights(graph, 17);
  std::vector<uint64_t> calibration, evaluation;
  for (uint64_t r = 0; r < fm.rows(); ++r) (r % 2 ? evaluation : calibration).push_back(r);
  auto stats = training::CollectActivationStats(graph.model(), fm, calibration, 2);
  EXPECT_TRUE(stats.ok()) << stats.status().ToString();
  auto q = Quantize(graph, training::Ranges(*stats, 100), {});
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  auto logits = training::PredictLogits(graph.model(), fm, evaluation, 2);
  EXPECT_TRUE(logits.ok()) << logits.status().ToString();
  const int logits_op = model::FusedOps::FromGraph(graph)->logits_op();
  const QuantParams p = q->ops[logits_op].output;
  const double range = p.scale * 255.0;

  Interpreter interpreter(*q);
  Agreement a;
  std::vector<int8_t> input(fm.shape().row_bytes()), output(classes);
  for (size_t r = 0; r < evaluation.size(); ++r) {
    const uint8_t* px = fm.pixels(evaluation[r]);
    for (size_t k = 0; k < input.size(); ++k) input[k] = static_cast<int8_t>(px[k] - 128);
    std::vector<float> dequantized;
    interpreter.Invoke(input, output, [&](int op, std::span<const int8_t> values) {
      if (op != logits_op) return;
      for (int8_t v : values) dequantized.push_back(p.scale * (v - p.zero_point));
    });
    const auto& f = (*logits)[r];
    const float top = *std::max_element(f.begin(), f.end());
    double sum = 0;
    for (float v : f) sum += std::exp(v - top);
    for (size_t j = 0; j < classes; ++j) {
      const double probability = std::exp(f[j] - top) / sum;
      a.max_probability_error =
          std::max(a.max_probability_error, std::abs((output[j] + 128) / 256.0 - probability));
      const double error = std::abs(dequantized[j] - f[j]) / range;
      a.max_error = std::max(a.max_error, error);
      a.mean_error += error / (classes * evaluation.size());
    }
    const auto float_top = std::max_element(f.begin(), f.end()) - f.begin();
    const auto int8_top =
        std::max_element(dequantized.begin(), dequantized.end()) - dequantized.begin();
    a.argmax_agree += (float_top == int8_top) / static_cast<double>(evaluation.size());
  }
  return a;
}

TEST(Int8QuantizationTest, EveryLayerKind) {
  auto graph = model::LayerGraph::FromModel(testing::EveryLayerKindModel()).value();
  ExpectWithin(Compare(std::move(graph), 3, 8, 8), {0.03, 0.01, 0.03});
}

TEST(Int8QuantizationTest, MobileNetV1) {
  auto graph = model::BuildMobileNetV1(0.25f, 3, 32, 32, 4, {.dense = 8}).value();
  ExpectWithin(Compare(std::move(graph), 3, 32, 32), {0.06, 0.015, 0.03});
}

TEST(Int8QuantizationTest, MobileNetV2) {
  auto graph = model::BuildMobileNetV2(0.35f, 3, 32, 32, 4, {}).value();
  ExpectWithin(Compare(std::move(graph), 3, 32, 32), {0.25, 0.08, 0.25});
}

TEST(Int8QuantizationTest, DefaultNetwork) {
  v1::LearningBlock learning;
  learning.set_block(v1::LEARNING_KIND_CLASSIFICATION);
  auto graph = model::BuildClassificationGraph(learning, 1, 32, 32, 4).value();
  ExpectWithin(Compare(std::move(graph), 1, 32, 32), {0.05, 0.01, 0.02});
}

}  // namespace
}  // namespace impulse::worker::int8
