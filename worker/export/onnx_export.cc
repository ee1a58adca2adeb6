#include "worker/export/onnx_export.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "worker/export/onnx_builder.h"

namespace impulse::worker::exporters {
namespace {

constexpr int32_t kFloat = onnx::TensorProto_DataType_FLOAT;

std::vector<int64_t> Dims(const google::protobuf::RepeatedField<uint32_t>& shape) {
  return std::vector<int64_t>(shape.begin(), shape.end());
}

// Walks the layers in order, keeping the ONNX value name of each layer's
// output.
class FloatExporter {
 public:
  explicit FloatExporter(const model::LayerGraph& graph) : graph_(graph), b_(Name(graph)) {}

  Result<onnx::ModelProto> Run(const OnnxExportInfo& info) {
    const v1::Model& model = graph_.model();
    const uint32_t classes = graph_.classes();
    if (model.labels_size() == 0 || static_cast<uint32_t>(model.labels_size()) != classes) {
      return InvalidArgument("export: the model has " + std::to_string(model.labels_size()) +
                             " labels for " + std::to_string(classes) + " outputs");
    }
    IMPULSE_RETURN_IF_ERROR(graph_.CheckWeights().WithContext("export"));

    std::vector<int64_t> input_dims = {kDynamicDim};
    for (uint32_t d : graph_.input_shape()) input_dims.push_back(d);
    b_.AddInput(kOnnxInputName, kFloat, input_dims);
    b_.AddOutput(kOnnxOutputName, kFloat, {kDynamicDim, static_cast<int64_t>(classes)});

    values_.assign(graph_.size(), "");
    const int last = graph_.size() - 1;
    for (int i = 0; i < graph_.size(); ++i) {
      const bool is_output = i == last && graph_.layer(i).kind() == v1::LAYER_KIND_SOFTMAX;
      IMPULSE_RETURN_IF_ERROR(AddLayer(i, is_output));
    }
    if (graph_.layer(last).kind() != v1::LAYER_KIND_SOFTMAX) {
      auto& softmax = b_.AddNode("Softmax", "softmax", {values_[last]}, {kOnnxOutputName});
      OnnxGraphBuilder::SetAttribute(softmax, "axis", int64_t{-1});
    }

    const auto metadata = ExportMetadata(info, {model.labels().begin(), model.labels().end()},
                                         model.architecture(), graph_.input_shape());
    std::string doc = "Impulse Cluster float32 model";
    if (!info.impulse_name.empty()) doc += " of impulse '" + info.impulse_name + "'";
    if (!model.provenance().empty()) doc += "; " + model.provenance();
    return b_.Finish(metadata, doc);
  }

 private:
  static std::string Name(const model::LayerGraph& graph) {
    const std::string& arch = graph.model().architecture();
    return arch.empty() ? "impulse_model" : arch;
  }

  // The tensor "<layer>.<param>" as an initializer of the same name.
  std::string Weight(const v1::Layer& layer, const std::string& param) {
    const v1::Tensor* t = graph_.FindWeight(layer.name() + "." + param);
    // CheckWeights() passed, so every tensor a layer needs is present.
    return b_.AddRawInitializer(t->name(), kFloat, Dims(t->shape()), t->data());
  }

  std::string Input(const v1::Layer& layer, int k) { return values_[layer.inputs(k)]; }

  static std::vector<int64_t> Pads(const v1::Layer& l) {
    return {l.pad_top(), l.pad_left(), l.pad_bottom(), l.pad_right()};
  }
  static std::vector<int64_t> Strides(const v1::Layer& l) {
    return {std::max<int64_t>(1, l.stride_h()), std::max<int64_t>(1, l.stride_w())};
  }

  // The Clip bounds of ReLU6, shared by every RELU6 node.
  std::pair<std::string, std::string> Relu6Bounds() {
    if (!relu6_min_) {
      const float zero = 0.0f, six = 6.0f;
      relu6_min_ = b_.AddFloatInitializer("relu6_min", {}, std::span<const float>(&zero, 1));
      relu6_max_ = b_.AddFloatInitializer("relu6_max", {}, std::span<const float>(&six, 1));
    }
    return {*relu6_min_, *relu6_max_};
  }

