#include "worker/device/device_figures.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>

#include "impulse/device/device_catalog.h"
#include "impulse/device/device_estimate.h"
#include "impulse/impulse_spec.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/temp_dir.h"
#include "worker/export/c_emitter.h"
#include "worker/int8/quantizer.h"

namespace impulse::worker::device {
namespace {

using impulse::device::DeviceCatalog;
using impulse::device::EstimateDevice;
using impulse::device::Precision;

bool OnPath(const char* program) {
  return std::system((std::string("command -v ") + program + " >/dev/null 2>&1").c_str()) == 0;
}

// The example impulse's network (examples/fashion-mnist.yaml: the default
// CNN on 32x32 grayscale, 10 classes) with random weights, and its int8
// version from made-up ranges: enough to time and size, not to classify.
struct ExampleModel {
  model::LayerGraph graph;
  int8::QuantizedModel int8;
};

ExampleModel MakeExample() {
  auto impulse = LoadImpulseFile("examples/fashion-mnist.yaml");
  EXPECT_TRUE(impulse.ok()) << impulse.status().ToString();
  auto graph = model::BuildGraph(*impulse, 10);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  for (int i = 0; i < 10; ++i) graph->mutable_model().add_labels("c" + std::to_string(i));
  testing::FillRandomWeights(*graph, 7);
  std::vector<int8::ActivationRange> ranges(graph->size(), {-4.0f, 4.0f});
  auto quantized = int8::Quantize(*graph, ranges, {});
  EXPECT_TRUE(quantized.ok()) << quantized.status().ToString();
  return {std::move(graph).value(), std::move(quantized).value()};
}

TEST(DeviceFiguresTest, CompiledFlashIsTextPlusDataOfTheObject) {
  testing::TempDir dir;
  const std::string source = dir.path() + "/model.c";
  std::ofstream(source) << "#include <stdint.h>\nconst int8_t w[1000] = {1};\n"
                           "int32_t f(int32_t x) { return x * w[x & 511]; }\n";
  std::string compiler;
  auto host = CompiledFlashBytes(source, "", 60, &compiler);
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  EXPECT_EQ(compiler, "gcc -Os -std=c99");
  EXPECT_GE(*host, 1000u);  // the table is read-only data (text)
  EXPECT_LT(*host, 2000u);

  if (OnPath("arm-none-eabi-gcc") && OnPath("arm-none-eabi-size")) {
    auto arm = CompiledFlashBytes(source, "cortex-m4", 60, &compiler);
    ASSERT_TRUE(arm.ok()) << arm.status().ToString();
    EXPECT_EQ(compiler, "arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os -std=c99 -ffreestanding");
    EXPECT_GE(*arm, 1000u);
  } else {
    std::printf("arm-none-eabi-gcc not on PATH: the Cortex-M compile is not checked\n");
  }

  std::ofstream(source) << "int f( {\n";
  auto broken = CompiledFlashBytes(source, "", 60, &compiler);
  EXPECT_EQ(broken.status().code(), StatusCode::kInternal);
  EXPECT_NE(broken.status().message().find("error"), std::string::npos);
}

TEST(DeviceFiguresTest, HostLatencyIsMeasuredOtherTargetsEstimatedRamIsTheArena) {
  const ExampleModel example = MakeExample();
  const DeviceCatalog catalog = DeviceCatalog::Builtin();
  testing::TempDir dir;  // holds no model.c: flash falls back to the estimate

  auto host = MeasureDeviceFigures(example.graph, example.int8, dir.path(), *catalog.Find("host"),
                                   {.repeats = 5});
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  EXPECT_GT(host->int8.latency_ms(), 0);
  EXPECT_GT(host->float32.latency_ms(), 0);
  EXPECT_EQ(host->int8.latency_source().rfind("measured: median of 5", 0), 0u);
  ASSERT_EQ(host->warnings.size(), 1u);
  EXPECT_NE(host->warnings[0].find("could not be measured"), std::string::npos);

  // The int8 RAM is the QuantizedModel's arena + input + output, and the
  // estimate computes the same plan from the graph alone.
  auto estimate = EstimateDevice(example.graph, *catalog.Find("host"), Precision::kInt8);
  ASSERT_TRUE(estimate.ok());
  EXPECT_EQ(example.int8.arena.arena_bytes, estimate->arena_bytes);
  EXPECT_EQ(host->int8.ram_bytes(), estimate->ram_bytes);
  EXPECT_EQ(host->int8.ram_bytes(), example.int8.arena.arena_bytes + 32 * 32 + 10);

  const v1::Device& m4 = *catalog.Find("cortex-m4f-80mhz");
  auto mcu = MeasureDeviceFigures(example.graph, example.int8, dir.path(), m4, {.repeats = 1});
  ASSERT_TRUE(mcu.ok());
  auto m4_estimate = EstimateDevice(example.graph, m4, Precision::kInt8);
  EXPECT_DOUBLE_EQ(mcu->int8.latency_ms(), m4_estimate->latency_ms);
  EXPECT_EQ(mcu->int8.latency_source(), "estimate: cortex-m4f-80mhz cycle table");
  EXPECT_EQ(mcu->int8.layers_size(), static_cast<int>(m4_estimate->layers.size()));
  std::printf(
      "example model (%lu MACs): host int8 %.3f ms, float32 %.3f ms; cortex-m4f-80mhz "
      "int8 %.2f ms, RAM %lu B\n",
      static_cast<unsigned long>(example.graph.TotalCost().macs), host->int8.latency_ms(),
      host->float32.latency_ms(), mcu->int8.latency_ms(),
      static_cast<unsigned long>(mcu->int8.ram_bytes()));
}

// The example's figures on every built-in target (docs/DEVICES.md shows the
// table); faster clocks of one core give proportionally lower latency.
TEST(DeviceFiguresTest, ExampleOnEveryBuiltinDevice) {
  const ExampleModel example = MakeExample();
  std::map<std::string, double> int8_ms;
  const DeviceCatalog catalog = DeviceCatalog::Builtin();
  for (const v1::Device& device : catalog.devices()) {
    auto f32 = EstimateDevice(example.graph, device, Precision::kFloat32);
    auto i8 = EstimateDevice(example.graph, device, Precision::kInt8);
    ASSERT_TRUE(f32.ok() && i8.ok());
    int8_ms[device.id()] = i8->latency_ms;
    std::printf(
        "%-18s float32 %9.3f ms %8lu B RAM %8lu B flash | int8 %9.3f ms %8lu B RAM %8lu B "
        "flash\n",
        device.id().c_str(), f32->latency_ms, static_cast<unsigned long>(f32->ram_bytes),
        static_cast<unsigned long>(f32->flash_bytes), i8->latency_ms,
        static_cast<unsigned long>(i8->ram_bytes), static_cast<unsigned long>(i8->flash_bytes));
  }
  EXPECT_NEAR(int8_ms["cortex-m7-216mhz"] / int8_ms["cortex-m7-480mhz"], 480.0 / 216, 1e-9);
  EXPECT_GT(int8_ms["cortex-m4f-80mhz"], int8_ms["cortex-m7-216mhz"]);
}

// The emitted C library compiles, its measured flash holds at least its
// constants, and the arena the RAM figure counts is model.h's.
TEST(DeviceFiguresTest, MeasuredFlashOfTheEmittedLibraryAndItsArena) {
  const ExampleModel example = MakeExample();
  testing::TempDir dir;
  ASSERT_TRUE(exporters::WriteCLibrary(example.int8, dir.path()).ok());
  std::ifstream header(dir.path() + "/model.h");
  std::string line;
  uint64_t arena_in_header = 0;
  while (std::getline(header, line)) {
    const std::string key = "#define IMPULSE_MODEL_ARENA_BYTES ";
    if (line.rfind(key, 0) == 0) arena_in_header = std::stoull(line.substr(key.size()));
  }
  auto estimate = EstimateDevice(example.graph, *DeviceCatalog::Builtin().Find("cortex-m4f-80mhz"),
                                 Precision::kInt8);
  ASSERT_TRUE(estimate.ok());
  EXPECT_EQ(arena_in_header, estimate->arena_bytes);

  const DeviceCatalog catalog = DeviceCatalog::Builtin();
  for (const char* id : {"host", "cortex-m4f-80mhz"}) {
    auto report = MeasureDeviceFigures(example.graph, example.int8, dir.path(), *catalog.Find(id),
                                       {.repeats = 1});
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_TRUE(report->warnings.empty()) << report->warnings[0];
    EXPECT_EQ(report->int8.flash_source().rfind("measured: ", 0), 0u);
    uint64_t weight_bytes = 0;
    for (const auto& op : example.int8.ops) weight_bytes += op.weights.size();
    EXPECT_GT(report->int8.flash_bytes(), weight_bytes);  // the weights are in the object
    EXPECT_EQ(report->int8.ram_bytes(), estimate->ram_bytes);
    std::printf("%s: int8 flash %lu B (%s), float32 flash %lu B; estimate %lu B\n", id,
                static_cast<unsigned long>(report->int8.flash_bytes()),
                report->int8.flash_source().c_str(),
                static_cast<unsigned long>(report->float32.flash_bytes()),
                static_cast<unsigned long>(estimate->flash_bytes));
  }
}

TEST(DeviceFiguresTest, TaskDeviceIsTheSpecsElseTheBuiltinCatalogs) {
  v1::TaskSpec spec;
  spec.mutable_impulse()->set_target("jetson-nano");
  EXPECT_EQ(TaskDevice(spec)->id(), "jetson-nano");
  spec.mutable_impulse()->clear_target();
  EXPECT_EQ(TaskDevice(spec)->id(), "cortex-m4f-80mhz");
  spec.mutable_impulse()->set_target("my-board");
  EXPECT_EQ(TaskDevice(spec).status().code(), StatusCode::kInvalidArgument);
  spec.mutable_device()->set_id("my-board");
  EXPECT_EQ(TaskDevice(spec)->id(), "my-board");
}

}  // namespace
}  // namespace impulse::worker::device
