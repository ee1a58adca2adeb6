#include "impulse/device/device_estimate.h"

#include <gtest/gtest.h>

#include <map>

#include "impulse/device/device_catalog.h"
#include "impulse/model/arena_planner.h"
#include "tests/support/model_fixtures.h"

namespace impulse::device {
namespace {

using testing::AddLayer;

v1::Layer* Window(v1::Layer* layer, uint32_t kernel, uint32_t stride, uint32_t pad) {
  layer->set_kernel_h(kernel);
  layer->set_kernel_w(kernel);
  layer->set_stride_h(stride);
  layer->set_stride_w(stride);
  layer->set_pad_top(pad);
  layer->set_pad_bottom(pad);
  layer->set_pad_left(pad);
  layer->set_pad_right(pad);
  return layer;
}

// [2,8,8] -> conv 3x3 (4) + relu -> depthwise 3x3 -> conv 1x1 (4) -> max
// pool 2x2 -> flatten -> dense 3 -> softmax. MACs: 4608 k x k, 2304
// depthwise, 1024 pointwise, 192 dense.
model::LayerGraph HandGraph() {
  v1::Model m;
  m.set_format_version(1);
  m.set_architecture("hand");
  m.add_input_shape(2);
  m.add_input_shape(8);
  m.add_input_shape(8);
  m.set_input_normalization("pixels/255");
  for (const char* label : {"a", "b", "c"}) m.add_labels(label);
  AddLayer(m, "input", v1::LAYER_KIND_INPUT, {});
  v1::Layer* conv = Window(AddLayer(m, "conv", v1::LAYER_KIND_CONV2D, {0}), 3, 1, 1);  // 1
  conv->set_filters(4);
  conv->set_groups(1);
  conv->set_bias(true);
  AddLayer(m, "relu", v1::LAYER_KIND_RELU, {1});  // 2
  v1::Layer* dw = Window(AddLayer(m, "dw", v1::LAYER_KIND_DEPTHWISE_CONV2D, {2}), 3, 1, 1);
  dw->set_filters(4);
  dw->set_groups(4);                                                               // 3
  v1::Layer* pw = Window(AddLayer(m, "pw", v1::LAYER_KIND_CONV2D, {3}), 1, 1, 0);  // 4
  pw->set_filters(4);
  pw->set_groups(1);
  Window(AddLayer(m, "pool", v1::LAYER_KIND_MAX_POOL, {4}), 2, 2, 0);  // 5
  AddLayer(m, "flat", v1::LAYER_KIND_FLATTEN, {5});                    // 6
  v1::Layer* dense = AddLayer(m, "dense", v1::LAYER_KIND_DENSE, {6});  // 7
  dense->set_filters(3);
  dense->set_bias(true);
  AddLayer(m, "softmax", v1::LAYER_KIND_SOFTMAX, {7});  // 8
  auto graph = model::LayerGraph::FromModel(m);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  return std::move(graph).value();
}

v1::Device TestDevice() {
  v1::Device device;
  device.set_id("test-board");
  device.set_clock_hz(1'000'000);
  device.set_overhead_ms(1.0);
  v1::CycleCosts* int8 = device.mutable_int8();
  int8->set_conv(2);
  int8->set_depthwise(5);
  int8->set_pointwise(7);
  int8->set_dense(3);
  int8->set_elementwise(0.5);
  *device.mutable_float32() = *int8;
  device.mutable_float32()->set_conv(4);
  return device;
}

TEST(DeviceEstimateTest, LatencyIsMacsTimesCyclesPerKindOverClockPlusOverhead) {
  const model::LayerGraph graph = HandGraph();
  auto estimate = EstimateDevice(graph, TestDevice(), Precision::kInt8);
  ASSERT_TRUE(estimate.ok()) << estimate.status().ToString();
  // 4608*2 + 2304*5 + 1024*7 + 192*3 MAC cycles, 64 pooled outputs x 4 window
  // cells and 3 softmax outputs at 0.5: 28609.5 cycles at 1 MHz, + 1 ms.
  EXPECT_NEAR(estimate->latency_ms, 29.6095, 1e-9);
  ASSERT_EQ(estimate->layers.size(), 6u);
  EXPECT_EQ(estimate->layers[0].name(), "conv");
  EXPECT_EQ(estimate->layers[0].kind(), "conv2d");
  EXPECT_EQ(estimate->layers[0].macs(), 4608u);
  EXPECT_NEAR(estimate->layers[0].latency_ms(), 9.216, 1e-9);
  EXPECT_NEAR(estimate->layers[1].latency_ms(), 11.52, 1e-9);  // depthwise
  EXPECT_NEAR(estimate->layers[2].latency_ms(), 7.168, 1e-9);  // pointwise
  EXPECT_NEAR(estimate->layers[3].latency_ms(), 0.128, 1e-9);  // pool
  EXPECT_NEAR(estimate->layers[4].latency_ms(), 0.576, 1e-9);  // dense

  auto f32 = EstimateDevice(graph, TestDevice(), Precision::kFloat32);
  ASSERT_TRUE(f32.ok());
  EXPECT_NEAR(f32->latency_ms, 29.6095 + 4608 * 2 / 1e3, 1e-9);  // conv at 4 cycles
}

TEST(DeviceEstimateTest, RamIsTheArenaPlusInputPlusOutputExactly) {
  const model::LayerGraph graph = HandGraph();
  auto ops = model::FusedOps::FromGraph(graph);
  ASSERT_TRUE(ops.ok());
  auto int8 = EstimateDevice(graph, TestDevice(), Precision::kInt8);
  ASSERT_TRUE(int8.ok());
  // Outputs 256, 256, 256, 64, 3 bytes (the softmax's is the caller's):
  // the two live 256-byte tensors of each step make the arena 512.
  EXPECT_EQ(int8->arena_bytes, 512u);
  EXPECT_EQ(int8->arena_bytes, model::PlanArena(model::OpOutputBuffers(*ops, 1)).arena_bytes);
  EXPECT_EQ(int8->input_bytes, 128u);
  EXPECT_EQ(int8->output_bytes, 3u);
  EXPECT_EQ(int8->ram_bytes, 512u + 128 + 3);

  auto f32 = EstimateDevice(graph, TestDevice(), Precision::kFloat32);
  ASSERT_TRUE(f32.ok());
  EXPECT_EQ(f32->arena_bytes, model::PlanArena(model::OpOutputBuffers(*ops, 4)).arena_bytes);
  EXPECT_EQ(f32->ram_bytes, 2048u + 512 + 12);
}

TEST(DeviceEstimateTest, FlashIsParametersPlusCode) {
  const model::LayerGraph graph = HandGraph();
  auto int8 = EstimateDevice(graph, TestDevice(), Precision::kInt8);
  ASSERT_TRUE(int8.ok());
  // conv 72 + 4x4 bias + 4x8 requant; depthwise 36 + 16 + 32; pointwise
  // 16 + 16 + 32; dense 192 + 12 + 8; softmax table 1024.
  EXPECT_EQ(int8->parameter_bytes, 120u + 84 + 64 + 212 + 1024);
  EXPECT_EQ(int8->flash_bytes, int8->parameter_bytes + kCodeBytes);
  auto f32 = EstimateDevice(graph, TestDevice(), Precision::kFloat32);
  ASSERT_TRUE(f32.ok());
  EXPECT_EQ(f32->parameter_bytes, 4u * (76 + 40 + 20 + 195));
  const v1::DeviceFigures figures = int8->Figures("test-board");
  EXPECT_EQ(figures.flash_bytes(), int8->flash_bytes);
  EXPECT_EQ(figures.ram_bytes(), int8->ram_bytes);
  EXPECT_EQ(figures.layers_size(), 6);
  EXPECT_EQ(figures.latency_source(), "estimate: test-board cycle table");
}

TEST(DeviceEstimateTest, EveryBuiltinEstimatesAMobileNet) {
  auto graph = model::BuildMobileNetV2(0.35f, 3, 96, 96, 2, {});
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const DeviceCatalog catalog = DeviceCatalog::Builtin();
  for (const v1::Device& device : catalog.devices()) {
    auto int8 = EstimateDevice(*graph, device, Precision::kInt8);
    auto f32 = EstimateDevice(*graph, device, Precision::kFloat32);
    ASSERT_TRUE(int8.ok() && f32.ok()) << device.id();
    EXPECT_GT(int8->latency_ms, 0) << device.id();
    // On the host, int8 is the worker's plain-C interpreter against oneDNN.
    if (device.id() != "host") EXPECT_LE(int8->latency_ms, f32->latency_ms) << device.id();
    EXPECT_LT(int8->ram_bytes, f32->ram_bytes) << device.id();
    EXPECT_LT(int8->flash_bytes, f32->flash_bytes) << device.id();
  }
  v1::Device stopped = TestDevice();
  stopped.set_clock_hz(0);
  EXPECT_EQ(EstimateDevice(*graph, stopped, Precision::kInt8).status().code(),
            StatusCode::kInvalidArgument);
}

// docs/DEVICES.md fits the Cortex-M figures to MLPerf Tiny's visual wake
// words network, MobileNetV1 alpha 0.25 on 96x96x3, 2 classes, using these
// per-kind MAC counts.
TEST(DeviceEstimateTest, TheDocumentedMobileNetV1MacSplit) {
  auto graph = model::BuildMobileNetV1(0.25f, 3, 96, 96, 2, {});
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  std::map<std::string, uint64_t> macs;
  auto estimate = EstimateDevice(*graph, TestDevice(), Precision::kInt8);
  ASSERT_TRUE(estimate.ok());
  for (const v1::LayerLatency& layer : estimate->layers) {
    const bool pointwise = layer.name().rfind("conv_pw_", 0) == 0;  // Keras' names
    macs[pointwise ? "pointwise" : layer.kind()] += layer.macs();
  }
  EXPECT_EQ(macs["conv2d"], 497'664u);
  EXPECT_EQ(macs["depthwise_conv2d"], 798'336u);
  EXPECT_EQ(macs["pointwise"], 6'193'152u);
  EXPECT_EQ(macs["dense"], 512u);
}

}  // namespace
}  // namespace impulse::device
