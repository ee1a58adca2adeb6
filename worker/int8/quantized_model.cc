#include "worker/int8/quantized_model.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "worker/int8/kernels.h"

namespace impulse::worker::int8 {

static_assert(kAddLeftShift == IC_ADD_LEFT_SHIFT, "the kernels and the model disagree");

// TFLite's QuantizeMultiplier: real = q * 2^e with q in [0.5, 1) (frexp),
// multiplier = round(q * 2^31) (half away from zero, as std::round), a
// rounding to 2^31 renormalized to 2^30 with e + 1. Edge cases:
//   * 0, negative, NaN: {0, 0}, a multiplier of exactly 0 (kernels output
//     the zero point).
//   * tiny (e < -31: the product would be rounded away by a shift of more
//     than 31 bits anyway): {0, 0}.
//   * above 1: a positive shift, the kernel's saturating left shift; e > 31
//     (>= 2^31, no useful model has it) saturates to {2^31 - 1, 31}.
FixedPointMultiplier QuantizeMultiplier(double real_multiplier) {
  if (!(real_multiplier > 0.0)) return {};
  if (std::isinf(real_multiplier)) return {std::numeric_limits<int32_t>::max(), 31};
  int exponent = 0;
  const double fraction = std::frexp(real_multiplier, &exponent);
  int64_t q = static_cast<int64_t>(std::round(fraction * static_cast<double>(1ll << 31)));
  if (q == (1ll << 31)) {
    q /= 2;
    ++exponent;
  }
  if (exponent < -31) return {};
  if (exponent > 31) return {std::numeric_limits<int32_t>::max(), 31};
  return {static_cast<int32_t>(q), exponent};
}

namespace {

using Shape = std::vector<uint32_t>;

bool InInt8(int32_t v) { return v >= -128 && v <= 127; }

Status CheckMultiplier(const FixedPointMultiplier& m, const std::string& what) {
  if (m.multiplier < 0 || m.shift < -31 || m.shift > 31) {
    return InvalidArgument(what + ": multiplier " + std::to_string(m.multiplier) + ", shift " +
                           std::to_string(m.shift) +
                           " (needs multiplier >= 0, shift in [-31, 31])");
  }
  return Status::Ok();
}

// The checks of one op, given its inputs' shapes and parameters.
class OpChecker {
 public:
  OpChecker(const QuantizedOp& op, std::vector<Shape> in_shapes, std::vector<QuantParams> in_params)
      : op_(op), in_(std::move(in_shapes)), in_params_(std::move(in_params)) {}

  Status Check() const {
    const Shape& out = op_.op.output_shape;
    if (ShapeElements(out) == 0 || ShapeElements(out) != op_.op.output_elements) {
      return Bad("output_shape " + model::ShapeString(out) + " does not match output_elements " +
                 std::to_string(op_.op.output_elements));
    }
    if (!InInt8(op_.output.zero_point) || !(op_.output.scale > 0.0f)) {
      return Bad("output zero point must be in [-128, 127] and its scale positive");
    }
    if (!InInt8(op_.activation_min) || !InInt8(op_.activation_max) ||
        op_.activation_min > op_.activation_max) {
      return Bad("activation range [" + std::to_string(op_.activation_min) + ", " +
                 std::to_string(op_.activation_max) + "] is not inside [-128, 127]");
    }
    switch (op_.op.kind) {
      case model::OpKind::kConv2D:
      case model::OpKind::kDepthwiseConv2D:
        return CheckConv();
      case model::OpKind::kDense:
        return CheckDense();
      case model::OpKind::kAdd:
        return CheckAdd();
      case model::OpKind::kMaxPool:
      case model::OpKind::kAvgPool:
        IMPULSE_RETURN_IF_ERROR(CheckWindow(in_[0][0]));
        return CheckSameScale();
      case model::OpKind::kGlobalAvgPool:
        if (in_[0].size() != 3 || out != Shape{in_[0][0]}) return Bad("needs [C,H,W] -> [C]");
        return CheckSameScale();
      case model::OpKind::kClamp:
        if (ShapeElements(in_[0]) != ShapeElements(out))
          return Bad("input and output sizes differ");
        return CheckSameScale();
      case model::OpKind::kSoftmax:
        return CheckSoftmax();
    }
    return Bad("unknown op kind");
  }

