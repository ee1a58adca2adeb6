// The quantizer on hand-made graphs with random weights and hand-set
// ranges: BatchNorm folding (float equivalence), per-channel weight scales,
// bias scale, multipliers, clamps, fixed parameters, refusals.
#include "worker/int8/quantizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "tests/support/model_fixtures.h"

namespace impulse::worker::int8 {
namespace {

using model::OpKind;
using ::testing::HasSubstr;

std::vector<float> Weight(const model::LayerGraph& graph, const std::string& name) {
  const v1::Tensor* t = graph.FindWeight(name);
  std::vector<float> values(t->data().size() / sizeof(float));
  std::memcpy(values.data(), t->data().data(), t->data().size());
  return values;
}

void SetWeight(model::LayerGraph& graph, const std::string& name, const std::vector<float>& v) {
  for (v1::Tensor& t : *graph.mutable_model().mutable_weights()) {
    if (t.name() == name) t.set_data(v.data(), v.size() * sizeof(float));
  }
}

model::LayerGraph EveryKind() {
  auto graph = model::LayerGraph::FromModel(testing::EveryLayerKindModel()).value();
  testing::FillRandomWeights(graph, 9);
  return graph;
}

// Plausible ranges: ReLU6 outputs [0, 6], the rest [-3, 4].
std::vector<ActivationRange> HandRanges(const model::LayerGraph& graph) {
  std::vector<ActivationRange> ranges(graph.size(), {-3, 4});
  for (int i = 0; i < graph.size(); ++i) {
    const auto kind = graph.layer(i).kind();
    if (kind == v1::LAYER_KIND_RELU6) ranges[i] = {0, 6};
    if (kind == v1::LAYER_KIND_RELU) ranges[i] = {0, 5};
  }
  return ranges;
}

QuantizedModel QuantizeOk(const model::LayerGraph& graph, const std::vector<ActivationRange>& r) {
  auto q = Quantize(graph, r, {});
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  return std::move(q).value();
}

double Real(const FixedPointMultiplier& m) { return m.multiplier * std::ldexp(1.0, m.shift - 31); }

TEST(QuantizeMultiplierTest, RepresentsTheRealWithin2ToTheMinus30Relative) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 2000; ++i) {
    const double real = std::exp(std::uniform_real_distribution<double>(-20, 8)(rng));
    const FixedPointMultiplier m = QuantizeMultiplier(real);
    EXPECT_GE(m.multiplier, 1 << 30) << real;
    EXPECT_NEAR(Real(m) / real, 1.0, std::ldexp(1.0, -30)) << real;
  }
  EXPECT_EQ(QuantizeMultiplier(1.0).multiplier, 1 << 30);
  EXPECT_EQ(QuantizeMultiplier(1.0).shift, 1);
  EXPECT_EQ(QuantizeMultiplier(0.0).multiplier, 0);
  EXPECT_EQ(QuantizeMultiplier(1e-12).multiplier, 0);  // below 2^-32: flushed to 0
  EXPECT_EQ(QuantizeMultiplier(1e-12).shift, 0);
  // Rounding up to 1.0 moves to the next power of two.
  const FixedPointMultiplier almost_one = QuantizeMultiplier(1.0 - 1e-12);
  EXPECT_EQ(almost_one.multiplier, 1 << 30);
  EXPECT_EQ(almost_one.shift, 1);
}

