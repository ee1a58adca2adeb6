#include "worker/int8/quantizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace impulse::worker::int8 {
namespace {

using model::Activation;
using model::FusedOp;
using model::OpKind;

constexpr QuantParams kInputParams{1.0f / 255.0f, -128};
constexpr QuantParams kSoftmaxParams{1.0f / 256.0f, -128};
// Symmetric weights use [-127, 127], so -w quantizes to -q.
constexpr int kWeightMax = 127;
// A bias must fit int32 with room for the accumulated products; weight
// scales are raised where a tiny input * weight scale would overflow it.
constexpr double kMaxBiasMagnitude = 1 << 30;
// A calibrated range narrower than this is a tensor that was zero on every
// calibration row (a dead channel group): any scale represents it.
constexpr double kMinRangeWidth = 1e-6;

std::string LayerName(const model::LayerGraph& graph, int layer) {
  return "layers[" + std::to_string(layer) + "] (" + graph.layer(layer).name() + ")";
}

std::vector<double> Values(const model::LayerGraph& graph, const std::string& name) {
  const v1::Tensor* t = graph.FindWeight(name);
  std::vector<float> floats(t->data().size() / sizeof(float));
  std::memcpy(floats.data(), t->data().data(), floats.size() * sizeof(float));
  return {floats.begin(), floats.end()};
}

// A conv / depthwise / dense layer's weights and bias with the op's batch
// norm folded in: per output channel c, s = gamma / sqrt(var + eps),
// w[c] *= s, b[c] = (b[c] - mean) * s + beta. In double, then quantized.
struct FloatWeights {
  std::vector<double> weights;  // the layer's layout, [channels, per_channel]
  std::vector<double> bias;     // per output channel
  size_t per_channel = 0;
};

FloatWeights FoldedWeights(const model::LayerGraph& graph, const FusedOp& op) {
  const v1::Layer& layer = graph.layer(op.layer);
  FloatWeights f;
  f.weights = Values(graph, layer.name() + ".weight");
  const size_t channels = layer.filters();
  f.per_channel = f.weights.size() / channels;
  f.bias = layer.bias() ? Values(graph, layer.name() + ".bias") : std::vector<double>(channels, 0);
  if (op.batch_norm < 0) return f;
  const v1::Layer& bn = graph.layer(op.batch_norm);
  const std::vector<double> gamma = Values(graph, bn.name() + ".weight");
  const std::vector<double> beta = Values(graph, bn.name() + ".bias");
  const std::vector<double> mean = Values(graph, bn.name() + ".running_mean");
  const std::vector<double> var = Values(graph, bn.name() + ".running_var");
  // The same default as GraphModule and the exporters: 0 means Keras' 1e-3.
  const double eps = bn.epsilon() > 0 ? bn.epsilon() : 1e-3;
  for (size_t c = 0; c < channels; ++c) {
    const double s = gamma[c] / std::sqrt(var[c] + eps);
    for (size_t k = 0; k < f.per_channel; ++k) f.weights[c * f.per_channel + k] *= s;
    f.bias[c] = (f.bias[c] - mean[c]) * s + beta[c];
  }
  return f;
}

// Asymmetric int8 over the range widened to include 0 (so real 0, the
// padding and the ReLU floor, is exactly a code: the zero point).
QuantParams ActivationParams(const ActivationRange& range) {
  double lo = std::min<double>(range.min, 0), hi = std::max<double>(range.max, 0);
  if (hi - lo < kMinRangeWidth) lo = 0, hi = 1;
  const double scale = (hi - lo) / 255.0;
  const double zero_point = std::clamp(std::round(-128.0 - lo / scale), -128.0, 127.0);
  return {static_cast<float>(scale), static_cast<int32_t>(zero_point)};
}

// A fused ReLU / ReLU6 as a clamp of the int8 output to the codes of the
// real interval [0, inf) or [0, 6].
void SetClamps(Activation activation, QuantizedOp& q) {
  q.activation_min = -128;
  q.activation_max = 127;
  if (activation == Activation::kNone) return;
  q.activation_min = std::max(-128, q.output.zero_point);
  if (activation == Activation::kRelu6) {
    const double six = std::round(6.0 / q.output.scale) + q.output.zero_point;
    q.activation_max = static_cast<int32_t>(std::min(127.0, six));
  }
}

Status CheckRange(const model::LayerGraph& graph, const std::vector<ActivationRange>& ranges,
                  int layer) {
  const ActivationRange& r = ranges[layer];
  if (!std::isfinite(r.min) || !std::isfinite(r.max) || r.min > r.max) {
    return InvalidArgument(LayerName(graph, layer) + ": calibration range [" +
                           std::to_string(r.min) + ", " + std::to_string(r.max) +
                           "] is not a finite interval");
  }
  return Status::Ok();
}

// Weights symmetric per output channel (per tensor for dense), int32 bias
// at input scale * weight scale, one output multiplier per weight scale.
void QuantizeWeighted(const model::LayerGraph& graph, const FusedOp& op, float input_scale,
                      QuantizedOp& q) {
  const FloatWeights f = FoldedWeights(graph, op);
  const size_t channels = f.bias.size();
  const bool per_channel = op.kind != OpKind::kDense;
  const size_t groups = per_channel ? channels : 1;
  const size_t per_group = f.weights.size() / groups;
  q.weight_scales.resize(groups);
  for (size_t g = 0; g < groups; ++g) {
    double max_weight = 0, max_bias = 0;
    for (size_t k = 0; k < per_group; ++k) {
      max_weight = std::max(max_weight, std::abs(f.weights[g * per_group + k]));
    }
    for (size_t c = per_channel ? g : 0; c < (per_channel ? g + 1 : channels); ++c) {
      max_bias = std::max(max_bias, std::abs(f.bias[c]));
    }
    double scale = std::max(max_weight / kWeightMax, max_bias / (input_scale * kMaxBiasMagnitude));
    // An all-zero channel: any scale gives zero weights and bias.
    if (scale == 0) scale = 1.0 / kWeightMax;
    q.weight_scales[g] = static_cast<float>(scale);
  }
  q.weights.resize(f.weights.size());
  for (size_t i = 0; i < f.weights.size(); ++i) {
    const double w = f.weights[i] / q.weight_scales[i / per_group];
    q.weights[i] = static_cast<int8_t>(std::clamp<double>(std::round(w), -kWeightMax, kWeightMax));
  }
  q.bias.resize(channels);
  for (size_t c = 0; c < channels; ++c) {
    const double bias_scale =
        static_cast<double>(input_scale) * q.weight_scales[per_channel ? c : 0];
    q.bias[c] = static_cast<int32_t>(std::round(f.bias[c] / bias_scale));
  }
  for (float weight_scale : q.weight_scales) {
    q.output_multipliers.push_back(
        QuantizeMultiplier(static_cast<double>(input_scale) * weight_scale / q.output.scale));
  }
}

// TFLite's int8 ADD: both inputs shifted left by kAddLeftShift bits and
// rescaled to twice the larger input scale, summed, then rescaled to the
// output.
void QuantizeAdd(const QuantParams& a, const QuantParams& b, QuantizedOp& q) {
  const double twice_max = 2.0 * std::max(a.scale, b.scale);
  q.input_multipliers = {QuantizeMultiplier(a.scale / twice_max),
                         QuantizeMultiplier(b.scale / twice_max)};
  q.add_output_multiplier =
      QuantizeMultiplier(twice_max / (static_cast<double>(1 << kAddLeftShift) * q.output.scale));
}

// exp(-d * input scale) in Q16 for every int8 difference d from the row's
// maximum logit.
std::vector<uint32_t> ExpTable(float input_scale) {
  std::vector<uint32_t> table(256);
  for (int d = 0; d < 256; ++d) {
    table[d] = static_cast<uint32_t>(
        std::lround(65536.0 * std::exp(-d * static_cast<double>(input_scale))));
  }
  return table;
}

void CopyGeometry(const v1::Layer& l, QuantizedOp& q) {
  q.kernel_h = std::max(1u, l.kernel_h());
  q.kernel_w = std::max(1u, l.kernel_w());
  q.stride_h = std::max(1u, l.stride_h());
  q.stride_w = std::max(1u, l.stride_w());
  q.pad_top = l.pad_top();
  q.pad_bottom = l.pad_bottom();
  q.pad_left = l.pad_left();
  q.pad_right = l.pad_right();
}

Result<QuantizedOp> QuantizeOp(const model::LayerGraph& graph, const FusedOp& op,
                               const std::vector<QuantizedOp>& done,
                               const std::vector<ActivationRange>& ranges) {
  QuantizedOp q;
  q.op = op;
  q.name = graph.layer(op.layer).name();
  CopyGeometry(graph.layer(op.layer), q);
  auto input = [&](size_t i) {
    return op.inputs[i] < 0 ? kInputParams : done[op.inputs[i]].output;
  };
  switch (op.kind) {
    case OpKind::kConv2D:
    case OpKind::kDepthwiseConv2D:
    case OpKind::kDense:
      IMPULSE_RETURN_IF_ERROR(CheckRange(graph, ranges, op.output_layer));
      q.output = ActivationParams(ranges[op.output_layer]);
      QuantizeWeighted(graph, op, input(0).scale, q);
      break;
    case OpKind::kAdd:
      IMPULSE_RETURN_IF_ERROR(CheckRange(graph, ranges, op.output_layer));
      q.output = ActivationParams(ranges[op.output_layer]);
      QuantizeAdd(input(0), input(1), q);
      break;
    case OpKind::kMaxPool:
    case OpKind::kAvgPool:
    case OpKind::kGlobalAvgPool:
    case OpKind::kClamp:
      // Same scale in and out: pooling and clamping need no requantization.
      q.output = input(0);
      break;
    case OpKind::kSoftmax:
      q.output = kSoftmaxParams;
      q.exp_table = ExpTable(input(0).scale);
      break;
  }
  SetClamps(op.activation, q);
  return q;
}

}  // namespace

