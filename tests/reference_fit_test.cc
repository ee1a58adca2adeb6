#include "impulse/estimate/reference_fit.h"

#include <gtest/gtest.h>

#include "impulse/impulse_spec.h"

namespace impulse::estimate {
namespace {

PassWork WorkOfYaml(const char* yaml) {
  auto impulse = ParseImpulseYaml(yaml);
  if (!impulse.ok()) {
    ADD_FAILURE() << impulse.status().ToString();
    return {};
  }
  auto graph = model::BuildGraph(WithDefaults(*impulse), 10);
  if (!graph.ok()) {
    ADD_FAILURE() << graph.status().ToString();
    return {};
  }
  return WorkOf(*graph);
}

// The calibration's references: a CNN, MobileNetV2 at two batch sizes and
// two input sizes, MobileNetV1.
std::vector<TimedReference> References(const PassCosts& truth, bool train) {
  const PassWork cnn = WorkOfYaml(R"(
name: r
input: { width: 48, height: 48 }
processing: { block: image, color: grayscale }
learning: { block: classification })");
  const PassWork v2_small = WorkOfYaml(R"(
name: r
input: { width: 32, height: 32 }
processing: { block: image, color: grayscale }
learning: { block: transfer, backbone: mobilenet_v2, alpha: 0.35 })");
  const PassWork v2_large = WorkOfYaml(R"(
name: r
input: { width: 64, height: 64 }
processing: { block: image, color: grayscale }
learning: { block: transfer, backbone: mobilenet_v2, alpha: 0.35 })");
  const PassWork v1 = WorkOfYaml(R"(
name: r
input: { width: 48, height: 48 }
processing: { block: image, color: grayscale }
learning: { block: transfer, backbone: mobilenet_v1, alpha: 0.25 })");
  std::vector<TimedReference> refs;
  auto add = [&](const PassWork& work, double rows) {
    refs.push_back({.work = work, .rows = rows, .seconds = BatchSeconds(work, truth, rows, train)});
  };
  if (train) {
    add(cnn, 64), add(v2_small, 16), add(v2_small, 64), add(v2_large, 32), add(v1, 32);
  } else {
    add(cnn, 256), add(v2_small, 256), add(v2_large, 256), add(v1, 256);
  }
  return refs;
}

PassCosts Scaled(PassCosts c, double fixed, double nchw, double mobile) {
  c.set_batch_overhead_s(c.batch_overhead_s() * fixed);
  c.set_layer_overhead_s(c.layer_overhead_s() * fixed);
  c.set_param_s(c.param_s() * fixed);
  for (auto [get, set] :
       {std::pair{&PassCosts::conv_s_per_mac, &PassCosts::set_conv_s_per_mac},
        {&PassCosts::conv_s_per_output, &PassCosts::set_conv_s_per_output},
        {&PassCosts::dense_s_per_mac, &PassCosts::set_dense_s_per_mac},
        {&PassCosts::batch_norm_s_per_element, &PassCosts::set_batch_norm_s_per_element},
        {&PassCosts::pool_s_per_element, &PassCosts::set_pool_s_per_element},
        {&PassCosts::elementwise_s_per_element, &PassCosts::set_elementwise_s_per_element}}) {
    (c.*set)((c.*get)() * nchw);
  }
  for (auto [get, set] :
       {std::pair{&PassCosts::depthwise_s_per_mac, &PassCosts::set_depthwise_s_per_mac},
        {&PassCosts::depthwise_s_per_channel, &PassCosts::set_depthwise_s_per_channel},
        {&PassCosts::depthwise_1x1_s_per_channel, &PassCosts::set_depthwise_1x1_s_per_channel},
        {&PassCosts::pointwise_s_per_mac, &PassCosts::set_pointwise_s_per_mac},
        {&PassCosts::pointwise_s_per_output, &PassCosts::set_pointwise_s_per_output}}) {
    (c.*set)((c.*get)() * mobile);
  }
  return c;
}

TEST(ReferenceFitTest, RecoversTheGroupScalesOfTrainingSteps) {
  const PassCosts probes = DefaultCostTable().train();
  const PassCosts truth = Scaled(probes, 2.5, 0.6, 1.7);
  GroupScales scales;
  const PassCosts fitted = FitToReferences(probes, References(truth, true), true, &scales);
  EXPECT_NEAR(scales.fixed, 2.5, 1e-6);
  EXPECT_NEAR(scales.nchw, 0.6, 1e-6);
  EXPECT_NEAR(scales.mobile, 1.7, 1e-6);
  EXPECT_NEAR(fitted.depthwise_s_per_channel(), truth.depthwise_s_per_channel(), 1e-15);
  EXPECT_NEAR(fitted.layer_overhead_s(), truth.layer_overhead_s(), 1e-12);
}

// Inference in batches of 256 spends almost nothing per batch: that group
// keeps the probes' prices, the others are fitted.
TEST(ReferenceFitTest, LeavesPerBatchCostsOfInferenceAlone) {
  const PassCosts probes = DefaultCostTable().infer();
  const PassCosts truth = Scaled(probes, 1, 1.4, 0.5);
  GroupScales scales;
  FitToReferences(probes, References(truth, false), false, &scales);
  EXPECT_EQ(scales.fixed, 1);
  EXPECT_NEAR(scales.nchw, 1.4, 1e-6);
  EXPECT_NEAR(scales.mobile, 0.5, 1e-6);
}

TEST(ReferenceFitTest, KeepsScalesWithinBoundsAndNeedsThreeReferences) {
  const PassCosts probes = DefaultCostTable().train();
  std::vector<TimedReference> refs = References(probes, true);
  for (auto& r : refs) r.seconds *= 100;  // a machine busy with something else
  GroupScales scales;
  FitToReferences(probes, refs, true, &scales);
  for (double s : {scales.fixed, scales.nchw, scales.mobile}) {
    EXPECT_GE(s, 1.0 / 8);
    EXPECT_LE(s, 8.0);
  }
  refs.resize(2);
  const PassCosts unchanged = FitToReferences(probes, refs, true, &scales);
  EXPECT_EQ(unchanged.SerializeAsString(), probes.SerializeAsString());
  EXPECT_EQ(scales.fixed, 1);
}

}  // namespace
}  // namespace impulse::estimate
