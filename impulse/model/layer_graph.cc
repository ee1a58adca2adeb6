#include "impulse/model/layer_graph.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "impulse/impulse_spec.h"

namespace impulse::model {
namespace {

using Shape = std::vector<uint32_t>;

constexpr float kDefaultEpsilon = 1e-3f;  // Keras' BatchNormalization default
constexpr float kDefaultMomentum = 0.1f;  // PyTorch convention
constexpr uint32_t kMinTransferSide = 32;
constexpr float kMobileNetV1Alphas[] = {0.1f, 0.2f, 0.25f, 0.35f, 0.5f, 0.75f, 1.0f};
constexpr float kMobileNetV2Alphas[] = {0.05f, 0.1f, 0.35f, 0.5f, 0.75f, 1.0f};

uint64_t Product(const Shape& shape) {
  uint64_t n = 1;
  for (uint32_t d : shape) n *= d;
  return n;
}

uint32_t OrOne(uint32_t v) { return v == 0 ? 1 : v; }

std::string LayerRef(int i, const v1::Layer& layer) {
  return "layers[" + std::to_string(i) + "] (" + layer.name() + ")";
}

// The output shape of `layer` given its inputs' shapes. Field errors name
// the layer; `where` is LayerRef().
Result<Shape> InferLayer(const std::string& where, const v1::Layer& layer,
                         const std::vector<Shape>& in) {
  auto bad = [&](const std::string& field, const std::string& why) {
    return InvalidArgument(where + "." + field + ": " + why);
  };
  const size_t want_inputs = layer.kind() == v1::LAYER_KIND_ADD ? 2 : 1;
  if (in.size() != want_inputs) {
    return bad("inputs", "needs " + std::to_string(want_inputs) + " input(s), got " +
                             std::to_string(in.size()));
  }
  const Shape& x = in[0];
  auto spatial = [&](uint32_t kh, uint32_t kw) -> Result<Shape> {
    if (x.size() != 3) return bad("inputs", "needs a [C,H,W] input, got " + ShapeString(x));
    if (kh == 0 || kw == 0) return bad("kernel_h", "must be >= 1");
    const uint64_t ph = uint64_t{x[1]} + layer.pad_top() + layer.pad_bottom();
    const uint64_t pw = uint64_t{x[2]} + layer.pad_left() + layer.pad_right();
    if (ph < kh || pw < kw) {
      return bad("kernel_h", "window " + std::to_string(kh) + "x" + std::to_string(kw) +
                                 " is larger than the padded input " + std::to_string(ph) + "x" +
                                 std::to_string(pw));
    }
    const uint32_t oh = static_cast<uint32_t>((ph - kh) / OrOne(layer.stride_h()) + 1);
    const uint32_t ow = static_cast<uint32_t>((pw - kw) / OrOne(layer.stride_w()) + 1);
    return Shape{x[0], oh, ow};
  };
  switch (layer.kind()) {
    case v1::LAYER_KIND_CONV2D:
    case v1::LAYER_KIND_DEPTHWISE_CONV2D: {
      if (layer.filters() == 0) return bad("filters", "must be >= 1");
      IMPULSE_ASSIGN_OR_RETURN(Shape out, spatial(layer.kernel_h(), layer.kernel_w()));
      const uint32_t groups = OrOne(layer.groups());
      if (layer.kind() == v1::LAYER_KIND_DEPTHWISE_CONV2D &&
          (groups != x[0] || layer.filters() != x[0])) {
        return bad("groups", "a depthwise conv needs groups = filters = input channels (" +
                                 std::to_string(x[0]) + "), got groups " + std::to_string(groups) +
                                 ", filters " + std::to_string(layer.filters()));
      }
      if (x[0] % groups != 0 || layer.filters() % groups != 0) {
        return bad("groups", std::to_string(groups) + " does not divide the channels");
      }
      out[0] = layer.filters();
      return out;
    }
    case v1::LAYER_KIND_MAX_POOL:
    case v1::LAYER_KIND_AVG_POOL:
      return spatial(layer.kernel_h(), layer.kernel_w());
    case v1::LAYER_KIND_BATCH_NORM:
    case v1::LAYER_KIND_RELU:
    case v1::LAYER_KIND_RELU6:
      if (x.empty()) return bad("inputs", "empty input shape");
      return x;
    case v1::LAYER_KIND_DROPOUT:
      if (!(layer.rate() >= 0.0f && layer.rate() < 1.0f)) {
        return bad("rate", "must be in [0, 1), got " + std::to_string(layer.rate()));
      }
      return x;
    case v1::LAYER_KIND_GLOBAL_AVG_POOL:
      if (x.size() != 3) return bad("inputs", "needs a [C,H,W] input, got " + ShapeString(x));
      return Shape{x[0]};
    case v1::LAYER_KIND_FLATTEN:
      return Shape{static_cast<uint32_t>(Product(x))};
    case v1::LAYER_KIND_DENSE:
      if (x.size() != 1) return bad("inputs", "needs a flat [N] input, got " + ShapeString(x));
      if (layer.filters() == 0) return bad("filters", "must be >= 1 (units)");
      return Shape{layer.filters()};
    case v1::LAYER_KIND_ADD:
      if (in[0] != in[1]) {
        return bad("inputs", "shapes differ: " + ShapeString(in[0]) + " + " + ShapeString(in[1]));
      }
      return x;
    case v1::LAYER_KIND_SOFTMAX:
      if (x.size() != 1) return bad("inputs", "needs a flat [N] input, got " + ShapeString(x));
      return x;
    default:
      return bad("kind", "unknown or misplaced kind " + std::to_string(layer.kind()));
  }
}

// "Same" padding as TensorFlow computes it: output ceil(n / s), the extra
// pixel (when the total is odd) at the bottom/right.
std::pair<uint32_t, uint32_t> SamePadding(uint32_t n, uint32_t k, uint32_t s) {
  const uint32_t out = (n + s - 1) / s;
  const int64_t total = std::max<int64_t>(int64_t{out - 1} * s + k - n, 0);
  return {static_cast<uint32_t>(total / 2), static_cast<uint32_t>(total - total / 2)};
}

// Appends layers, keeping every layer's shape as it goes, so builders can
// compute padding from the current size.
class GraphBuilder {
 public:
  GraphBuilder(const std::string& architecture, float alpha, uint32_t c, uint32_t h, uint32_t w) {
    model_.set_format_version(1);
    model_.set_architecture(architecture);
    model_.set_alpha(alpha);
    for (uint32_t d : {c, h, w}) model_.add_input_shape(d);
    model_.set_input_normalization("pixels/255");
    v1::Layer* input = model_.add_layers();
    input->set_name("input");
    input->set_kind(v1::LAYER_KIND_INPUT);
    for (uint32_t d : {c, h, w}) input->add_output_shape(d);
    shapes_.push_back({c, h, w});
  }

