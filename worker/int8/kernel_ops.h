// The kernel calls of a QuantizedModel: per op, the kernels.h parameter
// struct and the integer tables it points to. The Interpreter runs these
// structs; the C emitter writes the same structs out as C initializers. One
// derivation for both, so the worker and the exported library compute the
// same integers.
//
// Derived here (at export time, so the kernels never do it): biases with the
// input zero point folded in (bias - input_zero_point * sum(weights), in
// int64, saturated to int32), conv2d weights packed in output-channel
// blocks, multipliers and shifts as separate int32 arrays, geometry from the
// ops' input shapes.
//
// Thread safety: immutable after BuildKernelOps. The params point into the
// KernelOp's own vectors and into the model's weights and exp tables: the
// model must outlive the ops, and a KernelOp can be moved but not copied.
#pragma once

#include <cstdint>
#include <variant>
#include <vector>

#include "worker/int8/kernels.h"
#include "worker/int8/quantized_model.h"

namespace impulse::worker::int8 {

using KernelParams = std::variant<ic_conv_params, ic_dense_params, ic_add_params, ic_pool_params,
                                  ic_clamp_params, ic_softmax_params>;

struct KernelOp {
  KernelOp() = default;
  KernelOp(const KernelOp&) = delete;
  KernelOp& operator=(const KernelOp&) = delete;
  KernelOp(KernelOp&&) = default;
  KernelOp& operator=(KernelOp&&) = default;

  model::OpKind kind = model::OpKind::kConv2D;
  std::vector<int> inputs;  // op indices; -1 = the model input
  // Owned tables the params point into (conv, depthwise, dense).
  std::vector<int8_t> packed_weights;  // conv2d: ic_conv2d_pack_weights' layout
  std::vector<int32_t> bias;           // zero point folded in
  std::vector<int32_t> multipliers;    // per channel (dense: one)
  std::vector<int32_t> shifts;
  KernelParams params;
};

// REQUIRES: CheckQuantizedModel(model).ok() (the arena plan aside: it is
// not read here).
std::vector<KernelOp> BuildKernelOps(const QuantizedModel& model);

// Calls op's kernel: `input2` is the second input of an add (nullptr
// otherwise); `output` does not overlap the inputs.
void RunKernelOp(const KernelOp& op, const int8_t* input1, const int8_t* input2, int8_t* output);

}  // namespace impulse::worker::int8
