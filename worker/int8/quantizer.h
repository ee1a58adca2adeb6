// Post-training quantization of a trained float model to a QuantizedModel
// (quantized_model.h gives the arithmetic): BatchNorm folded into the conv
// or dense before it, weights symmetric int8 per output channel (conv,
// depthwise) or per tensor (dense), int32 bias, activations asymmetric int8
// per tensor from calibrated ranges, fixed-point requantization, ReLU/ReLU6
// as clamps, softmax output at scale 1/256, zero point -128.
// LibTorch-free: the ranges come from worker/training/calibration.h.
#pragma once

#include <vector>

#include "impulse/model/fused_ops.h"
#include "impulse/model/layer_graph.h"
#include "impulse/status.h"
#include "worker/int8/quantized_model.h"

namespace impulse::worker::int8 {

// The observed float range of one layer's output over the calibration set.
struct ActivationRange {
  float min = 0;
  float max = 0;
};

struct QuantizeOptions {
  // Written to QuantizedModel::method ("minmax", "percentile(99.99)").
  std::string method = "minmax";
};

// `graph` has weights; `ranges` has one entry per layer of the graph (the
// ranges of the FusedOps' output layers are used). InvalidArgument naming
// the layer when it cannot be quantized (FusedOps::FromGraph's rules) or a
// range is missing / not finite.
Result<QuantizedModel> Quantize(const model::LayerGraph& graph,
                                const std::vector<ActivationRange>& ranges,
                                const QuantizeOptions& options);

}  // namespace impulse::worker::int8