Result<QuantizedModel> Quantize(const model::LayerGraph& graph,
                                const std::vector<ActivationRange>& ranges,
                                const QuantizeOptions& options) {
  IMPULSE_ASSIGN_OR_RETURN(model::FusedOps fused, model::FusedOps::FromGraph(graph));
  IMPULSE_RETURN_IF_ERROR(graph.CheckWeights());
  if (ranges.size() != static_cast<size_t>(graph.size())) {
    return InvalidArgument("ranges: " + std::to_string(ranges.size()) + " entries for " +
                           std::to_string(graph.size()) + " layers");
  }
  QuantizedModel model;
  model.input_shape = fused.input_shape();
  model.input = kInputParams;
  model.labels.assign(graph.model().labels().begin(), graph.model().labels().end());
  model.architecture = graph.model().architecture();
  model.method = options.method;
  for (const FusedOp& op : fused.ops()) {
    IMPULSE_ASSIGN_OR_RETURN(QuantizedOp q, QuantizeOp(graph, op, model.ops, ranges));
    model.ops.push_back(std::move(q));
  }
  model.buffers = model::OpOutputBuffers(fused, 1);
  model.arena = model::PlanArena(model.buffers);
  // What the Interpreter and the C emitter require; a failure is our bug.
  if (Status checked = CheckQuantizedModel(model); !checked.ok()) {
    return Internal("quantizer: inconsistent int8 model: " + checked.message());
  }
  return model;
}

}  // namespace impulse::worker::int8
