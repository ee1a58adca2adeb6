#include "worker/export/onnx_qdq_export.h"

#include <bit>
#include <map>
#include <span>
#include <vector>

#include "worker/export/onnx_builder.h"

namespace impulse::worker::exporters {
namespace {

using B = OnnxGraphBuilder;
using int8::QuantizedModel;
using int8::QuantizedOp;
using int8::QuantParams;
using model::OpKind;

constexpr int32_t kFloat = onnx::TensorProto_DataType_FLOAT;
constexpr int32_t kInt8 = onnx::TensorProto_DataType_INT8;
constexpr int32_t kUint8 = onnx::TensorProto_DataType_UINT8;
constexpr int32_t kInt32 = onnx::TensorProto_DataType_INT32;

template <typename T>
std::string Bytes(std::span<const T> values) {
  // int8 / int32 / float are little-endian on every host we build for, as
  // raw_data wants.
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

uint64_t Elements(const std::vector<uint32_t>& shape) {
  uint64_t n = 1;
  for (uint32_t d : shape) n *= d;
  return n;
}

// An int8 tensor of the graph: its ONNX value, shape without the batch axis
// (as FusedOp::output_shape) and quantization.
struct QTensor {
  std::string value;
  std::vector<uint32_t> shape;
  QuantParams params;
};

// Walks the ops in order, keeping each op output's int8 value.
class QdqExporter {
 public:
  explicit QdqExporter(const QuantizedModel& model)
      : model_(model), b_(model.architecture.empty() ? "impulse_model_i8" : model.architecture) {}

  Result<onnx::ModelProto> Run(const OnnxExportInfo& info) {
    if (model_.ops.empty()) return InvalidArgument("int8 export: the model has no ops");
    const uint64_t classes = model_.ops.back().op.output_elements;
    if (model_.labels.size() != classes) {
      return InvalidArgument("int8 export: the model has " + std::to_string(model_.labels.size()) +
                             " labels for " + std::to_string(classes) + " outputs");
    }
    if (model_.input_shape.size() != 3) {
      return InvalidArgument("int8 export: the input shape " +
                             model::ShapeString(model_.input_shape) + " is not [C,H,W]");
    }
    std::vector<int64_t> input_dims = {kDynamicDim};
    for (uint32_t d : model_.input_shape) input_dims.push_back(d);
    b_.AddInput(kOnnxInputName, kFloat, input_dims);
    b_.AddOutput(kOnnxOutputName, kFloat, {kDynamicDim, static_cast<int64_t>(classes)});

    input_ = {Quantize(kOnnxInputName, model_.input, "input"), model_.input_shape, model_.input};
    for (size_t i = 0; i < model_.ops.size(); ++i) {
      IMPULSE_RETURN_IF_ERROR(AddOp(static_cast<int>(i)));
    }
    AddScores();

    auto metadata = ExportMetadata(info, model_.labels, model_.architecture, model_.input_shape);
    metadata["quantization"] = model_.method;
    std::string doc = "Impulse Cluster int8 model (QDQ)";
    if (!info.impulse_name.empty()) doc += " of impulse '" + info.impulse_name + "'";
    doc += "; activation ranges: " + model_.method;
    return b_.Finish(metadata, doc);
  }

 private:
  // Scale and zero point initializers of an activation's parameters, shared
  // by every Q / DQ node that uses the same pair. The zero point is
  // uint8: our int8 code q is the uint8 code q + 128 (see the header).
  std::pair<std::string, std::string> Params(const QuantParams& p) {
    const auto key = std::make_pair(std::bit_cast<uint32_t>(p.scale), p.zero_point);
    auto it = params_.find(key);
    if (it != params_.end()) return it->second;
    const uint8_t zp = static_cast<uint8_t>(p.zero_point + 128);
    const std::string scale =
        b_.AddFloatInitializer("scale", {}, std::span<const float>(&p.scale, 1));
    const std::string zero =
        b_.AddRawInitializer("zero_point", kUint8, {}, Bytes(std::span<const uint8_t>(&zp, 1)));
    return params_[key] = {scale, zero};
  }

  std::string Quantize(const std::string& x, const QuantParams& p, const std::string& hint) {
    const auto [scale, zero] = Params(p);
    const std::string out = b_.UniqueName(hint + "_q");
    b_.AddNode("QuantizeLinear", hint + "_quantize", {x, scale, zero}, {out});
    return out;
  }

  // One DequantizeLinear per reader, as QDQ runtimes expect when they fuse
  // DQ -> op -> Q groups (one Q per tensor: its writer's group owns it).
  std::string Dequantize(const QTensor& t, const std::string& reader) {
    const auto [scale, zero] = Params(t.params);
    const std::string out = b_.UniqueName(reader + "_in");
    b_.AddNode("DequantizeLinear", reader + "_dequantize", {t.value, scale, zero}, {out});
    return out;
  }

  // `t` as [N, elements]: Flatten of the quantized tensor, which in NCHW
  // memory is our [C, H, W] C-major order.
  QTensor Flattened(const QTensor& t, const std::string& hint) {
    if (t.shape.size() <= 1) return t;
    const std::string out = b_.UniqueName(hint + "_flat");
    auto& node = b_.AddNode("Flatten", hint + "_flatten", {t.value}, {out});
    B::SetAttribute(node, "axis", int64_t{1});
    return {out, {static_cast<uint32_t>(Elements(t.shape))}, t.params};
  }

  // Int8 weights with per-output-channel scales (axis 0) or one
  // per-tensor scale, dequantized for the op.
  std::string Weights(const QuantizedOp& q, const std::vector<int64_t>& dims, bool per_channel) {
    const std::vector<int64_t> scale_dims =
        per_channel ? std::vector<int64_t>{static_cast<int64_t>(q.weight_scales.size())}
                    : std::vector<int64_t>{};
    const std::string w = b_.AddRawInitializer(q.name + ".weight_q", kInt8, dims,
                                               Bytes(std::span<const int8_t>(q.weights)));
    const std::string scale =
        b_.AddFloatInitializer(q.name + ".weight_scale", scale_dims, q.weight_scales);
    const std::vector<int8_t> zeros(q.weight_scales.size(), 0);
    const std::string zero = b_.AddRawInitializer(q.name + ".weight_zero_point", kInt8, scale_dims,
                                                  Bytes(std::span<const int8_t>(zeros)));
    const std::string out = b_.UniqueName(q.name + ".weight");
    auto& node =
        b_.AddNode("DequantizeLinear", q.name + "_weight_dequantize", {w, scale, zero}, {out});
    if (per_channel) B::SetAttribute(node, "axis", int64_t{0});
    return out;
  }

  // The int32 bias at scale input scale x weight scale[c] (per channel as
  // the weights are), zero point 0.
  std::string Bias(const QuantizedOp& q, float input_scale, bool per_channel) {
    const size_t n = per_channel ? q.weight_scales.size() : 1;
    std::vector<float> scales(n);
    for (size_t c = 0; c < n; ++c) scales[c] = input_scale * q.weight_scales[c];
    const std::vector<int32_t> zeros(n, 0);
    const std::vector<int64_t> scale_dims =
        per_channel ? std::vector<int64_t>{static_cast<int64_t>(n)} : std::vector<int64_t>{};
    const std::string bias =
        b_.AddRawInitializer(q.name + ".bias_q", kInt32, {static_cast<int64_t>(q.bias.size())},
                             Bytes(std::span<const int32_t>(q.bias)));
    const std::string scale = b_.AddFloatInitializer(q.name + ".bias_scale", scale_dims, scales);
    const std::string zero = b_.AddRawInitializer(q.name + ".bias_zero_point", kInt32, scale_dims,
                                                  Bytes(std::span<const int32_t>(zeros)));
    const std::string out = b_.UniqueName(q.name + ".bias");
    auto& node =
        b_.AddNode("DequantizeLinear", q.name + "_bias_dequantize", {bias, scale, zero}, {out});
    if (per_channel) B::SetAttribute(node, "axis", int64_t{0});
    return out;
  }

  // The op's int8 clamp where it is narrower than the output Q's own
  // saturation (see the header); returns the float value to quantize.
  std::string Clamp(const QuantizedOp& q, const std::string& y) {
    const int32_t lo = q.activation_min, hi = q.activation_max;
    if (lo <= -128 && hi >= 127) return y;
    const std::string out = b_.UniqueName(q.name + "_act");
    if (hi >= 127 && lo == q.output.zero_point) {
      b_.AddNode("Relu", q.name + "_relu", {y}, {out});
      return out;
    }
    const float bounds[2] = {q.output.scale * static_cast<float>(lo - q.output.zero_point),
                             q.output.scale * static_cast<float>(hi - q.output.zero_point)};
    const std::string min = b_.AddFloatInitializer(q.name + ".clip_min", {}, {&bounds[0], 1});
    const std::string max = b_.AddFloatInitializer(q.name + ".clip_max", {}, {&bounds[1], 1});
    b_.AddNode("Clip", q.name + "_clip", {y, min, max}, {out});
    return out;
  }

  Status Bad(int i, const std::string& what) const {
    return InvalidArgument("int8 export: ops[" + std::to_string(i) + "] (" + model_.ops[i].name +
                           "): " + what);
  }

  Status AddOp(int i) {
    const QuantizedOp& q = model_.ops[i];
    const size_t arity = q.op.kind == OpKind::kAdd ? 2 : 1;
    if (q.op.inputs.size() != arity) return Bad(i, "wrong number of inputs");
    std::vector<QTensor> in;
    for (int t : q.op.inputs) {
      if (t < -1 || t >= i) return Bad(i, "input " + std::to_string(t) + " is not an earlier op");
      in.push_back(t == -1 ? input_ : tensors_[t]);
    }
    Result<std::string> y = Compute(i, in);
    if (!y.ok()) return y.status();
    QTensor out{Quantize(Clamp(q, *y), q.output, q.name), q.op.output_shape, q.output};
    if (q.op.kind == OpKind::kGlobalAvgPool) {
      // ONNX keeps [N, C, 1, 1]; our op's output is [C].
      out = Flattened({out.value, {q.op.output_shape.at(0), 1, 1}, out.params}, q.name);
    }
    tensors_.push_back(std::move(out));
    return Status::Ok();
  }

  // The op's float computation on dequantized inputs; returns its output.
  Result<std::string> Compute(int i, const std::vector<QTensor>& in) {
    const QuantizedOp& q = model_.ops[i];
    const std::string y = b_.UniqueName(q.name);
    const std::vector<int64_t> kernel = {q.kernel_h, q.kernel_w};
    const std::vector<int64_t> strides = {q.stride_h, q.stride_w};
    const std::vector<int64_t> pads = {q.pad_top, q.pad_left, q.pad_bottom, q.pad_right};
    switch (q.op.kind) {
      case OpKind::kConv2D:
      case OpKind::kDepthwiseConv2D: {
        const bool depthwise = q.op.kind == OpKind::kDepthwiseConv2D;
        if (in[0].shape.size() != 3 || q.op.output_shape.size() != 3) {
          return Bad(i, "a convolution needs [C,H,W] input and output");
        }
        const int64_t out_c = q.op.output_shape[0], in_c = in[0].shape[0];
        if (depthwise && out_c != in_c) return Bad(i, "a depthwise conv keeps its channels");
        const std::vector<int64_t> dims = {out_c, depthwise ? 1 : in_c, kernel[0], kernel[1]};
        IMPULSE_RETURN_IF_ERROR(CheckParameters(i, dims, out_c));
        auto& node = b_.AddNode(
            "Conv", q.name,
            {Dequantize(in[0], q.name), Weights(q, dims, true), Bias(q, in[0].params.scale, true)},
            {y});
        B::SetAttribute(node, "kernel_shape", kernel);
        B::SetAttribute(node, "strides", strides);
        B::SetAttribute(node, "pads", pads);
        B::SetAttribute(node, "dilations", std::vector<int64_t>{1, 1});
        B::SetAttribute(node, "group", depthwise ? out_c : int64_t{1});
        return y;
      }
      case OpKind::kDense: {
        const QTensor flat = Flattened(in[0], q.name);
        const int64_t units = q.op.output_elements, inputs = flat.shape[0];
        IMPULSE_RETURN_IF_ERROR(CheckParameters(i, {units, inputs}, 1));
        auto& node = b_.AddNode("Gemm", q.name,
                                {Dequantize(flat, q.name), Weights(q, {units, inputs}, false),
                                 Bias(q, flat.params.scale, false)},
                                {y});
        B::SetAttribute(node, "transB", int64_t{1});
        return y;
      }
      case OpKind::kAdd:
        b_.AddNode("Add", q.name, {Dequantize(in[0], q.name), Dequantize(in[1], q.name)}, {y});
        return y;
      case OpKind::kMaxPool:
      case OpKind::kAvgPool: {
        const bool max = q.op.kind == OpKind::kMaxPool;
        auto& node =
            b_.AddNode(max ? "MaxPool" : "AveragePool", q.name, {Dequantize(in[0], q.name)}, {y});
        B::SetAttribute(node, "kernel_shape", kernel);
        B::SetAttribute(node, "strides", strides);
        B::SetAttribute(node, "pads", pads);
        if (!max) B::SetAttribute(node, "count_include_pad", int64_t{0});
        return y;
      }
      case OpKind::kGlobalAvgPool:
        b_.AddNode("GlobalAveragePool", q.name, {Dequantize(in[0], q.name)}, {y});
        return y;
      case OpKind::kClamp:
        // The clamp itself is added by Clamp(); this is its dequantized input.
        return Dequantize(in[0], q.name);
      case OpKind::kSoftmax: {
        auto& node = b_.AddNode("Softmax", q.name, {Dequantize(in[0], q.name)}, {y});
        B::SetAttribute(node, "axis", int64_t{-1});
        return y;
      }
    }
    return Bad(i, "op kind " + std::to_string(static_cast<int>(q.op.kind)) +
                      " unknown to the int8 exporter");
  }

  // Weights of `dims`, `scales` weight scales (1 for dense) or one per
  // output channel, a bias per output channel.
  Status CheckParameters(int i, const std::vector<int64_t>& dims, int64_t scales) const {
    const QuantizedOp& q = model_.ops[i];
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    const size_t want_scales = scales == 1 ? 1 : static_cast<size_t>(dims[0]);
    if (q.weights.size() != static_cast<size_t>(n)) {
      return Bad(
          i, std::to_string(q.weights.size()) + " weights, the shapes need " + std::to_string(n));
    }
    if (q.weight_scales.size() != want_scales) {
      return Bad(i, std::to_string(q.weight_scales.size()) + " weight scales, expected " +
                        std::to_string(want_scales));
    }
    if (q.bias.size() != static_cast<size_t>(dims[0])) {
      return Bad(i, std::to_string(q.bias.size()) + " biases for " + std::to_string(dims[0]) +
                        " output channels");
    }
    return Status::Ok();
  }

  // "scores": the dequantized softmax, or a float softmax of the
  // dequantized logits when the model has none.
  void AddScores() {
    const QTensor& last = tensors_.back();
    const auto [scale, zero] = Params(last.params);
    if (model_.ops.back().op.kind == OpKind::kSoftmax) {
      b_.AddNode("DequantizeLinear", "scores_dequantize", {last.value, scale, zero},
                 {kOnnxOutputName});
      return;
    }
    const std::string logits = Dequantize(last, "logits");
    auto& node = b_.AddNode("Softmax", "softmax", {logits}, {kOnnxOutputName});
    B::SetAttribute(node, "axis", int64_t{-1});
  }

  const QuantizedModel& model_;
  OnnxGraphBuilder b_;
  QTensor input_;
  std::vector<QTensor> tensors_;  // op i's output
  std::map<std::pair<uint32_t, int32_t>, std::pair<std::string, std::string>> params_;
};

}  // namespace

Result<onnx::ModelProto> BuildQdqOnnx(const int8::QuantizedModel& model,
                                      const OnnxExportInfo& info) {
  return QdqExporter(model).Run(info);
}

Status ExportQdqOnnx(const int8::QuantizedModel& model, const OnnxExportInfo& info,
                     const std::string& path) {
  IMPULSE_ASSIGN_OR_RETURN(onnx::ModelProto onnx_model, BuildQdqOnnx(model, info));
  return CheckAndWriteOnnx(onnx_model, "model_i8.onnx", path);
}

}  // namespace impulse::worker::exporters
