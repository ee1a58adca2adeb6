// FusedOps: the layer graph as the operations an inference engine runs —
// the int8 engine (worker/int8/), the C library it exports, and the device
// estimates (impulse/device/). One plan, so the coordinator's RAM estimate,
// the worker's integer evaluation and the emitted C library use the same
// tensors and the same arena.
//
// Fusion rules (layer kinds in proto/impulse/v1/model.proto):
//   * CONV2D / DEPTHWISE_CONV2D / DENSE, then optionally one BATCH_NORM
//     (folded into the weights and bias), then optionally one RELU or RELU6
//     (a clamp of the output), become one op — when each absorbed layer is
//     the only reader of the layer before it.
//   * ADD, then optionally RELU / RELU6, is one op.
//   * MAX_POOL, AVG_POOL, GLOBAL_AVG_POOL, SOFTMAX are one op each; a RELU /
//     RELU6 on their own is a CLAMP op.
//   * FLATTEN and DROPOUT make no op: in [C, H, W] C-major memory a flatten
//     is the same bytes, and dropout is the identity at inference. Their
//     output aliases their input's tensor.
// Unsupported (InvalidArgument naming the layer, "layers[7] (bn3): a
// batch_norm must follow a conv2d, depthwise_conv2d or dense layer that
// nothing else reads; the int8 engine cannot run it on its own"): a
// BATCH_NORM that cannot be folded, a SOFTMAX that is not the last layer,
// any kind not listed above.
//
// Tensors are numbered by the op that writes them; tensor -1 is the model
// input. Thread safety: immutable after construction.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "impulse/model/layer_graph.h"
#include "impulse/status.h"

namespace impulse::model {

enum class OpKind {
  kConv2D,
  kDepthwiseConv2D,
  kDense,
  kAdd,
  kMaxPool,
  kAvgPool,
  kGlobalAvgPool,
  kClamp,    // a standalone RELU / RELU6
  kSoftmax,
};

enum class Activation { kNone, kRelu, kRelu6 };

struct FusedOp {
  OpKind kind = OpKind::kConv2D;
  // The float layer that defines the op (the conv, dense, add, pool, ...).
  int layer = 0;
  // Optional folded BATCH_NORM layer; -1 when none.
  int batch_norm = -1;
  // Fused RELU / RELU6 and its layer; -1 when none.
  Activation activation = Activation::kNone;
  int activation_layer = -1;
  // The float layer whose output equals this op's output (the last layer
  // absorbed): calibration ranges are read there.
  int output_layer = 0;
  // Indices of the ops whose outputs this op reads; -1 = the model input.
  // Two entries for kAdd, one otherwise.
  std::vector<int> inputs;
  // [C, H, W] or [N] of the output, without the batch axis.
  std::vector<uint32_t> output_shape;
  uint64_t output_elements = 0;
  uint64_t macs = 0;  // multiply-accumulates per sample (conv, depthwise, dense)
};

class FusedOps {
 public:
  // InvalidArgument naming the first layer the rules above do not cover.
  static Result<FusedOps> FromGraph(const LayerGraph& graph);

  const std::vector<FusedOp>& ops() const { return ops_; }
  // The op whose output the layer's output equals (the op that absorbed it,
  // or for FLATTEN/DROPOUT the op they alias); -1 for the INPUT layer.
  int OpOfLayer(int layer) const { return op_of_layer_[layer]; }
  // The op producing the logits (input of the final SOFTMAX, or the last op).
  int logits_op() const { return logits_op_; }
  const std::vector<uint32_t>& input_shape() const { return input_shape_; }

 private:
  std::vector<FusedOp> ops_;
  std::vector<int> op_of_layer_;
  std::vector<uint32_t> input_shape_;
  int logits_op_ = 0;
};

std::string OpKindName(OpKind kind);  // "conv2d", "depthwise_conv2d", ...

}  // namespace impulse::model
