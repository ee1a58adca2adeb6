#include "worker/training/graph_module.h"

#include <cstring>

namespace impulse::worker::training {
namespace {

namespace F = torch::nn::functional;

bool Symmetric(const v1::Layer& l) {
  return l.pad_top() == l.pad_bottom() && l.pad_left() == l.pad_right();
}

// Explicit zero (or `value`) padding for the asymmetric case; LibTorch's
// conv and pool options take symmetric padding only.
torch::Tensor PadAsymmetric(const torch::Tensor& x, const v1::Layer& l, double value) {
  return F::pad(
      x,
      F::PadFuncOptions({l.pad_left(), l.pad_right(), l.pad_top(), l.pad_bottom()}).value(value));
}

uint32_t OrOne(uint32_t v) { return v == 0 ? 1 : v; }

}  // namespace

GraphModuleImpl::GraphModuleImpl(const model::LayerGraph& graph) {
  logits_layer_ = graph.logits_layer();
  specs_ = graph.AllWeightSpecs();
  nodes_.resize(graph.size());
  for (int i = 0; i < graph.size(); ++i) {
    Node& node = nodes_[i];
    node.layer = graph.layer(i);
    node.layer.clear_output_shape();
    node.backbone = node.layer.role() == v1::LAYER_ROLE_BACKBONE;
    for (uint32_t j : node.layer.inputs()) {
      node.inputs.push_back(static_cast<int>(j));
      nodes_[j].last_use = i;
    }
    const v1::Layer& l = node.layer;
    const auto& in_shape = i == 0 ? graph.layer(0).output_shape()
                                  : graph.layer(static_cast<int>(l.inputs(0))).output_shape();
    switch (l.kind()) {
      case v1::LAYER_KIND_CONV2D:
      case v1::LAYER_KIND_DEPTHWISE_CONV2D: {
        auto options =
            torch::nn::Conv2dOptions(in_shape[0], l.filters(), {l.kernel_h(), l.kernel_w()})
                .stride({OrOne(l.stride_h()), OrOne(l.stride_w())})
                .groups(OrOne(l.groups()))
                .bias(l.bias());
        if (Symmetric(l)) options.padding(torch::ExpandingArray<2>({l.pad_top(), l.pad_left()}));
        node.conv = register_module(l.name(), torch::nn::Conv2d(options));
        break;
      }
      case v1::LAYER_KIND_BATCH_NORM: {
        const double eps = l.epsilon() > 0 ? l.epsilon() : 1e-3;
        const double momentum = l.momentum() > 0 ? l.momentum() : 0.1;
        if (in_shape.size() == 3) {
          node.bn2d = register_module(
              l.name(), torch::nn::BatchNorm2d(
                            torch::nn::BatchNormOptions(in_shape[0]).eps(eps).momentum(momentum)));
        } else {
          node.bn1d = register_module(
              l.name(), torch::nn::BatchNorm1d(
                            torch::nn::BatchNormOptions(in_shape[0]).eps(eps).momentum(momentum)));
        }
        break;
      }
      case v1::LAYER_KIND_DENSE:
        node.linear = register_module(
            l.name(),
            torch::nn::Linear(torch::nn::LinearOptions(in_shape[0], l.filters()).bias(l.bias())));
        break;
      default:
        break;
    }
  }
  nodes_[logits_layer_].last_use = static_cast<int>(nodes_.size());
  for (const Node& node : nodes_) {
    if (node.layer.kind() == v1::LAYER_KIND_DEPTHWISE_CONV2D) channels_last_ = true;
  }
}

torch::Tensor GraphModuleImpl::forward(torch::Tensor x) {
  std::vector<torch::Tensor> outputs(nodes_.size());
  // oneDNN then keeps every 4-D activation NHWC (same values, other strides).
  if (channels_last_ && x.dim() == 4) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  outputs[0] = std::move(x);
  for (int i = 1; i <= logits_layer_; ++i) {
    Node& node = nodes_[i];
    const v1::Layer& l = node.layer;
    const torch::Tensor& in = outputs[node.inputs[0]];
    torch::Tensor out;
    switch (l.kind()) {
      case v1::LAYER_KIND_CONV2D:
      case v1::LAYER_KIND_DEPTHWISE_CONV2D:
        out = node.conv->forward(Symmetric(l) ? in : PadAsymmetric(in, l, 0.0));
        // A one-channel input is NCHW and NHWC at once, so the first
        // convolution may answer NCHW and every layer after it would follow
        // (a grayscale MobileNet then ran up to 1.7x slower).
        if (channels_last_) out = out.contiguous(torch::MemoryFormat::ChannelsLast);
        break;
      case v1::LAYER_KIND_BATCH_NORM:
        out = node.bn2d ? node.bn2d->forward(in) : node.bn1d->forward(in);
        break;
      case v1::LAYER_KIND_RELU:
        out = InPlaceOk(i) ? torch::relu_(outputs[node.inputs[0]]) : torch::relu(in);
        break;
      case v1::LAYER_KIND_RELU6:
        // hardtanh(0, 6) is min(max(x, 0), 6), as torch.nn.ReLU6 computes it.
        out = InPlaceOk(i) ? torch::hardtanh_(outputs[node.inputs[0]], 0.0, 6.0)
                           : torch::hardtanh(in, 0.0, 6.0);
        break;
      case v1::LAYER_KIND_MAX_POOL:
      case v1::LAYER_KIND_AVG_POOL: {
        const bool max = l.kind() == v1::LAYER_KIND_MAX_POOL;
        torch::Tensor padded = in;
        std::vector<int64_t> padding = {0, 0};
        if (Symmetric(l)) {
          padding = {l.pad_top(), l.pad_left()};
        } else {
          padded = PadAsymmetric(in, l, max ? -std::numeric_limits<double>::infinity() : 0.0);
        }
        const std::vector<int64_t> kernel = {l.kernel_h(), l.kernel_w()};
        const std::vector<int64_t> stride = {OrOne(l.stride_h()), OrOne(l.stride_w())};
        out = max ? torch::max_pool2d(padded, kernel, stride, padding)
                  : torch::avg_pool2d(padded, kernel, stride, padding, false,
                                      /*count_include_pad=*/false);
        if (!max && !Symmetric(l)) {
          // The explicit zero padding above was counted by avg_pool2d; divide
          // by each window's share of real cells so padding is not counted,
          // as model.proto and ONNX's AveragePool define it.
          const torch::Tensor real = PadAsymmetric(
              torch::ones({1, 1, in.size(2), in.size(3)}, in.options()), l, 0.0);
          out = out / torch::avg_pool2d(real, kernel, stride, padding);
        }
        break;
      }
      case v1::LAYER_KIND_GLOBAL_AVG_POOL:
        out = in.mean({2, 3});
        break;
      case v1::LAYER_KIND_FLATTEN:
        out = in.flatten(1);
        break;
      case v1::LAYER_KIND_DROPOUT:
        out = F::dropout(in, F::DropoutFuncOptions().p(l.rate()).training(is_training()));
        break;
      case v1::LAYER_KIND_DENSE:
        out = node.linear->forward(in);
        break;
      case v1::LAYER_KIND_ADD:
        out = in + outputs[node.inputs[1]];
        break;
      case v1::LAYER_KIND_SOFTMAX:
        out = torch::softmax(in, 1);
        break;
      default:
        throw std::runtime_error("GraphModule: layer " + l.name() + " has an unknown kind");
    }
    outputs[i] = std::move(out);
    if (observer_) observer_(i, outputs[i]);
    // Free activations nobody reads any more: MobileNets keep few alive.
    for (int j : node.inputs) {
      if (nodes_[j].last_use <= i) outputs[j] = torch::Tensor();
    }
  }
  return outputs[logits_layer_];
}

bool GraphModuleImpl::InPlaceOk(int i) const {
  const int source = nodes_[i].inputs[0];
  // Not the caller's input, nobody reads the source after layer i, and its
  // producer's backward does not need its output (batch norm and
  // convolutions save their inputs; an ADD saves nothing).
  if (source == 0 || nodes_[source].last_use != i) return false;
  const v1::LayerKind kind = nodes_[source].layer.kind();
  return kind == v1::LAYER_KIND_BATCH_NORM || kind == v1::LAYER_KIND_CONV2D ||
         kind == v1::LAYER_KIND_DEPTHWISE_CONV2D || kind == v1::LAYER_KIND_DENSE ||
         kind == v1::LAYER_KIND_ADD;
}

void GraphModuleImpl::SetBackboneFrozen(bool frozen) {
  backbone_frozen_ = frozen;
  for (Node& node : nodes_) {
    if (!node.backbone) continue;
    std::vector<torch::Tensor> params;
    if (node.conv) params = node.conv->parameters();
    if (node.bn2d) params = node.bn2d->parameters();
    if (node.bn1d) params = node.bn1d->parameters();
    if (node.linear) params = node.linear->parameters();
    for (auto& p : params) p.set_requires_grad(!frozen);
  }
  train(is_training());
}

void GraphModuleImpl::train(bool on) {
  torch::nn::Module::train(on);
  if (!on || !backbone_frozen_) return;
  for (Node& node : nodes_) {
    if (!node.backbone) continue;
    if (node.bn2d) node.bn2d->eval();
    if (node.bn1d) node.bn1d->eval();
  }
}

std::map<std::string, torch::Tensor> GraphModuleImpl::NamedState() {
  std::map<std::string, torch::Tensor> state;
  for (const auto& item : named_parameters(/*recurse=*/true)) state[item.key()] = item.value();
  for (const auto& item : named_buffers(/*recurse=*/true)) state[item.key()] = item.value();
  return state;
}

Status GraphModuleImpl::LoadWeights(const v1::Model& model) {
  std::map<std::string, torch::Tensor> state = NamedState();
  torch::NoGradGuard no_grad;
  for (const v1::Tensor& t : model.weights()) {
    auto found = state.find(t.name());
    if (found == state.end()) {
      return InvalidArgument("weights: tensor " + t.name() + " belongs to no layer of the model");
    }
    std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
    if (found->second.sizes() != c10::IntArrayRef(shape)) {
      return InvalidArgument("weights: tensor " + t.name() + " has shape " +
                             model::ShapeString({t.shape().begin(), t.shape().end()}) +
                             ", the module needs " + c10::str(found->second.sizes()));
    }
    if (static_cast<size_t>(found->second.numel()) * sizeof(float) != t.data().size()) {
      return InvalidArgument("weights: tensor " + t.name() + " holds " +
                             std::to_string(t.data().size()) + " bytes");
    }
    std::memcpy(found->second.data_ptr<float>(), t.data().data(), t.data().size());
  }
  return Status::Ok();
}

void GraphModuleImpl::ExportWeights(v1::Model* model) {
  std::map<std::string, torch::Tensor> state = NamedState();
  model->clear_weights();
  for (const model::WeightSpec& spec : specs_) {
    torch::Tensor value = state.at(spec.name).detach().contiguous().to(torch::kFloat32);
    v1::Tensor* t = model->add_weights();
    t->set_name(spec.name);
    for (uint32_t d : spec.shape) t->add_shape(d);
    t->set_data(value.data_ptr<float>(), static_cast<size_t>(value.numel()) * sizeof(float));
  }
}

Result<GraphModule> LoadEvalModule(const v1::Model& model,
                                   const std::vector<uint32_t>& input_shape) {
  IMPULSE_ASSIGN_OR_RETURN(model::LayerGraph graph, model::LayerGraph::FromModel(model));
  IMPULSE_RETURN_IF_ERROR(graph.CheckWeights());
  if (graph.input_shape() != input_shape) {
    return InvalidArgument("features: shape " + model::ShapeString(input_shape) +
                           " does not match the model's input " +
                           model::ShapeString(graph.input_shape()));
  }
  if (model.input_normalization() != "pixels/255") {
    return InvalidArgument("input_normalization: unknown '" + model.input_normalization() + "'");
  }
  GraphModule module(graph);
  IMPULSE_RETURN_IF_ERROR(module->LoadWeights(model));
  module->eval();
  return module;
}

}  // namespace impulse::worker::training
