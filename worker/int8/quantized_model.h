// QuantizedModel: a trained model in int8, op by op, as the integer
// interpreter runs it and the exporters (C library, QDQ ONNX) write it out.
// Built by the quantizer (quantizer.h) from the float layer graph, its
// FusedOps plan (impulse/model/fused_ops.h) and calibrated ranges.
//
// Arithmetic (the rules the kernels in kernels.h implement, once):
//   real = scale * (q - zero_point)
//   * activations: int8, asymmetric, per tensor.
//   * weights: int8, symmetric (zero point 0), per output channel for
//     conv2d / depthwise_conv2d, per tensor for dense.
//   * bias: int32, scale = input scale * weight scale[channel], zero point 0.
//   * requantization of an int32 accumulator to the output: the exact int64
//     product with a Q31 fixed-point multiplier in [2^30, 2^31), rounded
//     once by a right shift of 31 - shift bits (to nearest, ties up:
//     TFLite's / CMSIS-NN's single-rounding option, not their default two
//     roundings, so that ONNX Runtime agrees); then + output zero point,
//     clamp.
//   * pools keep the input's scale and zero point; averages round to
//     nearest, ties to even, as ONNX Runtime rounds each pool (kernels.h).
//   * the model input is the processing block's pixels/255: scale 1/255,
//     zero point -128, so the int8 input is exactly pixel - 128.
//   * the softmax output has the fixed scale 1/256 and zero point -128.
// Memory layout of every tensor: [C, H, W] C-major (as the float model and
// ONNX), batch of one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "impulse/model/arena_planner.h"
#include "impulse/model/fused_ops.h"
#include "impulse/status.h"

namespace impulse::worker::int8 {

struct QuantParams {
  float scale = 1.0f;
  int32_t zero_point = 0;
};

// real multiplier ≈ multiplier * 2^(shift - 31); multiplier in [2^30, 2^31),
// or 0 (with shift 0) for a real multiplier of 0.
struct FixedPointMultiplier {
  int32_t multiplier = 0;
  int32_t shift = 0;
};
FixedPointMultiplier QuantizeMultiplier(double real_multiplier);

struct QuantizedOp {
  model::FusedOp op;  // kind, geometry source layer, inputs, output shape
  std::string name;   // the float layer's name (FusedOp::layer)
  // Geometry copied from the float layer (conv, depthwise, pools).
  uint32_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  uint32_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;

  QuantParams output;  // the output tensor's parameters
  // Output clamp in the int8 domain (fused ReLU/ReLU6, or [-128, 127]).
  int32_t activation_min = -128;
  int32_t activation_max = 127;

  // conv2d / depthwise_conv2d / dense. weights: conv OIHW, depthwise
  // [C, 1, KH, KW], dense [units, inputs]; BN already folded.
  std::vector<int8_t> weights;
  std::vector<float> weight_scales;  // per output channel (dense: one entry)
  std::vector<int32_t> bias;         // per output channel
  // Per output channel (dense: one entry): input scale * weight scale /
  // output scale.
  std::vector<FixedPointMultiplier> output_multipliers;

  // add: each input rescaled to a common scale (2 * max input scale) after a
  // left shift of kAddLeftShift bits, then the sum to the output.
  std::vector<FixedPointMultiplier> input_multipliers;  // two entries for add
  FixedPointMultiplier add_output_multiplier;

  // softmax: exp_table[d] = round(2^16 * exp(-d * input scale)) for the
  // difference d = max - x in [0, 255] of the int8 logits.
  std::vector<uint32_t> exp_table;
};

inline constexpr int kAddLeftShift = 20;

struct QuantizedModel {
  std::vector<uint32_t> input_shape;  // [C, H, W]
  QuantParams input;                  // {1/255, -128}
  std::vector<QuantizedOp> ops;       // topological; the last is the output
  std::vector<std::string> labels;
  std::string architecture;
  // How activation ranges were chosen: "minmax", "percentile(99.99)", ...
  std::string method;

  // The int8 arena: one buffer per op output except the last (the caller's
  // output); offsets from model::PlanArena.
  std::vector<model::ArenaBuffer> buffers;
  model::ArenaPlan arena;
};

// product(shape): the elements of a [C, H, W] or [N] tensor.
inline uint64_t ShapeElements(const std::vector<uint32_t>& shape) {
  uint64_t n = 1;
  for (uint32_t d : shape) n *= d;
  return n;
}

// OK when `model` is consistent enough to run: ops in topological order with
// the inputs and shapes their kinds need, weights / biases / multipliers of
// the right sizes, shifts in [-31, 31], activation ranges inside [-128, 127],
// pools and clamps at their input's scale
// and zero point, a 256-entry softmax table, an arena plan with one buffer per
// op output but the last, each inside the arena and disjoint from every
// buffer alive at the same time. InvalidArgument naming the op ("ops[3]
// (conv2): ...") otherwise. The Interpreter and the C emitter require it.
Status CheckQuantizedModel(const QuantizedModel& model);

}  // namespace impulse::worker::int8