  int last() const { return model_.layers_size() - 1; }
  const Shape& shape(int i) const { return shapes_.at(i); }
  const Shape& shape() const { return shapes_.back(); }
  v1::LayerRole role = v1::LAYER_ROLE_BACKBONE;

  // Appends `layer` reading `inputs` (default: the last layer).
  Status Add(v1::Layer layer, std::vector<int> inputs = {}) {
    if (inputs.empty()) inputs.push_back(last());
    std::vector<Shape> in;
    for (int i : inputs) {
      layer.add_inputs(static_cast<uint32_t>(i));
      in.push_back(shapes_.at(i));
    }
    layer.set_role(role);
    const int index = model_.layers_size();
    IMPULSE_ASSIGN_OR_RETURN(Shape out, InferLayer(LayerRef(index, layer), layer, in));
    for (uint32_t d : out) layer.add_output_shape(d);
    *model_.add_layers() = std::move(layer);
    shapes_.push_back(std::move(out));
    return Status::Ok();
  }

  Status Conv(const std::string& name, uint32_t filters, uint32_t k, uint32_t stride,
              bool depthwise, bool bias = false) {
    const Shape& x = shape();
    v1::Layer layer;
    layer.set_name(name);
    layer.set_kind(depthwise ? v1::LAYER_KIND_DEPTHWISE_CONV2D : v1::LAYER_KIND_CONV2D);
    layer.set_filters(depthwise ? x[0] : filters);
    layer.set_groups(depthwise ? x[0] : 1);
    layer.set_kernel_h(k);
    layer.set_kernel_w(k);
    layer.set_stride_h(stride);
    layer.set_stride_w(stride);
    auto [top, bottom] = SamePadding(x[1], k, stride);
    auto [left, right] = SamePadding(x[2], k, stride);
    layer.set_pad_top(top);
    layer.set_pad_bottom(bottom);
    layer.set_pad_left(left);
    layer.set_pad_right(right);
    layer.set_bias(bias);
    return Add(std::move(layer));
  }

  Status Simple(const std::string& name, v1::LayerKind kind) {
    v1::Layer layer;
    layer.set_name(name);
    layer.set_kind(kind);
    if (kind == v1::LAYER_KIND_BATCH_NORM) {
      layer.set_epsilon(kDefaultEpsilon);
      layer.set_momentum(kDefaultMomentum);
    }
    return Add(std::move(layer));
  }

  Status Pool(const std::string& name, uint32_t size) {
    v1::Layer layer;
    layer.set_name(name);
    layer.set_kind(v1::LAYER_KIND_MAX_POOL);
    layer.set_kernel_h(size);
    layer.set_kernel_w(size);
    layer.set_stride_h(size);
    layer.set_stride_w(size);
    return Add(std::move(layer));
  }

  Status Dropout(const std::string& name, float rate) {
    if (rate <= 0.0f) return Status::Ok();
    v1::Layer layer;
    layer.set_name(name);
    layer.set_kind(v1::LAYER_KIND_DROPOUT);
    layer.set_rate(rate);
    return Add(std::move(layer));
  }

