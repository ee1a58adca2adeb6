#include "impulse/device/device_catalog.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "impulse/impulse_spec.h"
#include "tests/support/temp_dir.h"

namespace impulse::device {
namespace {

TEST(DeviceCatalogTest, BuiltinsAreTheDesignsIdsWithTheirSizes) {
  const DeviceCatalog catalog = DeviceCatalog::Builtin();
  EXPECT_EQ(catalog.ids(),
            (std::vector<std::string>{"cortex-m4f-80mhz", "cortex-m7-216mhz", "cortex-m7-480mhz",
                                      "raspberry-pi-4", "jetson-nano", "host"}));
  const v1::Device& m4 = *catalog.Find("cortex-m4f-80mhz");
  EXPECT_EQ(m4.clock_hz(), 80'000'000u);
  EXPECT_EQ(m4.ram_bytes(), 256u * 1024);
  EXPECT_EQ(m4.flash_bytes(), 1024u * 1024);
  EXPECT_EQ(m4.core(), "cortex-m4");
  EXPECT_EQ(catalog.Find("cortex-m7-480mhz")->core(), "cortex-m7");
  EXPECT_EQ(catalog.Find("raspberry-pi-4")->core(), "");
  for (const v1::Device& device : catalog.devices()) {
    for (const v1::CycleCosts* costs : {&device.int8(), &device.float32()}) {
      EXPECT_GT(costs->conv(), 0) << device.id();
      EXPECT_GT(costs->depthwise(), 0) << device.id();
      EXPECT_GT(costs->pointwise(), 0) << device.id();
      EXPECT_GT(costs->dense(), 0) << device.id();
      EXPECT_GT(costs->elementwise(), 0) << device.id();
    }
    EXPECT_EQ(device.source(), "built-in");
  }
  // The default target is in the catalog.
  EXPECT_NE(catalog.Find(kDefaultTarget), nullptr);
}

TEST(DeviceCatalogTest, UnknownTargetIsRefusedNamingTarget) {
  const DeviceCatalog catalog = DeviceCatalog::Builtin();
  EXPECT_EQ(catalog.Get("arduino-uno").status().message(),
            "target: unknown device 'arduino-uno' (cortex-m4f-80mhz | cortex-m7-216mhz | "
            "cortex-m7-480mhz | raspberry-pi-4 | jetson-nano | host)");
  auto impulse = ParseImpulseYaml(
      "name: x\ninput: {width: 8, height: 8}\n"
      "processing: {block: raw}\ntarget: arduino-uno");
  ASSERT_TRUE(impulse.ok()) << impulse.status().ToString();  // a client cannot know the catalog
  const Status refused = ValidateImpulse(*impulse, catalog.ids());
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.message().rfind("target: unknown device 'arduino-uno'", 0), 0u);
}

TEST(DeviceCatalogTest, FileAddsADeviceWithKSizesAndOverridesABuiltin) {
  DeviceCatalog catalog = DeviceCatalog::Builtin();
  const Status added = catalog.AddYaml(R"(
devices:
  - id: my-board
    base: cortex-m4f-80mhz
    description: my board
    clock_hz: 64000000
    ram_bytes: 96K
    flash_bytes: 512KiB
    int8: {conv: 3.0}
  - id: cortex-m7-216mhz
    ram_bytes: 512K
  - id: npu-board
    core: none
    clock_hz: 1e9
    ram_bytes: 2M
    flash_bytes: 4M
    int8: {conv: 0.1, depthwise: 0.2, pointwise: 0.1, dense: 0.3, elementwise: 0.5}
    float32: {conv: 1, depthwise: 2, pointwise: 1, dense: 3, elementwise: 1}
    overhead_ms: 0.25
)",
                                       "boards.yaml");
  ASSERT_TRUE(added.ok()) << added.ToString();
  const v1::Device& mine = *catalog.Find("my-board");
  EXPECT_EQ(mine.clock_hz(), 64'000'000u);
  EXPECT_EQ(mine.ram_bytes(), 96u * 1024);
  EXPECT_EQ(mine.flash_bytes(), 512u * 1024);
  EXPECT_EQ(mine.int8().conv(), 3.0);
  // The rest comes from the base.
  const v1::Device& m4 = *catalog.Find("cortex-m4f-80mhz");
  EXPECT_EQ(mine.int8().depthwise(), m4.int8().depthwise());
  EXPECT_EQ(mine.float32().dense(), m4.float32().dense());
  EXPECT_EQ(mine.core(), "cortex-m4");
  EXPECT_EQ(mine.source(), "boards.yaml");

