#include "impulse/device/device_estimate.h"

#include "impulse/model/arena_planner.h"

namespace impulse::device {
namespace {

using model::FusedOp;
using model::OpKind;

uint64_t Product(const std::vector<uint32_t>& shape) {
  uint64_t n = 1;
  for (uint32_t d : shape) n *= d;
  return n;
}

// The cycles one MAC of `op` costs; 0 for ops without MACs.
double CyclesPerMac(const FusedOp& op, const v1::Layer& layer, const v1::CycleCosts& costs) {
  switch (op.kind) {
    case OpKind::kConv2D:
      return layer.kernel_h() == 1 && layer.kernel_w() == 1 ? costs.pointwise() : costs.conv();
    case OpKind::kDepthwiseConv2D:
      return costs.depthwise();
    case OpKind::kDense:
      return costs.dense();
    default:
      return 0;
  }
}

// The elements an op's element-wise work is charged for: a pool's window
// cells, a global pool's input, the output of adds, clamps and softmax.
uint64_t ElementwiseElements(const model::FusedOps& ops, const FusedOp& op,
                             const v1::Layer& layer) {
  switch (op.kind) {
    case OpKind::kMaxPool:
    case OpKind::kAvgPool:
      return op.output_elements * layer.kernel_h() * layer.kernel_w();
    case OpKind::kGlobalAvgPool: {
      const int input = op.inputs.at(0);
      return input < 0 ? Product(ops.input_shape()) : ops.ops()[input].output_elements;
    }
    case OpKind::kAdd:
    case OpKind::kClamp:
    case OpKind::kSoftmax:
      return op.output_elements;
    default:
      return 0;
  }
}

// Flash bytes of one op's constants (see the header for what is counted).
uint64_t ParameterBytes(const model::LayerGraph& graph, const FusedOp& op, Precision precision) {
  const bool int8 = precision == Precision::kInt8;
  switch (op.kind) {
    case OpKind::kConv2D:
    case OpKind::kDepthwiseConv2D:
    case OpKind::kDense: {
      uint64_t weights = 0;
      for (const model::WeightSpec& spec : graph.WeightSpecs(op.layer)) {
        if (spec.name == graph.layer(op.layer).name() + ".weight") weights = Product(spec.shape);
      }
      const uint64_t channels = graph.layer(op.layer).filters();
      if (!int8) return 4 * (weights + channels);
      const uint64_t requant = op.kind == OpKind::kDense ? 1 : channels;
      return weights + 4 * channels + 8 * requant;
    }
    case OpKind::kAdd:
      return int8 ? 3 * 8 : 0;
    case OpKind::kSoftmax:
      return int8 ? 256 * 4 : 0;
    default:
      return 0;
  }
}

}  // namespace

std::string PrecisionName(Precision precision) {
  return precision == Precision::kInt8 ? "int8" : "float32";
}

v1::DeviceFigures DeviceEstimate::Figures(const std::string& device_id) const {
  v1::DeviceFigures figures;
  figures.set_latency_ms(latency_ms);
  figures.set_ram_bytes(ram_bytes);
  figures.set_flash_bytes(flash_bytes);
  for (const v1::LayerLatency& layer : layers) *figures.add_layers() = layer;
  figures.set_latency_source("estimate: " + device_id + " cycle table");
  figures.set_flash_source("estimate: parameters + " + std::to_string(code_bytes) +
                           " bytes of code");
  return figures;
}

Result<DeviceEstimate> EstimateDevice(const model::LayerGraph& graph, const v1::Device& device,
                                      Precision precision) {
  IMPULSE_ASSIGN_OR_RETURN(model::FusedOps ops, model::FusedOps::FromGraph(graph));
  return EstimateDevice(graph, ops, device, precision);
}

Result<DeviceEstimate> EstimateDevice(const model::LayerGraph& graph, const model::FusedOps& ops,
                                      const v1::Device& device, Precision precision) {
  if (device.clock_hz() == 0) {
    return InvalidArgument("device " + device.id() + ": clock_hz must be > 0");
  }
  const bool int8 = precision == Precision::kInt8;
  const v1::CycleCosts& costs = int8 ? device.int8() : device.float32();
  const uint64_t element_bytes = int8 ? 1 : 4;
  const double ms_per_cycle = 1e3 / static_cast<double>(device.clock_hz());

  DeviceEstimate estimate;
  estimate.latency_ms = device.overhead_ms();
  for (int i = 0; i < static_cast<int>(ops.ops().size()); ++i) {
    const FusedOp& op = ops.ops()[i];
    const v1::Layer& layer = graph.layer(op.layer);
    const double cycles =
        static_cast<double>(op.macs) * CyclesPerMac(op, layer, costs) +
        static_cast<double>(ElementwiseElements(ops, op, layer)) * costs.elementwise();
    v1::LayerLatency& entry = estimate.layers.emplace_back();
    entry.set_name(layer.name());
    entry.set_kind(model::OpKindName(op.kind));
    entry.set_macs(op.macs);
    entry.set_latency_ms(cycles * ms_per_cycle);
    estimate.latency_ms += entry.latency_ms();
    estimate.parameter_bytes += ParameterBytes(graph, op, precision);
  }

  estimate.arena_bytes = model::PlanArena(model::OpOutputBuffers(ops, element_bytes)).arena_bytes;
  estimate.input_bytes = Product(ops.input_shape()) * element_bytes;
  estimate.output_bytes = ops.ops().empty() ? 0 : ops.ops().back().output_elements * element_bytes;
  estimate.ram_bytes = estimate.arena_bytes + estimate.input_bytes + estimate.output_bytes;
  estimate.code_bytes = kCodeBytes;
  estimate.flash_bytes = estimate.parameter_bytes + estimate.code_bytes;
  return estimate;
}

}  // namespace impulse::device