  Status Dense(const std::string& name, uint32_t units) {
    v1::Layer layer;
    layer.set_name(name);
    layer.set_kind(v1::LAYER_KIND_DENSE);
    layer.set_filters(units);
    layer.set_bias(true);
    return Add(std::move(layer));
  }

  Status AddResidual(const std::string& name, int a, int b) {
    v1::Layer layer;
    layer.set_name(name);
    layer.set_kind(v1::LAYER_KIND_ADD);
    return Add(std::move(layer), {a, b});
  }

  // Global average pool, dropout, optional dense + ReLU, classifier, softmax.
  Status Head(const HeadOptions& head, uint32_t classes) {
    role = v1::LAYER_ROLE_HEAD;
    IMPULSE_RETURN_IF_ERROR(Simple("global_average_pooling", v1::LAYER_KIND_GLOBAL_AVG_POOL));
    if (head.dense > 0) {
      IMPULSE_RETURN_IF_ERROR(Dense("head_dense", head.dense));
      IMPULSE_RETURN_IF_ERROR(Simple("head_dense_relu", v1::LAYER_KIND_RELU));
    }
    IMPULSE_RETURN_IF_ERROR(Dropout("head_dropout", head.dropout));
    return Classifier(classes);
  }

  Status Classifier(uint32_t classes) {
    role = v1::LAYER_ROLE_HEAD;
    IMPULSE_RETURN_IF_ERROR(Dense("predictions", classes));
    return Simple("softmax", v1::LAYER_KIND_SOFTMAX);
  }

  Result<LayerGraph> Finish() { return LayerGraph::FromModel(std::move(model_)); }

 private:
  v1::Model model_;
  std::vector<Shape> shapes_;  // output shape per layer, parallel to model_.layers
};

Status CheckInputFor(const std::string& what, uint32_t c, uint32_t h, uint32_t w,
                     uint32_t min_side) {
  if (c != 1 && c != 3) {
    return InvalidArgument("processing.color: " + what + " needs 1 or 3 channels, got " +
                           std::to_string(c));
  }
  if (w < min_side) {
    return InvalidArgument("input.width: " + what + " needs at least " + std::to_string(min_side) +
                           ", got " + std::to_string(w));
  }
  if (h < min_side) {
    return InvalidArgument("input.height: " + what + " needs at least " + std::to_string(min_side) +
                           ", got " + std::to_string(h));
  }
  return Status::Ok();
}

template <size_t N>
Status CheckAlpha(const char* backbone, float alpha, const float (&allowed)[N]) {
  std::string list;
  for (float a : allowed) {
    if (std::fabs(a - alpha) < 1e-6f) return Status::Ok();
    std::ostringstream text;
    text << a;
    list += (list.empty() ? "" : " | ") + text.str();
  }
  std::ostringstream given;
  given << alpha;
  return InvalidArgument("learning.alpha: " + given.str() + " is not a " + backbone + " width (" +
                         list + ")");
}

Status CheckClasses(uint32_t classes, bool allow_zero) {
  if (classes == 1 || (classes == 0 && !allow_zero)) {
    return InvalidArgument("labels: a classifier needs at least 2 classes, got " +
                           std::to_string(classes));
  }
  return Status::Ok();
}

// Keras' _make_divisible: the nearest multiple of 8, never more than 10 %
// below v.
uint32_t MakeDivisible(double v, uint32_t divisor = 8) {
  uint32_t rounded = std::max<uint32_t>(
      divisor, static_cast<uint32_t>(static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor));
  if (rounded < 0.9 * v) rounded += divisor;
  return rounded;
}

// The default classification network, written as the classification
// settings it equals (docs/IMPULSE.md, "The default network"). `raw`: the
// dense-only default for a RAW processing block.
v1::LearningBlock DefaultClassificationBlock(bool raw) {
  v1::LearningBlock learning;
  learning.set_block(v1::LEARNING_KIND_CLASSIFICATION);
  if (raw) {
    auto* d1 = learning.add_dense_layers();
    d1->set_neurons(128);
    d1->set_dropout(0.2f);
    auto* d2 = learning.add_dense_layers();
    d2->set_neurons(64);
    return learning;
  }
  const struct {
    uint32_t filters;
    uint32_t pool;
    float dropout;
  } stages[] = {{16, 2, 0.0f}, {32, 2, 0.0f}, {64, 2, 0.25f}};
  for (const auto& stage : stages) {
    auto* conv = learning.add_conv();
    conv->set_filters(stage.filters);
    conv->set_kernel_size(3);
    conv->set_pool(stage.pool);
    conv->set_dropout(stage.dropout);
  }
  return learning;
}

}  // namespace

std::string ShapeString(const std::vector<uint32_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? "," : "") + std::to_string(shape[i]);
  return text + "]";
}