  Status AddLayer(int i, bool is_output) {
    const v1::Layer& l = graph_.layer(i);
    const std::string out = is_output ? kOnnxOutputName : b_.UniqueName(l.name());
    using B = OnnxGraphBuilder;
    switch (l.kind()) {
      case v1::LAYER_KIND_INPUT:
        values_[i] = kOnnxInputName;
        return Status::Ok();
      case v1::LAYER_KIND_DROPOUT:
        values_[i] = Input(l, 0);
        return Status::Ok();
      case v1::LAYER_KIND_CONV2D:
      case v1::LAYER_KIND_DEPTHWISE_CONV2D: {
        std::vector<std::string> inputs = {Input(l, 0), Weight(l, "weight")};
        if (l.bias()) inputs.push_back(Weight(l, "bias"));
        auto& node = b_.AddNode("Conv", l.name(), inputs, {out});
        B::SetAttribute(node, "kernel_shape", std::vector<int64_t>{l.kernel_h(), l.kernel_w()});
        B::SetAttribute(node, "strides", Strides(l));
        B::SetAttribute(node, "pads", Pads(l));
        B::SetAttribute(node, "dilations", std::vector<int64_t>{1, 1});
        // LayerGraph reads groups 0 as 1 and has checked that a depthwise
        // layer's groups equal its channels.
        B::SetAttribute(node, "group", std::max<int64_t>(1, l.groups()));
        break;
      }
      case v1::LAYER_KIND_BATCH_NORM: {
        auto& node = b_.AddNode("BatchNormalization", l.name(),
                                {Input(l, 0), Weight(l, "weight"), Weight(l, "bias"),
                                 Weight(l, "running_mean"), Weight(l, "running_var")},
                                {out});
        B::SetAttribute(node, "epsilon", l.epsilon() == 0 ? 1e-3f : l.epsilon());
        break;
      }
      case v1::LAYER_KIND_RELU:
        b_.AddNode("Relu", l.name(), {Input(l, 0)}, {out});
        break;
      case v1::LAYER_KIND_RELU6: {
        auto [lo, hi] = Relu6Bounds();
        b_.AddNode("Clip", l.name(), {Input(l, 0), lo, hi}, {out});
        break;
      }
      case v1::LAYER_KIND_MAX_POOL:
      case v1::LAYER_KIND_AVG_POOL: {
        const bool max = l.kind() == v1::LAYER_KIND_MAX_POOL;
        auto& node = b_.AddNode(max ? "MaxPool" : "AveragePool", l.name(), {Input(l, 0)}, {out});
        B::SetAttribute(node, "kernel_shape", std::vector<int64_t>{l.kernel_h(), l.kernel_w()});
        B::SetAttribute(node, "strides", Strides(l));
        B::SetAttribute(node, "pads", Pads(l));
        if (!max) B::SetAttribute(node, "count_include_pad", int64_t{0});
        break;
      }
      case v1::LAYER_KIND_GLOBAL_AVG_POOL: {
        // [N, C, H, W] -> [N, C, 1, 1] -> [N, C], the layer's [C].
        const std::string pooled = b_.UniqueName(l.name() + "_nchw");
        b_.AddNode("GlobalAveragePool", l.name(), {Input(l, 0)}, {pooled});
        auto& flatten = b_.AddNode("Flatten", l.name() + "_flatten", {pooled}, {out});
        B::SetAttribute(flatten, "axis", int64_t{1});
        break;
      }
      case v1::LAYER_KIND_FLATTEN: {
        auto& node = b_.AddNode("Flatten", l.name(), {Input(l, 0)}, {out});
        B::SetAttribute(node, "axis", int64_t{1});
        break;
      }
      case v1::LAYER_KIND_DENSE: {
        std::vector<std::string> inputs = {Input(l, 0), Weight(l, "weight")};
        if (l.bias()) inputs.push_back(Weight(l, "bias"));
        auto& node = b_.AddNode("Gemm", l.name(), inputs, {out});
        B::SetAttribute(node, "transB", int64_t{1});
        break;
      }
      case v1::LAYER_KIND_ADD:
        b_.AddNode("Add", l.name(), {Input(l, 0), Input(l, 1)}, {out});
        break;
      case v1::LAYER_KIND_SOFTMAX: {
        auto& node = b_.AddNode("Softmax", l.name(), {Input(l, 0)}, {out});
        B::SetAttribute(node, "axis", int64_t{-1});
        break;
      }
      default:
        return InvalidArgument("export: layers[" + std::to_string(i) + "] (" + l.name() +
                               ") has kind " + std::to_string(l.kind()) +
                               ", which the ONNX exporter does not know");
    }
    values_[i] = out;
    return Status::Ok();
  }

  const model::LayerGraph& graph_;
  OnnxGraphBuilder b_;
  std::vector<std::string> values_;  // ONNX value of each layer's output
  std::optional<std::string> relu6_min_, relu6_max_;
};

}  // namespace

std::string NormalizationNote(const v1::Impulse& impulse) {
  const bool gray = impulse.processing().color() == v1::COLOR_DEPTH_GRAYSCALE;
  std::string note = "pixels / 255, NCHW, ";
  note += gray ? "grayscale (BT.601 luma, 1 channel)" : "RGB (3 channels)";
  const char* resize = "squash";
  if (impulse.input().resize() == v1::RESIZE_MODE_FIT_SHORTEST) resize = "fit-shortest";
  if (impulse.input().resize() == v1::RESIZE_MODE_FIT_LONGEST) resize = "fit-longest";
  note += "; images resized to " + std::to_string(impulse.input().width()) + "x" +
          std::to_string(impulse.input().height()) + " (" + resize + ")";
  return note;
}

Result<onnx::ModelProto> BuildFloatOnnx(const model::LayerGraph& graph,
                                        const OnnxExportInfo& info) {
  if (graph.size() == 0 || graph.layer(0).kind() != v1::LAYER_KIND_INPUT) {
    return InvalidArgument("export: the model has no INPUT layer");
  }
  return FloatExporter(graph).Run(info);
}

std::map<std::string, std::string> ExportMetadata(const OnnxExportInfo& info,
                                                  const std::vector<std::string>& labels,
                                                  const std::string& architecture,
                                                  const std::vector<uint32_t>& input_shape) {
  return {
      {"labels", nlohmann::json(labels).dump()},
      {"normalization", info.normalization},
      {"impulse", info.impulse_name},
      {"architecture", architecture},
      {"input_shape", model::ShapeString(input_shape)},
  };
}

Status CheckAndWriteOnnx(const onnx::ModelProto& model, const std::string& file,
                         const std::string& path) {
  if (Status checked = CheckOnnxModel(model); !checked.ok()) {
    return Internal(file + ": " + checked.message());
  }
  return WriteOnnxFile(model, path);
}

Status ExportFloatOnnx(const model::LayerGraph& graph, const OnnxExportInfo& info,
                       const std::string& path) {
  IMPULSE_ASSIGN_OR_RETURN(onnx::ModelProto model, BuildFloatOnnx(graph, info));
  return CheckAndWriteOnnx(model, "model_f32.onnx", path);
}

}  // namespace impulse::worker::exporters