TEST(QuantizeTest, FoldedBatchNormMatchesConvThenBatchNormInFloat) {
  const model::LayerGraph graph = EveryKind();
  const QuantizedModel q = QuantizeOk(graph, HandRanges(graph));
  const QuantizedOp& conv = q.ops[0];  // conv1 + conv1_bn + ReLU6
  ASSERT_EQ(conv.op.kind, OpKind::kConv2D);
  ASSERT_EQ(conv.name, "conv1");
  ASSERT_EQ(conv.weight_scales.size(), 4u);

  const auto w = Weight(graph, "conv1.weight"), b = Weight(graph, "conv1.bias");
  const auto gamma = Weight(graph, "conv1_bn.weight"), beta = Weight(graph, "conv1_bn.bias");
  const auto mean = Weight(graph, "conv1_bn.running_mean");
  const auto var = Weight(graph, "conv1_bn.running_var");
  std::mt19937 rng(4);
  std::vector<double> x(3 * 8 * 8);
  for (double& v : x) v = (rng() % 256) / 255.0;
  // 3x3, padding 1: output pixel (c, y, x) in float, BN after, and with the
  // dequantized folded weights and bias.
  const double input_scale = 1.0 / 255;
  for (int c = 0; c < 4; ++c) {
    const double s_w = conv.weight_scales[c];
    // 27 products each off by at most half a weight step (inputs <= 1),
    // plus half a bias step.
    const double bound = 27 * s_w / 2 + input_scale * s_w / 2;
    for (int oy = 0; oy < 8; ++oy) {
      for (int ox = 0; ox < 8; ++ox) {
        double raw = b[c], folded = conv.bias[c] * input_scale * s_w;
        for (int i = 0; i < 3; ++i) {
          for (int ky = 0; ky < 3; ++ky) {
            for (int kx = 0; kx < 3; ++kx) {
              const int iy = oy + ky - 1, ix = ox + kx - 1;
              if (iy < 0 || iy >= 8 || ix < 0 || ix >= 8) continue;
              const size_t k = ((c * 3 + i) * 3 + ky) * 3 + kx;
              raw += w[k] * x[(i * 8 + iy) * 8 + ix];
              folded += conv.weights[k] * s_w * x[(i * 8 + iy) * 8 + ix];
            }
          }
        }
        const double bn = (raw - mean[c]) / std::sqrt(var[c] + 1e-3) * gamma[c] + beta[c];
        ASSERT_NEAR(folded, bn, bound) << "channel " << c << " at " << oy << "," << ox;
      }
    }
  }
}

TEST(QuantizeTest, PerChannelScalesBiasAndMultipliers) {
  const model::LayerGraph graph = EveryKind();
  const QuantizedModel q = QuantizeOk(graph, HandRanges(graph));
  EXPECT_EQ(q.input.scale, 1.0f / 255);
  EXPECT_EQ(q.input.zero_point, -128);
  EXPECT_EQ(q.input_shape, (std::vector<uint32_t>{3, 8, 8}));
  EXPECT_EQ(q.method, "minmax");
  EXPECT_EQ(q.labels, (std::vector<std::string>{"cat", "dog", "ému"}));
  for (const QuantizedOp& op : q.ops) {
    if (op.weights.empty()) continue;
    const float input_scale =
        op.op.inputs[0] < 0 ? q.input.scale : q.ops[op.op.inputs[0]].output.scale;
    const bool dense = op.op.kind == OpKind::kDense;
    ASSERT_EQ(op.weight_scales.size(), dense ? 1u : op.bias.size()) << op.name;
    ASSERT_EQ(op.output_multipliers.size(), op.weight_scales.size()) << op.name;
    const size_t per_scale = op.weights.size() / op.weight_scales.size();
    for (size_t g = 0; g < op.weight_scales.size(); ++g) {
      // The largest weight of each channel (of the tensor, for dense) is +-127.
      int max_q = 0;
      for (size_t k = 0; k < per_scale; ++k)
        max_q = std::max(max_q, std::abs(int{op.weights[g * per_scale + k]}));
      EXPECT_EQ(max_q, 127) << op.name << " channel " << g;
      const double real = static_cast<double>(input_scale) * op.weight_scales[g] / op.output.scale;
      EXPECT_NEAR(Real(op.output_multipliers[g]) / real, 1.0, 1e-9) << op.name;
    }
    if (op.name == "pw") {  // no batch norm, no bias: bias 0
      for (int32_t bias : op.bias) EXPECT_EQ(bias, 0);
    }
    if (op.name == "predictions") {  // bias at input scale x weight scale
      const auto b = Weight(graph, "predictions.bias");
      for (size_t c = 0; c < b.size(); ++c) {
        EXPECT_EQ(op.bias[c],
                  std::lround(b[c] / (static_cast<double>(input_scale) * op.weight_scales[0])));
      }
    }
  }
}