std::string LayerKindName(v1::LayerKind kind) {
  switch (kind) {
    case v1::LAYER_KIND_INPUT:
      return "input";
    case v1::LAYER_KIND_CONV2D:
      return "conv2d";
    case v1::LAYER_KIND_DEPTHWISE_CONV2D:
      return "depthwise_conv2d";
    case v1::LAYER_KIND_BATCH_NORM:
      return "batch_norm";
    case v1::LAYER_KIND_RELU:
      return "relu";
    case v1::LAYER_KIND_RELU6:
      return "relu6";
    case v1::LAYER_KIND_MAX_POOL:
      return "max_pool";
    case v1::LAYER_KIND_AVG_POOL:
      return "avg_pool";
    case v1::LAYER_KIND_GLOBAL_AVG_POOL:
      return "global_avg_pool";
    case v1::LAYER_KIND_FLATTEN:
      return "flatten";
    case v1::LAYER_KIND_DROPOUT:
      return "dropout";
    case v1::LAYER_KIND_DENSE:
      return "dense";
    case v1::LAYER_KIND_ADD:
      return "add";
    case v1::LAYER_KIND_SOFTMAX:
      return "softmax";
    default:
      return "unknown(" + std::to_string(kind) + ")";
  }
}

// --- LayerGraph

Result<LayerGraph> LayerGraph::FromModel(v1::Model model) {
  LayerGraph graph(std::move(model));
  IMPULSE_RETURN_IF_ERROR(graph.InferShapes());
  if (graph.model_.weights_size() > 0) IMPULSE_RETURN_IF_ERROR(graph.CheckWeights());
  return graph;
}

Status LayerGraph::InferShapes() {
  if (model_.input_shape_size() != 3) {
    return InvalidArgument("input_shape: needs [C,H,W], got " +
                           ShapeString({model_.input_shape().begin(), model_.input_shape().end()}));
  }
  for (uint32_t d : model_.input_shape()) {
    if (d == 0) return InvalidArgument("input_shape: dimensions must be >= 1");
  }
  if (model_.layers_size() < 2) return InvalidArgument("layers: needs an input and one layer");
  std::vector<Shape> shapes;
  std::set<std::string> names;
  for (int i = 0; i < model_.layers_size(); ++i) {
    v1::Layer& layer = *model_.mutable_layers(i);
    const std::string where = LayerRef(i, layer);
    if (layer.name().empty()) return InvalidArgument(where + ".name: required");
    for (char ch : layer.name()) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_') {
        return InvalidArgument(where + ".name: only letters, digits and '_'");
      }
    }
    if (!names.insert(layer.name()).second) {
      return InvalidArgument(where + ".name: used by an earlier layer");
    }
    Shape out;
    if (i == 0) {
      if (layer.kind() != v1::LAYER_KIND_INPUT) {
        return InvalidArgument(where + ".kind: layer 0 must be the input");
      }
      out.assign(model_.input_shape().begin(), model_.input_shape().end());
    } else {
      std::vector<Shape> in;
      for (uint32_t j : layer.inputs()) {
        if (j >= static_cast<uint32_t>(i)) {
          return InvalidArgument(where + ".inputs: " + std::to_string(j) +
                                 " is not an earlier layer");
        }
        in.push_back(shapes[j]);
      }
      IMPULSE_ASSIGN_OR_RETURN(out, InferLayer(where, layer, in));
    }
    layer.clear_output_shape();
    for (uint32_t d : out) layer.add_output_shape(d);
    shapes.push_back(std::move(out));
  }
  return Status::Ok();
}

int LayerGraph::FindLayer(const std::string& name) const {
  for (int i = 0; i < size(); ++i) {
    if (layer(i).name() == name) return i;
  }
  return -1;
}

std::vector<uint32_t> LayerGraph::input_shape() const {
  return {model_.input_shape().begin(), model_.input_shape().end()};
}

int LayerGraph::logits_layer() const {
  const v1::Layer& last = layer(size() - 1);
  if (last.kind() == v1::LAYER_KIND_SOFTMAX) return static_cast<int>(last.inputs(0));
  return size() - 1;
}

uint32_t LayerGraph::classes() const {
  if (model_.labels_size() > 0) return static_cast<uint32_t>(model_.labels_size());
  return static_cast<uint32_t>(Product(
      {layer(logits_layer()).output_shape().begin(), layer(logits_layer()).output_shape().end()}));
}

