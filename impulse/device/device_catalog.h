// The device catalog: the targets an impulse's `target` may name (DESIGN.md,
// "Catalog ids"), each a v1::Device (proto/impulse/v1/device.proto) with its
// clock, RAM, flash and per-layer-kind cycle costs for int8 and float32.
//
// The built-ins are cortex-m4f-80mhz, cortex-m7-216mhz, cortex-m7-480mhz,
// raspberry-pi-4, jetson-nano and host; docs/DEVICES.md gives the source or
// the derivation of every figure. This is the one list of target ids.
//
// Users add devices, or change built-in ones, in a YAML file (docs/DEVICES.md,
// examples/devices.yaml): the coordinator reads it from --devices FILE or
// IMPULSE_DEVICES, and sends the resolved device with each quantize-evaluate
// task, so workers need no copy of the file.
//
// Thread safety: a const DeviceCatalog may be read from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "impulse/status.h"
#include "impulse/v1/device.pb.h"

namespace impulse::device {

inline constexpr std::string_view kDevicesEnv = "IMPULSE_DEVICES";

class DeviceCatalog {
 public:
  // The built-in devices, in the order DESIGN.md lists them.
  static DeviceCatalog Builtin();

  // Adds the devices of a device file's text (`file_name` names it in
  // errors and in Device.source). An entry whose id exists changes only the
  // fields it gives; a new entry starts from `base: ID` when given, else
  // must give every field. Nothing changes when it fails: InvalidArgument
  // "FILE: devices[1] (my-board).int8.conv: must be a number > 0, got 'x'"
  // naming the file, the device and the field.
  Status AddYaml(std::string_view text, const std::string& file_name);

  // Builtin() plus the devices of the file at `path`. NotFound when it
  // cannot be read; AddYaml's errors otherwise.
  static Result<DeviceCatalog> WithFile(const std::string& path);

  // nullptr when no device has that id.
  const v1::Device* Find(std::string_view id) const;
  // InvalidArgument "target: unknown device 'x' (a | b | ...)" when absent.
  Result<v1::Device> Get(std::string_view id) const;

  std::vector<std::string> ids() const;
  const std::vector<v1::Device>& devices() const { return devices_; }

 private:
  std::vector<v1::Device> devices_;
};

// The catalog a process serves with: Builtin() plus `flag_path` when it is
// not empty, else plus the file IMPULSE_DEVICES names when that is set.
Result<DeviceCatalog> LoadDeviceCatalog(const std::string& flag_path);

}  // namespace impulse::device