 private:
  static Status Bad(const std::string& why) { return InvalidArgument(why); }

  Status CheckWindow(uint32_t out_channels) const {
    const Shape& x = in_[0];
    const Shape& out = op_.op.output_shape;
    if (x.size() != 3 || out.size() != 3) return Bad("needs [C,H,W] input and output");
    if (op_.kernel_h == 0 || op_.kernel_w == 0 || op_.stride_h == 0 || op_.stride_w == 0) {
      return Bad("kernel and stride must be >= 1");
    }
    const uint64_t ph = uint64_t{x[1]} + op_.pad_top + op_.pad_bottom;
    const uint64_t pw = uint64_t{x[2]} + op_.pad_left + op_.pad_right;
    if (ph < op_.kernel_h || pw < op_.kernel_w ||
        out != Shape{out_channels, static_cast<uint32_t>((ph - op_.kernel_h) / op_.stride_h + 1),
                     static_cast<uint32_t>((pw - op_.kernel_w) / op_.stride_w + 1)}) {
      return Bad("output_shape " + model::ShapeString(out) + " does not follow from input " +
                 model::ShapeString(x) + ", kernel, stride and padding");
    }
    const bool pool =
        op_.op.kind == model::OpKind::kMaxPool || op_.op.kind == model::OpKind::kAvgPool;
    if (pool && (op_.pad_top >= op_.kernel_h || op_.pad_bottom >= op_.kernel_h ||
                 op_.pad_left >= op_.kernel_w || op_.pad_right >= op_.kernel_w)) {
      return Bad("pool padding must be smaller than the window");
    }
    return Status::Ok();
  }

  Status CheckChannelTables(uint64_t weights, uint32_t channels) const {
    if (op_.weights.size() != weights) {
      return Bad("has " + std::to_string(op_.weights.size()) + " weights, needs " +
                 std::to_string(weights));
    }
    if (!op_.bias.empty() && op_.bias.size() != channels) {
      return Bad("needs " + std::to_string(channels) + " biases (or none)");
    }
    const size_t multipliers = op_.op.kind == model::OpKind::kDense ? 1 : channels;
    if (op_.output_multipliers.size() != multipliers) {
      return Bad("needs " + std::to_string(multipliers) + " output multipliers, has " +
                 std::to_string(op_.output_multipliers.size()));
    }
    for (const FixedPointMultiplier& m : op_.output_multipliers) {
      IMPULSE_RETURN_IF_ERROR(CheckMultiplier(m, "output multiplier"));
    }
    return Status::Ok();
  }

  Status CheckConv() const {
    const uint32_t filters = op_.op.output_shape.empty() ? 0 : op_.op.output_shape[0];
    IMPULSE_RETURN_IF_ERROR(CheckWindow(filters));
    const uint64_t window = uint64_t{op_.kernel_h} * op_.kernel_w;
    if (op_.op.kind == model::OpKind::kDepthwiseConv2D) {
      if (filters != in_[0][0]) return Bad("a depthwise conv keeps the channel count");
      return CheckChannelTables(filters * window, filters);
    }
    return CheckChannelTables(filters * in_[0][0] * window, filters);
  }

  Status CheckDense() const {
    if (op_.op.output_shape.size() != 1) return Bad("needs a flat [N] output");
    return CheckChannelTables(ShapeElements(in_[0]) * op_.op.output_shape[0],
                              op_.op.output_shape[0]);
  }

  Status CheckAdd() const {
    if (ShapeElements(in_[0]) != ShapeElements(op_.op.output_shape) ||
        ShapeElements(in_[1]) != ShapeElements(op_.op.output_shape)) {
      return Bad("inputs and output sizes differ");
    }
    if (op_.input_multipliers.size() != 2) return Bad("needs two input multipliers");
    for (const FixedPointMultiplier& m : op_.input_multipliers) {
      IMPULSE_RETURN_IF_ERROR(CheckMultiplier(m, "input multiplier"));
      // The left-shifted input (< 2^28) times a multiplier below 1 fits int32.
      if (m.shift > 0) return Bad("input multipliers must be below 1 (shift <= 0)");
    }
    return CheckMultiplier(op_.add_output_multiplier, "output multiplier");
  }

  Status CheckSameScale() const {
    if (in_params_[0].zero_point != op_.output.zero_point ||
        in_params_[0].scale != op_.output.scale) {
      return Bad("the output must keep the input's scale and zero point");
    }
    return Status::Ok();
  }