LayerCost LayerGraph::Cost(int i) const {
  const v1::Layer& l = layer(i);
  LayerCost cost;
  const Shape out(l.output_shape().begin(), l.output_shape().end());
  cost.output_elements = Product(out);
  if (i == 0) return cost;
  const Shape in(layer(l.inputs(0)).output_shape().begin(),
                 layer(l.inputs(0)).output_shape().end());
  switch (l.kind()) {
    case v1::LAYER_KIND_CONV2D:
    case v1::LAYER_KIND_DEPTHWISE_CONV2D: {
      const uint64_t per_output = uint64_t{in[0] / OrOne(l.groups())} * l.kernel_h() * l.kernel_w();
      cost.macs = cost.output_elements * per_output;
      cost.params = uint64_t{l.filters()} * per_output + (l.bias() ? l.filters() : 0);
      break;
    }
    case v1::LAYER_KIND_DENSE:
      cost.macs = Product(in) * l.filters();
      cost.params = cost.macs + (l.bias() ? l.filters() : 0);
      break;
    case v1::LAYER_KIND_BATCH_NORM:
      cost.params = 2ull * in[0];
      cost.buffers = 2ull * in[0];
      cost.ops = 2 * cost.output_elements;  // scale and shift
      break;
    case v1::LAYER_KIND_MAX_POOL:
    case v1::LAYER_KIND_AVG_POOL:
      cost.ops = cost.output_elements * l.kernel_h() * l.kernel_w();
      break;
    case v1::LAYER_KIND_GLOBAL_AVG_POOL:
      cost.ops = Product(in);
      break;
    case v1::LAYER_KIND_SOFTMAX:
      cost.ops = 3 * cost.output_elements;  // exp, sum, divide
      break;
    case v1::LAYER_KIND_RELU:
    case v1::LAYER_KIND_RELU6:
    case v1::LAYER_KIND_ADD:
      cost.ops = cost.output_elements;
      break;
    default:
      break;  // flatten, dropout: free at inference
  }
  return cost;
}

LayerCost LayerGraph::TotalCost() const {
  LayerCost total;
  for (int i = 0; i < size(); ++i) {
    const LayerCost c = Cost(i);
    total.macs += c.macs;
    total.ops += c.ops;
    total.params += c.params;
    total.buffers += c.buffers;
    total.output_elements += c.output_elements;
  }
  return total;
}

std::vector<WeightSpec> LayerGraph::WeightSpecs(int i) const {
  const v1::Layer& l = layer(i);
  std::vector<WeightSpec> specs;
  auto add = [&](const char* param, Shape shape, bool trainable) {
    specs.push_back({l.name() + "." + param, std::move(shape), trainable, i});
  };
  if (i == 0) return specs;
  const Shape in(layer(l.inputs(0)).output_shape().begin(),
                 layer(l.inputs(0)).output_shape().end());
  switch (l.kind()) {
    case v1::LAYER_KIND_CONV2D:
    case v1::LAYER_KIND_DEPTHWISE_CONV2D:
      add("weight", {l.filters(), in[0] / OrOne(l.groups()), l.kernel_h(), l.kernel_w()}, true);
      if (l.bias()) add("bias", {l.filters()}, true);
      break;
    case v1::LAYER_KIND_DENSE:
      add("weight", {l.filters(), in[0]}, true);
      if (l.bias()) add("bias", {l.filters()}, true);
      break;
    case v1::LAYER_KIND_BATCH_NORM:
      add("weight", {in[0]}, true);
      add("bias", {in[0]}, true);
      add("running_mean", {in[0]}, false);
      add("running_var", {in[0]}, false);
      break;
    default:
      break;
  }
  return specs;
}

std::vector<WeightSpec> LayerGraph::AllWeightSpecs() const {
  std::vector<WeightSpec> all;
  for (int i = 0; i < size(); ++i) {
    for (auto& spec : WeightSpecs(i)) all.push_back(std::move(spec));
  }
  return all;
}

