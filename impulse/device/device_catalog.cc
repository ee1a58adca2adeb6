#include "impulse/device/device_catalog.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "impulse/impulse_spec.h"

namespace impulse::device {
namespace {

v1::CycleCosts Costs(double conv, double depthwise, double pointwise, double dense,
                     double elementwise) {
  v1::CycleCosts costs;
  costs.set_conv(conv);
  costs.set_depthwise(depthwise);
  costs.set_pointwise(pointwise);
  costs.set_dense(dense);
  costs.set_elementwise(elementwise);
  return costs;
}

v1::Device Make(const char* id, const char* description, const char* core, double clock_hz,
                uint64_t ram_bytes, uint64_t flash_bytes, const v1::CycleCosts& int8,
                const v1::CycleCosts& float32, double overhead_ms) {
  v1::Device device;
  device.set_id(id);
  device.set_description(description);
  device.set_core(core);
  device.set_clock_hz(static_cast<uint64_t>(clock_hz));
  device.set_ram_bytes(ram_bytes);
  device.set_flash_bytes(flash_bytes);
  *device.mutable_int8() = int8;
  *device.mutable_float32() = float32;
  device.set_overhead_ms(overhead_ms);
  device.set_source("built-in");
  return device;
}

constexpr uint64_t kKiB = 1024, kMiB = kKiB * 1024, kGiB = kMiB * 1024;

// Every figure below is derived in docs/DEVICES.md ("Where the figures come
// from"); keep the two in step.
std::vector<v1::Device> BuiltinDevices() {
  // Cortex-M: fitted to the MLPerf Tiny v1.0 closed results of one engine
  // (X-CUBE-AI 7.3) on a Cortex-M4 and a Cortex-M7 board; float32 from the
  // FPU's instruction timings relative to the int8 kernels.
  const v1::CycleCosts m4_int8 = Costs(2.15, 3.7, 3.7, 3.44, 4);
  const v1::CycleCosts m4_float = Costs(5.4, 9.25, 9.25, 8.6, 4);
  const v1::CycleCosts m7_int8 = Costs(1.20, 1.9, 1.9, 1.94, 2);
  const v1::CycleCosts m7_float = Costs(1.8, 2.85, 2.85, 2.9, 2);
  return {
      Make("cortex-m4f-80mhz", "Arm Cortex-M4F at 80 MHz (256 KB RAM, 1 MB flash)", "cortex-m4",
           80e6, 256 * kKiB, 1 * kMiB, m4_int8, m4_float, 0),
      Make("cortex-m7-216mhz", "Arm Cortex-M7 at 216 MHz, e.g. STM32F746 (320 KB RAM, 1 MB flash)",
           "cortex-m7", 216e6, 320 * kKiB, 1 * kMiB, m7_int8, m7_float, 0),
      Make("cortex-m7-480mhz", "Arm Cortex-M7 at 480 MHz, e.g. STM32H743 (1 MB RAM, 2 MB flash)",
           "cortex-m7", 480e6, 1 * kMiB, 2 * kMiB, m7_int8, m7_float, 0),
      Make("raspberry-pi-4", "Raspberry Pi 4: 4x Cortex-A72 at 1.5 GHz, TensorFlow Lite (4 GB)", "",
           1.5e9, 4 * kGiB, 32 * kGiB, Costs(0.089, 0.089, 0.089, 0.089, 0.25),
           Costs(0.229, 0.229, 0.229, 0.229, 0.5), 0.1),
      Make("jetson-nano", "NVIDIA Jetson Nano: 128-core Maxwell GPU at 921.6 MHz, TensorRT (4 GB)",
           "", 921.6e6, 4 * kGiB, 16 * kGiB, Costs(0.0067, 0.0067, 0.0067, 0.0067, 0.01),
           Costs(0.0135, 0.0135, 0.0135, 0.0135, 0.01), 0.5),
      Make("host", "This machine's CPU, one thread (latency measured by the worker)", "", 2.5e9,
           16 * kGiB, 64 * kGiB, Costs(3.6, 3.6, 3.6, 3.6, 1.0), Costs(0.37, 0.37, 0.37, 0.37, 1.0),
           0.01),
  };
}

// ---- the device file

std::string Describe(const YAML::Node& node) {
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  return "nothing";
}

Status ExpectKeys(const YAML::Node& node, const std::string& path,
                  const std::set<std::string>& allowed) {
  if (!node.IsMap()) return InvalidArgument(path + ": expected a mapping, got " + Describe(node));
  std::string list;
  for (const std::string& key : allowed) list += (list.empty() ? "" : ", ") + key;
  for (const auto& entry : node) {
    const std::string key = entry.first.Scalar();
    if (allowed.count(key) == 0) {
      return InvalidArgument(path + "." + key + ": unknown key (allowed: " + list + ")");
    }
  }
  return Status::Ok();
}

Result<std::string> Text(const YAML::Node& node, const std::string& path) {
  if (!node.IsScalar()) return InvalidArgument(path + ": expected text, got " + Describe(node));
  return node.Scalar();
}

// A finite number > 0 (>= 0 when `zero_ok`).
Result<double> Number(const YAML::Node& node, const std::string& path, bool zero_ok) {
  const std::string bound = zero_ok ? ">= 0" : "> 0";
  const std::string text = node.IsScalar() ? node.Scalar() : "";
  double value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (!node.IsScalar() || error != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(value) || value < 0 || (value == 0 && !zero_ok)) {
    return InvalidArgument(path + ": must be a number " + bound + ", got " + Describe(node));
  }
  return value;
}

Status ParseCosts(const YAML::Node& node, const std::string& path, v1::CycleCosts* costs) {
  IMPULSE_RETURN_IF_ERROR(
      ExpectKeys(node, path, {"conv", "depthwise", "pointwise", "dense", "elementwise"}));
  struct Field {
    const char* key;
    void (v1::CycleCosts::*set)(double);
  };
  for (const Field& field : {Field{"conv", &v1::CycleCosts::set_conv},
                             Field{"depthwise", &v1::CycleCosts::set_depthwise},
                             Field{"pointwise", &v1::CycleCosts::set_pointwise},
                             Field{"dense", &v1::CycleCosts::set_dense},
                             Field{"elementwise", &v1::CycleCosts::set_elementwise}}) {
    if (!node[field.key]) continue;
    IMPULSE_ASSIGN_OR_RETURN(double value, Number(node[field.key], path + "." + field.key, false));
    (costs->*field.set)(value);
  }
  return Status::Ok();
}

// The first field a new device (no base) left at zero, or "".
std::string MissingField(const v1::Device& device) {
  if (device.clock_hz() == 0) return "clock_hz";
  if (device.ram_bytes() == 0) return "ram_bytes";
  if (device.flash_bytes() == 0) return "flash_bytes";
  for (const auto& [name, costs] :
       {std::pair{"int8", &device.int8()}, std::pair{"float32", &device.float32()}}) {
    if (costs->conv() == 0) return std::string(name) + ".conv";
    if (costs->depthwise() == 0) return std::string(name) + ".depthwise";
    if (costs->pointwise() == 0) return std::string(name) + ".pointwise";
    if (costs->dense() == 0) return std::string(name) + ".dense";
    if (costs->elementwise() == 0) return std::string(name) + ".elementwise";
  }
  return "";
}

// Applies one entry of `devices:` over `device` (a copy of the existing or
// base device, or an empty one). `path` is "devices[i] (id)".
Status ApplyEntry(const YAML::Node& node, const std::string& path, v1::Device* device) {
  if (node["description"]) {
    IMPULSE_ASSIGN_OR_RETURN(*device->mutable_description(),
                             Text(node["description"], path + ".description"));
  }
  if (node["core"]) {
    IMPULSE_ASSIGN_OR_RETURN(std::string core, Text(node["core"], path + ".core"));
    if (core != "none" && core.rfind("cortex-m", 0) != 0) {
      return InvalidArgument(path + ".core: expected an Arm Cortex-M -mcpu name (cortex-m4, " +
                             "cortex-m7, ...) or none, got '" + core + "'");
    }
    device->set_core(core == "none" ? "" : core);
  }
  if (node["clock_hz"]) {
    IMPULSE_ASSIGN_OR_RETURN(double hz, Number(node["clock_hz"], path + ".clock_hz", false));
    if (hz < 1e3 || hz > 1e12 || hz != std::floor(hz)) {
      return InvalidArgument(path + ".clock_hz: must be a whole number of Hz in [1e3, 1e12], got " +
                             Describe(node["clock_hz"]));
    }
    device->set_clock_hz(static_cast<uint64_t>(hz));
  }
  for (const auto& [key, set] : {std::pair{"ram_bytes", &v1::Device::set_ram_bytes},
                                 std::pair{"flash_bytes", &v1::Device::set_flash_bytes}}) {
    if (!node[key]) continue;
    IMPULSE_ASSIGN_OR_RETURN(std::string text, Text(node[key], path + "." + key));
    IMPULSE_ASSIGN_OR_RETURN(uint64_t bytes, ParseByteSize(text, path + "." + key));
    if (bytes == 0) return InvalidArgument(path + "." + key + ": must be > 0, got '" + text + "'");
    (device->*set)(bytes);
  }
  if (node["int8"])
    IMPULSE_RETURN_IF_ERROR(ParseCosts(node["int8"], path + ".int8", device->mutable_int8()));
  if (node["float32"]) {
    IMPULSE_RETURN_IF_ERROR(
        ParseCosts(node["float32"], path + ".float32", device->mutable_float32()));
  }
  if (node["overhead_ms"]) {
    IMPULSE_ASSIGN_OR_RETURN(double ms, Number(node["overhead_ms"], path + ".overhead_ms", true));
    device->set_overhead_ms(ms);
  }
  return Status::Ok();
}

}  // namespace

DeviceCatalog DeviceCatalog::Builtin() {
  DeviceCatalog catalog;
  catalog.devices_ = BuiltinDevices();
  return catalog;
}

Status DeviceCatalog::AddYaml(std::string_view text, const std::string& file_name) {
  const auto fail = [&](const Status& status) {
    return InvalidArgument(file_name + ": " + status.message());
  };
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(file_name + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (Status keys = ExpectKeys(root, "devices file", {"devices"}); !keys.ok()) return fail(keys);
  const YAML::Node list = root["devices"];
  if (!list.IsSequence()) {
    return InvalidArgument(file_name + ": devices: expected a list of devices, got " +
                           Describe(list));
  }
  std::vector<v1::Device> devices = devices_;  // all or nothing
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node node = list[i];
    std::string path = "devices[" + std::to_string(i) + "]";
    if (Status keys = ExpectKeys(node, path,
                                 {"id", "description", "base", "core", "clock_hz", "ram_bytes",
                                  "flash_bytes", "int8", "float32", "overhead_ms"});
        !keys.ok()) {
      return fail(keys);
    }
    auto id = node["id"] ? Text(node["id"], path + ".id")
                         : Result<std::string>(InvalidArgument(path + ".id: required"));
    if (!id.ok()) return fail(id.status());
    path += " (" + *id + ")";
    if (!IsDeviceId(*id)) {
      return fail(InvalidArgument(path + ".id: lower-case letters, digits, '.', '_', '-' only"));
    }
    auto existing = std::find_if(devices.begin(), devices.end(),
                                 [&](const v1::Device& d) { return d.id() == *id; });
    v1::Device device;
    if (existing != devices.end()) device = *existing;
    if (node["base"]) {
      auto base_id = Text(node["base"], path + ".base");
      if (!base_id.ok()) return fail(base_id.status());
      auto base = std::find_if(devices.begin(), devices.end(),
                               [&](const v1::Device& d) { return d.id() == *base_id; });
      if (base == devices.end()) {
        return fail(InvalidArgument(path + ".base: unknown device '" + *base_id + "'"));
      }
      device = *base;
    }
    device.set_id(*id);
    device.set_source(file_name);
    if (Status applied = ApplyEntry(node, path, &device); !applied.ok()) return fail(applied);
    if (std::string missing = MissingField(device); !missing.empty()) {
      return fail(InvalidArgument(path + "." + missing + ": required for a new device " +
                                  "(or give base: ID to start from a known one)"));
    }
    if (existing != devices.end()) {
      *existing = device;
    } else {
      devices.push_back(device);
    }
  }
  devices_ = std::move(devices);
  return Status::Ok();
}

Result<DeviceCatalog> DeviceCatalog::WithFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("devices file " + path + ": cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  DeviceCatalog catalog = Builtin();
  IMPULSE_RETURN_IF_ERROR(catalog.AddYaml(text.str(), path));
  return catalog;
}

const v1::Device* DeviceCatalog::Find(std::string_view id) const {
  for (const v1::Device& device : devices_) {
    if (device.id() == id) return &device;
  }
  return nullptr;
}

Result<v1::Device> DeviceCatalog::Get(std::string_view id) const {
  if (const v1::Device* device = Find(id)) return *device;
  std::string known;
  for (const v1::Device& device : devices_) known += (known.empty() ? "" : " | ") + device.id();
  return InvalidArgument("target: unknown device '" + std::string(id) + "' (" + known + ")");
}

std::vector<std::string> DeviceCatalog::ids() const {
  std::vector<std::string> ids;
  for (const v1::Device& device : devices_) ids.push_back(device.id());
  return ids;
}

Result<DeviceCatalog> LoadDeviceCatalog(const std::string& flag_path) {
  std::string path = flag_path;
  if (path.empty()) {
    const char* env = std::getenv(std::string(kDevicesEnv).c_str());
    if (env != nullptr) path = env;
  }
  if (path.empty()) return DeviceCatalog::Builtin();
  return DeviceCatalog::WithFile(path);
}

}  // namespace impulse::device
