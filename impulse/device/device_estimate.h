// On-device estimates of one model on one catalog device, from its layer
// graph alone (no weights needed): what the coordinator reports before
// training and the worker reports for targets it cannot measure.
//
//   latency  = overhead_ms + sum over the fused ops (impulse/model/
//              fused_ops.h) of (MACs x cycles per MAC of the op's kind +
//              element-wise elements x cycles per element) / clock_hz.
//              Kinds: k x k conv, depthwise, pointwise (1 x 1 conv), dense;
//              adds, pools (per window cell), clamps and softmax are
//              element-wise. A conv's requantization and fused activation
//              are inside its per-MAC figure.
//   RAM      = the tensor arena (model::PlanArena over
//              model::OpOutputBuffers(ops, element bytes): exactly the C
//              library's arena for int8) + the input buffer + the output
//              buffer, which the caller owns. Element bytes: 1 int8, 4 float32.
//   flash    = parameters + code. int8: weights 1 byte each, an int32 bias,
//              multiplier and shift per output channel (dense: one
//              multiplier and shift), three multipliers per add, the
//              softmax's 256-entry uint32 table. float32: weights and one
//              bias per output channel, 4 bytes each (BatchNorm folded).
//              Code: kCodeBytes (docs/DEVICES.md shows how it was measured).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "impulse/model/fused_ops.h"
#include "impulse/model/layer_graph.h"
#include "impulse/status.h"
#include "impulse/v1/device.pb.h"
#include "impulse/v1/results.pb.h"

namespace impulse::device {

enum class Precision { kInt8, kFloat32 };
std::string PrecisionName(Precision precision);  // "int8", "float32"

// Flash taken by the emitted C library's code: its kernels (worker/int8/
// kernels.c, 2144 bytes with arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os)
// plus about 2 KB for the entry point's call per op (docs/DEVICES.md,
// "Flash"). float32 uses the same figure: the same kernels over floats.
// The worker replaces it with the compiled object's size.
inline constexpr uint64_t kCodeBytes = 4 * 1024;

struct DeviceEstimate {
  double latency_ms = 0;
  uint64_t arena_bytes = 0;
  uint64_t input_bytes = 0;
  uint64_t output_bytes = 0;
  uint64_t ram_bytes = 0;  // arena + input + output
  uint64_t parameter_bytes = 0;
  uint64_t code_bytes = 0;
  uint64_t flash_bytes = 0;              // parameters + code
  std::vector<v1::LayerLatency> layers;  // one per fused op, in order

  // The figures as results carry them, with latency_source and flash_source
  // saying they are the `device_id` table's estimates.
  v1::DeviceFigures Figures(const std::string& device_id) const;
};

// InvalidArgument naming the layer when the graph has a layer the fused-op
// plan does not cover (FusedOps::FromGraph), or when the device has a zero
// clock.
Result<DeviceEstimate> EstimateDevice(const model::LayerGraph& graph, const v1::Device& device,
                                      Precision precision);
// The same over a plan already built from `graph`.
Result<DeviceEstimate> EstimateDevice(const model::LayerGraph& graph, const model::FusedOps& ops,
                                      const v1::Device& device, Precision precision);

}  // namespace impulse::device
