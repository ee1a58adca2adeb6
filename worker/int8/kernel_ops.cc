#include "worker/int8/kernel_ops.h"

#include <algorithm>
#include <limits>

namespace impulse::worker::int8 {
namespace {

using Shape = std::vector<uint32_t>;

ic_window Window(const QuantizedOp& op, const Shape& in) {
  const Shape& out = op.op.output_shape;
  ic_window w{};
  w.input_channels = in[0];
  w.input_height = in[1];
  w.input_width = in[2];
  w.output_channels = out[0];
  w.output_height = out.size() == 3 ? out[1] : 1;
  w.output_width = out.size() == 3 ? out[2] : 1;
  w.kernel_height = op.kernel_h;
  w.kernel_width = op.kernel_w;
  w.stride_height = op.stride_h;
  w.stride_width = op.stride_w;
  w.pad_top = op.pad_top;
  w.pad_left = op.pad_left;
  return w;
}

// bias[c] - input_zero_point * sum of channel c's `per_channel` weights.
void FoldBias(const QuantizedOp& op, size_t channels, int32_t input_zero_point, KernelOp& k) {
  const size_t per_channel = op.weights.size() / channels;
  k.bias.resize(channels);
  for (size_t c = 0; c < channels; ++c) {
    int64_t sum = 0;
    for (size_t i = 0; i < per_channel; ++i) sum += op.weights[c * per_channel + i];
    const int64_t folded = (op.bias.empty() ? 0 : int64_t{op.bias[c]}) - input_zero_point * sum;
    k.bias[c] = static_cast<int32_t>(std::clamp<int64_t>(
        folded, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()));
  }
  for (const FixedPointMultiplier& m : op.output_multipliers) {
    k.multipliers.push_back(m.multiplier);
    k.shifts.push_back(m.shift);
  }
}

KernelParams Params(const QuantizedOp& op, const std::vector<Shape>& in,
                    const std::vector<int32_t>& in_zero_points, KernelOp& k) {
  const auto out_elements = static_cast<uint32_t>(op.op.output_elements);
  switch (op.op.kind) {
    case model::OpKind::kConv2D:
    case model::OpKind::kDepthwiseConv2D: {
      FoldBias(op, op.op.output_shape[0], in_zero_points[0], k);
      ic_conv_params p{};
      p.window = Window(op, in[0]);
      p.input_zero_point = in_zero_points[0];
      p.output_zero_point = op.output.zero_point;
      p.activation_min = op.activation_min;
      p.activation_max = op.activation_max;
      p.weights = op.weights.data();
      if (op.op.kind == model::OpKind::kConv2D) {
        k.packed_weights.resize(ic_conv2d_packed_size(&p.window));
        ic_conv2d_pack_weights(&p.window, op.weights.data(), k.packed_weights.data());
        p.weights = k.packed_weights.data();
      }
      p.bias = k.bias.data();
      p.output_multiplier = k.multipliers.data();
      p.output_shift = k.shifts.data();
      return p;
    }
    case model::OpKind::kDense: {
      FoldBias(op, out_elements, in_zero_points[0], k);
      ic_dense_params p{};
      p.input_size = static_cast<uint32_t>(ShapeElements(in[0]));
      p.output_size = out_elements;
      p.output_zero_point = op.output.zero_point;
      p.activation_min = op.activation_min;
      p.activation_max = op.activation_max;
      p.weights = op.weights.data();
      p.bias = k.bias.data();
      p.output_multiplier = k.multipliers[0];
      p.output_shift = k.shifts[0];
      return p;
    }
    case model::OpKind::kAdd: {
      ic_add_params p{};
      p.size = out_elements;
      p.input1_zero_point = in_zero_points[0];
      p.input2_zero_point = in_zero_points[1];
      p.output_zero_point = op.output.zero_point;
      p.input1_multiplier = op.input_multipliers[0].multiplier;
      p.input1_shift = op.input_multipliers[0].shift;
      p.input2_multiplier = op.input_multipliers[1].multiplier;
      p.input2_shift = op.input_multipliers[1].shift;
      p.output_multiplier = op.add_output_multiplier.multiplier;
      p.output_shift = op.add_output_multiplier.shift;
      p.activation_min = op.activation_min;
      p.activation_max = op.activation_max;
      return p;
    }
    case model::OpKind::kMaxPool:
    case model::OpKind::kAvgPool:
      return ic_pool_params{Window(op, in[0]), in_zero_points[0], op.activation_min,
                            op.activation_max};
    case model::OpKind::kGlobalAvgPool: {
      ic_pool_params p{Window(op, in[0]), in_zero_points[0], op.activation_min, op.activation_max};
      p.window.kernel_height = p.window.input_height;  // the whole plane
      p.window.kernel_width = p.window.input_width;
      return p;
    }
    case model::OpKind::kClamp:
      return ic_clamp_params{out_elements, op.activation_min, op.activation_max};
    case model::OpKind::kSoftmax:
      return ic_softmax_params{out_elements, op.exp_table.data()};
  }
  return ic_clamp_params{};
}

}  // namespace

std::vector<KernelOp> BuildKernelOps(const QuantizedModel& model) {
  std::vector<KernelOp> ops;
  ops.reserve(model.ops.size());
  for (const QuantizedOp& op : model.ops) {
    KernelOp k;
    k.kind = op.op.kind;
    k.inputs = op.op.inputs;
    std::vector<Shape> in_shapes;
    std::vector<int32_t> in_zero_points;
    for (int input : op.op.inputs) {
      in_shapes.push_back(input < 0 ? model.input_shape : model.ops[input].op.output_shape);
      in_zero_points.push_back(input < 0 ? model.input.zero_point
                                         : model.ops[input].output.zero_point);
    }
    k.params = Params(op, in_shapes, in_zero_points, k);
    ops.push_back(std::move(k));
  }
  return ops;
}

void RunKernelOp(const KernelOp& op, const int8_t* input1, const int8_t* input2, int8_t* output) {
  switch (op.kind) {
    case model::OpKind::kConv2D:
      return ic_conv2d_run(&std::get<ic_conv_params>(op.params), input1, output);
    case model::OpKind::kDepthwiseConv2D:
      return ic_depthwise_conv2d_run(&std::get<ic_conv_params>(op.params), input1, output);
    case model::OpKind::kDense:
      return ic_dense_run(&std::get<ic_dense_params>(op.params), input1, output);
    case model::OpKind::kAdd:
      return ic_add_run(&std::get<ic_add_params>(op.params), input1, input2, output);
    case model::OpKind::kMaxPool:
      return ic_max_pool_run(&std::get<ic_pool_params>(op.params), input1, output);
    case model::OpKind::kAvgPool:
      return ic_avg_pool_run(&std::get<ic_pool_params>(op.params), input1, output);
    case model::OpKind::kGlobalAvgPool:
      return ic_global_avg_pool_run(&std::get<ic_pool_params>(op.params), input1, output);
    case model::OpKind::kClamp:
      return ic_clamp_run(&std::get<ic_clamp_params>(op.params), input1, output);
    case model::OpKind::kSoftmax:
      return ic_softmax_run(&std::get<ic_softmax_params>(op.params), input1, output);
  }
}

}  // namespace impulse::worker::int8