  const v1::Device& m7 = *catalog.Find("cortex-m7-216mhz");
  EXPECT_EQ(m7.ram_bytes(), 512u * 1024);
  EXPECT_EQ(m7.clock_hz(), 216'000'000u);  // untouched fields stay
  EXPECT_EQ(m7.source(), "boards.yaml");

  const v1::Device& npu = *catalog.Find("npu-board");
  EXPECT_EQ(npu.core(), "");
  EXPECT_EQ(npu.clock_hz(), 1'000'000'000u);
  EXPECT_EQ(npu.overhead_ms(), 0.25);
  EXPECT_EQ(catalog.ids().size(), 8u);
}

TEST(DeviceCatalogTest, BadFilesNameTheFileTheDeviceAndTheField) {
  struct Case {
    const char* yaml;
    const char* message;
  };
  const Case cases[] = {
      {"devices:\n  - {id: b, base: host, clock_hz: fast}",
       "f.yaml: devices[0] (b).clock_hz: must be a number > 0, got 'fast'"},
      {"devices:\n  - {id: b, base: host, int8: {conv: -1}}",
       "f.yaml: devices[0] (b).int8.conv: must be a number > 0, got '-1'"},
      {"devices:\n  - {id: b, base: host, int8: {gemm: 1}}",
       "f.yaml: devices[0] (b).int8.gemm: unknown key (allowed: conv, dense, depthwise, "
       "elementwise, pointwise)"},
      {"devices:\n  - {id: b, base: host, ram_bytes: 12X}",
       "f.yaml: devices[0] (b).ram_bytes: expected a size in bytes (4096, 256K, 1M, 2G), got "
       "'12X'"},
      {"devices:\n  - {id: b, clock_hz: 1e6, ram_bytes: 1K}",
       "f.yaml: devices[0] (b).flash_bytes: required for a new device (or give base: ID to start "
       "from a known one)"},
      {"devices:\n  - {id: b, base: nope}", "f.yaml: devices[0] (b).base: unknown device 'nope'"},
      {"devices:\n  - {id: b, base: host, core: x86}",
       "f.yaml: devices[0] (b).core: expected an Arm Cortex-M -mcpu name (cortex-m4, cortex-m7, "
       "...) or none, got 'x86'"},
      {"devices:\n  - {base: host}", "f.yaml: devices[0].id: required"},
      {"devices:\n  - {id: My Board, base: host}",
       "f.yaml: devices[0] (My Board).id: lower-case letters, digits, '.', '_', '-' only"},
      {"boards: []", "f.yaml: devices file.boards: unknown key (allowed: devices)"},
      {"devices: 3", "f.yaml: devices: expected a list of devices, got '3'"},
  };
  for (const Case& c : cases) {
    DeviceCatalog catalog = DeviceCatalog::Builtin();
    const Status status = catalog.AddYaml(c.yaml, "f.yaml");
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_EQ(status.message(), c.message) << c.yaml;
    EXPECT_EQ(catalog.ids().size(), 6u) << "a failed file changes nothing";
  }
  DeviceCatalog catalog = DeviceCatalog::Builtin();
  EXPECT_EQ(catalog.AddYaml("devices: [", "f.yaml").message().rfind("f.yaml: line ", 0), 0u);
}

TEST(DeviceCatalogTest, LoadsTheFlagFileElseTheEnvironmentsElseTheBuiltins) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/devices.yaml";
  std::ofstream(path) << "devices:\n  - {id: env-board, base: host}\n";
  ::unsetenv("IMPULSE_DEVICES");
  EXPECT_EQ(LoadDeviceCatalog("")->ids().size(), 6u);
  ::setenv("IMPULSE_DEVICES", path.c_str(), 1);
  auto from_env = LoadDeviceCatalog("");
  ::unsetenv("IMPULSE_DEVICES");
  ASSERT_TRUE(from_env.ok()) << from_env.status().ToString();
  EXPECT_NE(from_env->Find("env-board"), nullptr);
  EXPECT_NE(LoadDeviceCatalog(path)->Find("env-board"), nullptr);
  EXPECT_EQ(LoadDeviceCatalog(dir.path() + "/missing.yaml").status().code(), StatusCode::kNotFound);
  // The example file in the repository is valid.
  auto example = DeviceCatalog::WithFile("examples/devices.yaml");
  EXPECT_TRUE(example.ok()) << example.status().ToString();
}

}  // namespace
}  // namespace impulse::device