  Status CheckSoftmax() const {
    if (in_[0].size() != 1 || op_.op.output_shape != in_[0] || in_[0][0] >= (1u << 16)) {
      return Bad("needs a flat input of fewer than 65536 logits and an output of its shape");
    }
    if (op_.exp_table.size() != 256 || op_.exp_table[0] != (1u << 16)) {
      return Bad("needs a 256-entry exp_table starting at 65536");
    }
    for (uint32_t e : op_.exp_table) {
      if (e > (1u << 16)) return Bad("exp_table entries must be <= 65536");
    }
    if (op_.output.zero_point != -128 || op_.output.scale != 1.0f / 256.0f) {
      return Bad("the softmax output has scale 1/256 and zero point -128");
    }
    return Status::Ok();
  }

  const QuantizedOp& op_;
  std::vector<Shape> in_;
  std::vector<QuantParams> in_params_;
};

Status CheckArena(const QuantizedModel& model) {
  const size_t n = model.ops.size() - 1;
  const auto& buffers = model.buffers;
  const auto& offsets = model.arena.offsets;
  if (buffers.size() != n || offsets.size() != n) {
    return InvalidArgument("arena: needs one buffer per op output but the last (" +
                           std::to_string(n) + "), has " + std::to_string(buffers.size()) +
                           " buffers and " + std::to_string(offsets.size()) + " offsets");
  }
  for (size_t i = 0; i < n; ++i) {
    const std::string what = "arena: buffer " + std::to_string(i);
    if (buffers[i].bytes < model.ops[i].op.output_elements || buffers[i].first > int(i) ||
        offsets[i] + buffers[i].bytes > model.arena.arena_bytes) {
      return InvalidArgument(what + " is smaller than op " + std::to_string(i) +
                             "'s output, starts after it, or ends past the arena");
    }
    for (size_t j = i + 1; j < model.ops.size(); ++j) {
      for (int input : model.ops[j].op.inputs) {
        if (input == int(i) && buffers[i].last < int(j)) {
          return InvalidArgument(what + " is released before op " + std::to_string(j) +
                                 " reads it");
        }
      }
    }
    for (size_t j = 0; j < i; ++j) {
      const bool live = buffers[i].first <= buffers[j].last && buffers[j].first <= buffers[i].last;
      const bool apart = offsets[i] + buffers[i].bytes <= offsets[j] ||
                         offsets[j] + buffers[j].bytes <= offsets[i];
      if (live && !apart && buffers[i].bytes > 0 && buffers[j].bytes > 0) {
        return InvalidArgument(what + " overlaps buffer " + std::to_string(j) +
                               " while both are alive");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Status CheckQuantizedModel(const QuantizedModel& model) {
  if (model.input_shape.size() != 3 || ShapeElements(model.input_shape) == 0) {
    return InvalidArgument("input_shape: needs [C,H,W], got " +
                           model::ShapeString(model.input_shape));
  }
  if (!InInt8(model.input.zero_point)) {
    return InvalidArgument("input: zero point must be in [-128, 127]");
  }
  if (model.ops.empty()) return InvalidArgument("ops: the model has no op");
  for (size_t i = 0; i < model.ops.size(); ++i) {
    const QuantizedOp& op = model.ops[i];
    const std::string where = "ops[" + std::to_string(i) + "] (" + op.name + ")";
    const size_t arity = op.op.kind == model::OpKind::kAdd ? 2 : 1;
    if (op.op.inputs.size() != arity) {
      return InvalidArgument(where + ": needs " + std::to_string(arity) + " input(s)");
    }
    std::vector<Shape> shapes;
    std::vector<QuantParams> params;
    for (int input : op.op.inputs) {
      if (input < -1 || input >= static_cast<int>(i)) {
        return InvalidArgument(where + ": input " + std::to_string(input) +
                               " is not an earlier op or the model input (-1)");
      }
      shapes.push_back(input < 0 ? model.input_shape : model.ops[input].op.output_shape);
      params.push_back(input < 0 ? model.input : model.ops[input].output);
    }
    const Status status = OpChecker(op, std::move(shapes), std::move(params)).Check();
    if (!status.ok()) return InvalidArgument(where + ": " + status.message());
  }
  return CheckArena(model);
}

}  // namespace impulse::worker::int8