const v1::Tensor* LayerGraph::FindWeight(const std::string& name) const {
  for (const v1::Tensor& t : model_.weights()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

Status LayerGraph::CheckWeights() const {
  std::map<std::string, const v1::Tensor*> by_name;
  for (const v1::Tensor& t : model_.weights()) {
    if (!by_name.emplace(t.name(), &t).second) {
      return InvalidArgument("weights: tensor " + t.name() + " appears twice");
    }
  }
  for (const WeightSpec& spec : AllWeightSpecs()) {
    auto found = by_name.find(spec.name);
    if (found == by_name.end()) {
      return InvalidArgument("weights: tensor " + spec.name + " " + ShapeString(spec.shape) +
                             " is missing");
    }
    const v1::Tensor& t = *found->second;
    const Shape shape(t.shape().begin(), t.shape().end());
    if (shape != spec.shape) {
      return InvalidArgument("weights: tensor " + spec.name + " has shape " + ShapeString(shape) +
                             ", the model needs " + ShapeString(spec.shape));
    }
    if (t.data().size() != Product(shape) * sizeof(float)) {
      return InvalidArgument("weights: tensor " + spec.name + " holds " +
                             std::to_string(t.data().size()) + " bytes, its shape needs " +
                             std::to_string(Product(shape) * sizeof(float)));
    }
    by_name.erase(found);
  }
  if (!by_name.empty()) {
    return InvalidArgument("weights: tensor " + by_name.begin()->first +
                           " belongs to no layer of this model");
  }
  return Status::Ok();
}

Result<int> LayerGraph::LoadWeights(const v1::Model& source, bool backbone_only) {
  std::map<std::string, const v1::Tensor*> by_name;
  for (const v1::Tensor& t : source.weights()) by_name[t.name()] = &t;
  std::map<std::string, v1::Tensor> loaded;
  for (const v1::Tensor& t : model_.weights()) loaded[t.name()] = t;
  int copied = 0;
  for (const WeightSpec& spec : AllWeightSpecs()) {
    if (backbone_only && layer(spec.layer).role() != v1::LAYER_ROLE_BACKBONE) continue;
    auto found = by_name.find(spec.name);
    if (found == by_name.end()) {
      if (!backbone_only) continue;
      return InvalidArgument("weights: the file has no tensor " + spec.name + " " +
                             ShapeString(spec.shape) + " (architecture " + model_.architecture() +
                             "; the file's is " + source.architecture() + ")");
    }
    const v1::Tensor& t = *found->second;
    const Shape shape(t.shape().begin(), t.shape().end());
    if (shape != spec.shape) {
      return InvalidArgument("weights: tensor " + spec.name + " has shape " + ShapeString(shape) +
                             " in the file, the model needs " + ShapeString(spec.shape));
    }
    if (t.data().size() != Product(shape) * sizeof(float)) {
      return InvalidArgument("weights: tensor " + spec.name + " holds " +
                             std::to_string(t.data().size()) + " bytes, shape " +
                             ShapeString(shape) + " needs " +
                             std::to_string(Product(shape) * sizeof(float)));
    }
    loaded[spec.name] = t;
    ++copied;
  }
  // Keep spec order so files are deterministic.
  model_.clear_weights();
  for (const WeightSpec& spec : AllWeightSpecs()) {
    auto found = loaded.find(spec.name);
    if (found != loaded.end()) *model_.add_weights() = std::move(found->second);
  }
  return copied;
}

std::string LayerGraph::Summary() const {
  std::ostringstream out;
  out << model_.architecture() << " input " << ShapeString(input_shape()) << "\n";
  for (int i = 0; i < size(); ++i) {
    const v1::Layer& l = layer(i);
    const LayerCost c = Cost(i);
    out << i << " " << l.name() << " " << LayerKindName(l.kind()) << " "
        << ShapeString({l.output_shape().begin(), l.output_shape().end()}) << " macs=" << c.macs
        << " params=" << c.params << (l.role() == v1::LAYER_ROLE_BACKBONE ? " backbone" : "")
        << "\n";
  }
  const LayerCost total = TotalCost();
  out << "total macs=" << total.macs << " params=" << total.params << "\n";
  return out.str();
}

std::string LayerGraph::SummaryJson() const {
  nlohmann::json layers = nlohmann::json::array();
  for (int i = 0; i < size(); ++i) {
    const v1::Layer& l = layer(i);
    const LayerCost c = Cost(i);
    layers.push_back({{"name", l.name()},
                      {"kind", LayerKindName(l.kind())},
                      {"inputs", std::vector<uint32_t>(l.inputs().begin(), l.inputs().end())},
                      {"output_shape", Shape(l.output_shape().begin(), l.output_shape().end())},
                      {"macs", c.macs},
                      {"params", c.params},
                      {"role", l.role() == v1::LAYER_ROLE_BACKBONE ? "backbone" : "head"}});
  }
  const LayerCost total = TotalCost();
  nlohmann::json json = {{"architecture", model_.architecture()},
                         {"input_shape", input_shape()},
                         {"macs", total.macs},
                         {"params", total.params},
                         {"layers", std::move(layers)}};
  return json.dump();
}

// --- Builders

Result<LayerGraph> BuildClassificationGraph(const v1::LearningBlock& learning, uint32_t c,
                                            uint32_t h, uint32_t w, uint32_t classes) {
  IMPULSE_RETURN_IF_ERROR(CheckClasses(classes, false));
  const bool is_default = learning.conv_size() == 0 && learning.dense_layers_size() == 0;
  const v1::LearningBlock block = is_default ? DefaultClassificationBlock(false) : learning;
  GraphBuilder b(is_default ? "classification-default" : "classification", 0.0f, c, h, w);
  b.role = v1::LAYER_ROLE_HEAD;  // nothing to freeze: the whole network trains
  for (int i = 0; i < block.conv_size(); ++i) {
    const v1::ConvLayer& conv = block.conv(i);
    const std::string field = "learning.conv[" + std::to_string(i) + "]";
    const std::string name = "conv" + std::to_string(i + 1);
    if (conv.filters() == 0) return InvalidArgument(field + ".filters: must be >= 1");
    const uint32_t k = conv.kernel_size() == 0 ? 3 : conv.kernel_size();
    if (k % 2 == 0) return InvalidArgument(field + ".kernel_size: must be odd");
    IMPULSE_RETURN_IF_ERROR(b.Conv(name, conv.filters(), k, 1, false).WithContext(field));
    IMPULSE_RETURN_IF_ERROR(b.Simple(name + "_bn", v1::LAYER_KIND_BATCH_NORM));
    IMPULSE_RETURN_IF_ERROR(b.Simple(name + "_relu", v1::LAYER_KIND_RELU));
    if (conv.pool() > 1) {
      const Shape& x = b.shape();
      if (x[1] < conv.pool() || x[2] < conv.pool()) {
        return InvalidArgument(field + ".pool: " + std::to_string(conv.pool()) +
                               " is larger than the " + std::to_string(x[1]) + "x" +
                               std::to_string(x[2]) + " activations at this stage");
      }
      IMPULSE_RETURN_IF_ERROR(b.Pool(name + "_pool", conv.pool()));
    }
    IMPULSE_RETURN_IF_ERROR(b.Dropout(name + "_dropout", conv.dropout()));
  }
  IMPULSE_RETURN_IF_ERROR(b.Simple("flatten", v1::LAYER_KIND_FLATTEN));
  for (int i = 0; i < block.dense_layers_size(); ++i) {
    const v1::DenseLayer& dense = block.dense_layers(i);
    const std::string field = "learning.dense_layers[" + std::to_string(i) + "]";
    const std::string name = "dense" + std::to_string(i + 1);
    if (dense.neurons() == 0) return InvalidArgument(field + ".neurons: must be >= 1");
    IMPULSE_RETURN_IF_ERROR(b.Dense(name, dense.neurons()));
    IMPULSE_RETURN_IF_ERROR(b.Simple(name + "_relu", v1::LAYER_KIND_RELU));
    IMPULSE_RETURN_IF_ERROR(b.Dropout(name + "_dropout", dense.dropout()));
  }
  IMPULSE_RETURN_IF_ERROR(b.Classifier(classes));
  return b.Finish();
}

Result<LayerGraph> BuildMobileNetV1(float alpha, uint32_t c, uint32_t h, uint32_t w,
                                    uint32_t classes, const HeadOptions& head) {
  IMPULSE_RETURN_IF_ERROR(CheckAlpha("MobileNetV1", alpha, kMobileNetV1Alphas));
  IMPULSE_RETURN_IF_ERROR(CheckInputFor("MobileNetV1", c, h, w, kMinTransferSide));
  IMPULSE_RETURN_IF_ERROR(CheckClasses(classes, true));
  GraphBuilder b("mobilenet_v1", alpha, c, h, w);
  // Keras: filters = int(filters * alpha), no rounding to 8.
  auto width = [&](uint32_t filters) {
    return std::max<uint32_t>(1, static_cast<uint32_t>(filters * static_cast<double>(alpha)));
  };
  IMPULSE_RETURN_IF_ERROR(b.Conv("conv1", width(32), 3, 2, false));
  IMPULSE_RETURN_IF_ERROR(b.Simple("conv1_bn", v1::LAYER_KIND_BATCH_NORM));
  IMPULSE_RETURN_IF_ERROR(b.Simple("conv1_relu", v1::LAYER_KIND_RELU6));
  const struct {
    uint32_t filters, stride;
  } blocks[] = {{64, 1},  {128, 2}, {128, 1}, {256, 2}, {256, 1},  {512, 2}, {512, 1},
                {512, 1}, {512, 1}, {512, 1}, {512, 1}, {1024, 2}, {1024, 1}};
  for (int i = 0; i < 13; ++i) {
    const std::string id = std::to_string(i + 1);
    IMPULSE_RETURN_IF_ERROR(b.Conv("conv_dw_" + id, 0, 3, blocks[i].stride, true));
    IMPULSE_RETURN_IF_ERROR(b.Simple("conv_dw_" + id + "_bn", v1::LAYER_KIND_BATCH_NORM));
    IMPULSE_RETURN_IF_ERROR(b.Simple("conv_dw_" + id + "_relu", v1::LAYER_KIND_RELU6));
    IMPULSE_RETURN_IF_ERROR(b.Conv("conv_pw_" + id, width(blocks[i].filters), 1, 1, false));
    IMPULSE_RETURN_IF_ERROR(b.Simple("conv_pw_" + id + "_bn", v1::LAYER_KIND_BATCH_NORM));
    IMPULSE_RETURN_IF_ERROR(b.Simple("conv_pw_" + id + "_relu", v1::LAYER_KIND_RELU6));
  }
  if (classes > 0) IMPULSE_RETURN_IF_ERROR(b.Head(head, classes));
  return b.Finish();
}

Result<LayerGraph> BuildMobileNetV2(float alpha, uint32_t c, uint32_t h, uint32_t w,
                                    uint32_t classes, const HeadOptions& head) {
  IMPULSE_RETURN_IF_ERROR(CheckAlpha("MobileNetV2", alpha, kMobileNetV2Alphas));
  IMPULSE_RETURN_IF_ERROR(CheckInputFor("MobileNetV2", c, h, w, kMinTransferSide));
  IMPULSE_RETURN_IF_ERROR(CheckClasses(classes, true));
  GraphBuilder b("mobilenet_v2", alpha, c, h, w);
  const double a = alpha;
  IMPULSE_RETURN_IF_ERROR(b.Conv("Conv1", MakeDivisible(32 * a), 3, 2, false));
  IMPULSE_RETURN_IF_ERROR(b.Simple("bn_Conv1", v1::LAYER_KIND_BATCH_NORM));
  IMPULSE_RETURN_IF_ERROR(b.Simple("Conv1_relu", v1::LAYER_KIND_RELU6));
  const struct {
    uint32_t filters, stride, expansion;
  } blocks[] = {{16, 1, 1}, {24, 2, 6},  {24, 1, 6},  {32, 2, 6},  {32, 1, 6}, {32, 1, 6},
                {64, 2, 6}, {64, 1, 6},  {64, 1, 6},  {64, 1, 6},  {96, 1, 6}, {96, 1, 6},
                {96, 1, 6}, {160, 2, 6}, {160, 1, 6}, {160, 1, 6}, {320, 1, 6}};
  for (int id = 0; id < 17; ++id) {
    const int block_input = b.last();
    const uint32_t in_channels = b.shape()[0];
    const uint32_t out_channels =
        MakeDivisible(static_cast<uint32_t>(blocks[id].filters * a));  // int() then round
    const std::string prefix = id == 0 ? "expanded_conv_" : "block_" + std::to_string(id) + "_";
    if (id > 0) {
      IMPULSE_RETURN_IF_ERROR(
          b.Conv(prefix + "expand", blocks[id].expansion * in_channels, 1, 1, false));
      IMPULSE_RETURN_IF_ERROR(b.Simple(prefix + "expand_BN", v1::LAYER_KIND_BATCH_NORM));
      IMPULSE_RETURN_IF_ERROR(b.Simple(prefix + "expand_relu", v1::LAYER_KIND_RELU6));
    }
    IMPULSE_RETURN_IF_ERROR(b.Conv(prefix + "depthwise", 0, 3, blocks[id].stride, true));
    IMPULSE_RETURN_IF_ERROR(b.Simple(prefix + "depthwise_BN", v1::LAYER_KIND_BATCH_NORM));
    IMPULSE_RETURN_IF_ERROR(b.Simple(prefix + "depthwise_relu", v1::LAYER_KIND_RELU6));
    IMPULSE_RETURN_IF_ERROR(b.Conv(prefix + "project", out_channels, 1, 1, false));
    IMPULSE_RETURN_IF_ERROR(b.Simple(prefix + "project_BN", v1::LAYER_KIND_BATCH_NORM));
    if (in_channels == out_channels && blocks[id].stride == 1) {
      IMPULSE_RETURN_IF_ERROR(b.AddResidual(prefix + "add", block_input, b.last()));
    }
  }
  const uint32_t last_filters = alpha > 1.0f ? MakeDivisible(1280 * a) : 1280;
  IMPULSE_RETURN_IF_ERROR(b.Conv("Conv_1", last_filters, 1, 1, false));
  IMPULSE_RETURN_IF_ERROR(b.Simple("Conv_1_bn", v1::LAYER_KIND_BATCH_NORM));
  IMPULSE_RETURN_IF_ERROR(b.Simple("out_relu", v1::LAYER_KIND_RELU6));
  if (classes > 0) IMPULSE_RETURN_IF_ERROR(b.Head(head, classes));
  return b.Finish();
}

Result<LayerGraph> BuildGraph(const v1::Impulse& raw_impulse, uint32_t classes) {
  const v1::Impulse impulse = WithDefaults(raw_impulse);
  if (!impulse.has_learning() || impulse.learning().block() == v1::LEARNING_KIND_UNSPECIFIED) {
    return FailedPrecondition("learning: the impulse has no learning block (features only)");
  }
  const uint32_t c = impulse.processing().color() == v1::COLOR_DEPTH_GRAYSCALE ? 1 : 3;
  const uint32_t h = impulse.input().height();
  const uint32_t w = impulse.input().width();
  const v1::LearningBlock& learning = impulse.learning();
  if (learning.block() == v1::LEARNING_KIND_CLASSIFICATION) {
    const bool raw = impulse.processing().block() == v1::PROCESSING_KIND_RAW;
    if (raw && learning.conv_size() > 0) {
      return InvalidArgument("learning.conv: processing.block raw feeds a dense network");
    }
    if (raw && learning.dense_layers_size() == 0) {
      return BuildClassificationGraph(DefaultClassificationBlock(true), c, h, w, classes);
    }
    return BuildClassificationGraph(learning, c, h, w, classes);
  }
  if (learning.block() != v1::LEARNING_KIND_TRANSFER) {
    return InvalidArgument("learning.block: unknown block " + std::to_string(learning.block()));
  }
  IMPULSE_RETURN_IF_ERROR(CheckClasses(classes, false));
  const HeadOptions head{learning.dense(), learning.dropout()};
  switch (learning.backbone()) {
    case v1::BACKBONE_MOBILENET_V1:
      return BuildMobileNetV1(learning.alpha(), c, h, w, classes, head);
    case v1::BACKBONE_MOBILENET_V2:
      return BuildMobileNetV2(learning.alpha(), c, h, w, classes, head);
    default:
      return InvalidArgument("learning.backbone: unknown backbone " +
                             std::to_string(learning.backbone()));
  }
}

}  // namespace impulse::model