TEST(QuantizeTest, ActivationParametersClampsAndFixedOps) {
  const model::LayerGraph graph = EveryKind();
  std::vector<ActivationRange> ranges = HandRanges(graph);
  ranges[3] = {0, 8};  // conv1_relu: wider than ReLU6's [0, 6], so the clamp bites
  ranges[5] = {0, 0};  // dw_relu: dead on every row
  ranges[7] = {2, 5};  // add: a range that excludes 0 is widened to it
  const QuantizedModel q = QuantizeOk(graph, ranges);
  ASSERT_EQ(q.ops.size(), 9u);  // conv, dw, pw, add, max, avg, gap, dense, softmax
  const QuantizedOp& conv = q.ops[0];
  EXPECT_FLOAT_EQ(conv.output.scale, 8.0f / 255);
  EXPECT_EQ(conv.output.zero_point, -128);
  EXPECT_EQ(conv.activation_min, -128);
  EXPECT_EQ(conv.activation_max, -128 + static_cast<int>(std::round(6 / (8.0 / 255))));
  const QuantizedOp& dw = q.ops[1];  // ReLU: clamp at the zero point, no upper bound
  EXPECT_FLOAT_EQ(dw.output.scale, 1.0f / 255);
  EXPECT_EQ(dw.activation_min, dw.output.zero_point);
  EXPECT_EQ(dw.activation_max, 127);
  const QuantizedOp& add = q.ops[3];
  ASSERT_EQ(add.op.kind, OpKind::kAdd);
  EXPECT_FLOAT_EQ(add.output.scale, 5.0f / 255);
  EXPECT_EQ(add.output.zero_point, -128);
  const double twice_max = 2.0 * std::max(q.ops[1].output.scale, q.ops[2].output.scale);
  ASSERT_EQ(add.input_multipliers.size(), 2u);
  EXPECT_NEAR(Real(add.input_multipliers[0]), q.ops[1].output.scale / twice_max, 1e-9);
  EXPECT_NEAR(Real(add.input_multipliers[1]), q.ops[2].output.scale / twice_max, 1e-9);
  EXPECT_NEAR(
      Real(add.add_output_multiplier) / (twice_max / ((1 << kAddLeftShift) * add.output.scale)),
      1.0, 1e-9);
  // Pools keep their input's parameters.
  for (int i : {4, 5, 6}) {
    EXPECT_EQ(q.ops[i].output.scale, q.ops[i - 1].output.scale) << q.ops[i].name;
    EXPECT_EQ(q.ops[i].output.zero_point, q.ops[i - 1].output.zero_point) << q.ops[i].name;
  }
  EXPECT_EQ(q.ops[4].kernel_h, 3u);
  EXPECT_EQ(q.ops[5].stride_w, 2u);
  EXPECT_EQ(q.ops[5].pad_bottom, 1u);
  // An asymmetric range: [-3, 4] -> scale 7/255, real 0 at -128 + 3/scale.
  const QuantizedOp& dense = q.ops[7];
  ASSERT_EQ(dense.op.kind, OpKind::kDense);
  EXPECT_FLOAT_EQ(dense.output.scale, 7.0f / 255);
  EXPECT_EQ(dense.output.zero_point, static_cast<int>(std::round(-128 + 3 / (7.0 / 255))));
}

TEST(QuantizeTest, SoftmaxHasFixedOutputAndAnExpTableOfTheLogitScale) {
  const model::LayerGraph graph = EveryKind();
  const QuantizedModel q = QuantizeOk(graph, HandRanges(graph));
  const QuantizedOp& softmax = q.ops.back();
  ASSERT_EQ(softmax.op.kind, OpKind::kSoftmax);
  EXPECT_EQ(softmax.output.scale, 1.0f / 256);
  EXPECT_EQ(softmax.output.zero_point, -128);
  ASSERT_EQ(softmax.exp_table.size(), 256u);
  const double logit_scale = q.ops[q.ops.size() - 2].output.scale;
  EXPECT_EQ(softmax.exp_table[0], 65536u);
  EXPECT_EQ(softmax.exp_table[10], std::lround(65536 * std::exp(-10 * logit_scale)));
  EXPECT_EQ(q.buffers.size(), q.ops.size() - 1);
  EXPECT_GT(q.arena.arena_bytes, 0u);
  EXPECT_EQ(q.arena.offsets.size(), q.buffers.size());
}

