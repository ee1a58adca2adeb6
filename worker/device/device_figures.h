// Measured on-device figures of a trained model, for the quantize-evaluate
// task: the int8 C library's flash from its compiled object, its exact RAM
// from the arena plan, and on the `host` target the latency of both
// precisions timed on this machine. What cannot be measured here comes
// from the estimate (impulse/device/device_estimate.h), and each figure's
// *_source says which it is.
//
//   int8 flash     model.c compiled with -Os -c; `size`: text + data. For a
//                  device with a Cortex-M core, arm-none-eabi-gcc -mcpu=CORE
//                  -mthumb when it is on PATH, else the host gcc (the source
//                  names the compiler). A compile that fails or takes longer
//                  than compile_timeout_s falls back to the estimate, with a
//                  warning.
//   float32 flash  float32 parameters (estimate) + the code the int8 object
//                  holds beyond its own constants (measured), i.e. the same
//                  kernels over floats.
//   RAM            int8: the QuantizedModel's arena + input + output bytes
//                  (the C library's static arena); float32: the estimate.
//   latency        `host`: the median of `repeats` single-image inferences
//                  after one warm-up, on one thread, int8 with the worker's
//                  interpreter (the C library's kernels), float32 with
//                  LibTorch; other devices: the estimate.
//   layers         the estimate's per-layer breakdown, for both.
//
// Thread-compatible: runs compilers and LibTorch (its thread count is
// process-wide); call from the task's thread.
#pragma once

#include <string>
#include <vector>

#include "impulse/model/layer_graph.h"
#include "impulse/status.h"
#include "impulse/v1/device.pb.h"
#include "impulse/v1/job.pb.h"
#include "impulse/v1/results.pb.h"
#include "worker/int8/quantized_model.h"

namespace impulse::worker::device {

struct DeviceReport {
  v1::DeviceFigures float32;
  v1::DeviceFigures int8;
  std::vector<std::string> warnings;  // fallbacks taken, one line each
};

struct MeasureOptions {
  int repeats = 25;               // host latency samples per precision
  double compile_timeout_s = 60;  // per compiler run
};

// `graph` is the trained float model (with weights), `model` its int8
// version, `c_library_dir` the directory WriteCLibrary wrote model.c into.
// InvalidArgument when the graph cannot be planned (as EstimateDevice) or
// the float model cannot be run for timing; compile problems are warnings.
Result<DeviceReport> MeasureDeviceFigures(const model::LayerGraph& graph,
                                          const int8::QuantizedModel& model,
                                          const std::string& c_library_dir,
                                          const v1::Device& device,
                                          const MeasureOptions& options = {});

// The compiled size of `source` (text + data of `size`), with the compiler
// chosen for `core` as above; `compiler` gets its description, e.g.
// "arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os". Internal with the
// compiler's first error line when it fails, DeadlineExceeded after
// `timeout_s`.
Result<uint64_t> CompiledFlashBytes(const std::string& source, const std::string& core,
                                    double timeout_s, std::string* compiler);

// The task's target: spec.device when the coordinator sent it, else the
// impulse's target (default cortex-m4f-80mhz) in the built-in catalog.
// InvalidArgument "target: unknown device ..." when it is in neither.
Result<v1::Device> TaskDevice(const v1::TaskSpec& spec);

// What the quantize-evaluate task reports: results.target and the device
// figures of float32 and, when `model` is not null, int8 (measured as
// MeasureDeviceFigures does). Without an int8 model only the float32
// estimate is added. Nothing fails the task here: a figure that cannot be
// had is left out with a warning in results.warnings.
void AddDeviceFigures(const v1::Device& device, const model::LayerGraph& graph,
                      const int8::QuantizedModel* model, const std::string& c_library_dir,
                      v1::JobResults& results);

}  // namespace impulse::worker::device