TEST(QuantizeTest, ZeroChannelsAndTinyRangesStayFinite) {
  model::LayerGraph graph = EveryKind();
  std::vector<float> w = Weight(graph, "pw.weight");
  for (int k = 0; k < 4; ++k) w[k] = 0;  // output channel 0 of the 1x1 conv
  SetWeight(graph, "pw.weight", w);
  std::vector<ActivationRange> ranges = HandRanges(graph);
  ranges[5] = {0, 1e-9f};  // dw_relu: almost dead
  const QuantizedModel q = QuantizeOk(graph, ranges);
  const QuantizedOp& pw = q.ops[2];
  ASSERT_EQ(pw.name, "pw");
  EXPECT_GT(pw.weight_scales[0], 0);
  EXPECT_TRUE(std::isfinite(pw.weight_scales[0]));
  for (int k = 0; k < 4; ++k) EXPECT_EQ(pw.weights[k], 0);
  EXPECT_EQ(pw.bias[0], 0);
  // The depthwise output behind the tiny range: its bias still fits int32.
  for (const QuantizedOp& op : q.ops) {
    for (float s : op.weight_scales) EXPECT_TRUE(std::isfinite(s) && s > 0) << op.name;
    EXPECT_GT(op.output.scale, 0) << op.name;
  }
}

TEST(QuantizeTest, DenseIsPerTensor) {
  auto graph = model::LayerGraph::FromModel(testing::FlatModel()).value();
  testing::FillRandomWeights(graph, 2);
  const QuantizedModel q = QuantizeOk(graph, std::vector<ActivationRange>(graph.size(), {-2, 2}));
  ASSERT_EQ(q.ops.size(), 1u);
  EXPECT_EQ(q.ops[0].weight_scales.size(), 1u);
  EXPECT_EQ(q.ops[0].bias.size(), 2u);
  EXPECT_TRUE(q.buffers.empty());  // the only op writes the caller's output
}

// What the coordinator accepts (it refuses at submit what FusedOps cannot
// run) the quantizer turns into a model the interpreter and the C emitter
// take: every builder's graph, at the widths users pick.
TEST(QuantizeTest, EveryBuiltArchitectureQuantizes) {
  std::vector<model::LayerGraph> graphs;
  v1::LearningBlock learning;
  learning.set_block(v1::LEARNING_KIND_CLASSIFICATION);
  graphs.push_back(model::BuildClassificationGraph(learning, 1, 32, 32, 10).value());
  learning.add_conv()->set_filters(8);
  learning.mutable_conv(0)->set_pool(2);
  learning.mutable_conv(0)->set_dropout(0.2f);
  learning.add_dense_layers()->set_neurons(16);
  graphs.push_back(model::BuildClassificationGraph(learning, 3, 24, 24, 4).value());
  for (float alpha : {0.25f, 1.0f}) {
    graphs.push_back(
        model::BuildMobileNetV1(alpha, 3, 32, 32, 5, {.dense = 16, .dropout = 0.1f}).value());
  }
  for (float alpha : {0.35f, 1.0f}) {
    graphs.push_back(model::BuildMobileNetV2(alpha, 1, 48, 48, 5, {}).value());
  }
  for (model::LayerGraph& graph : graphs) {
    testing::FillRandomWeights(graph, 3);
    auto q = Quantize(graph, HandRanges(graph), {});
    EXPECT_TRUE(q.ok()) << graph.model().architecture() << ": " << q.status().ToString();
  }
}

TEST(QuantizeTest, RefusesBadRangesAndUnsupportedLayers) {
  const model::LayerGraph graph = EveryKind();
  auto short_ranges = Quantize(graph, std::vector<ActivationRange>(3), {});
  EXPECT_EQ(short_ranges.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(short_ranges.status().message(), HasSubstr("ranges"));

  std::vector<ActivationRange> ranges = HandRanges(graph);
  ranges[6] = {NAN, 1};  // pw
  auto nan = Quantize(graph, ranges, {});
  EXPECT_EQ(nan.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(nan.status().message(), HasSubstr("layers[6] (pw)"));

  // A batch norm after a flatten cannot be folded.
  v1::Model m = testing::FlatModel();
  m.mutable_layers()->RemoveLast();
  testing::AddLayer(m, "bn_flat", v1::LAYER_KIND_BATCH_NORM, {1});
  testing::AddLayer(m, "dense", v1::LAYER_KIND_DENSE, {2})->set_filters(2);
  auto bn_graph = model::LayerGraph::FromModel(m);
  ASSERT_TRUE(bn_graph.ok()) << bn_graph.status().ToString();
  testing::FillRandomWeights(*bn_graph, 1);
  auto refused = Quantize(*bn_graph, std::vector<ActivationRange>(bn_graph->size()), {});
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("bn_flat"));
}

}  // namespace
}  // namespace impulse::worker::int8
