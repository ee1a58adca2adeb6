#include "tests/support/model_fixtures.h"

#include <cmath>
#include <random>
#include <vector>

namespace impulse::testing {

void FillRandomWeights(model::LayerGraph& graph, uint64_t seed) {
  std::mt19937_64 rng(seed);
  // Uniform in [lo, hi) from the top 24 bits: identical everywhere.
  auto uniform = [&](float lo, float hi) {
    return lo + (hi - lo) * static_cast<float>(rng() >> 40) / static_cast<float>(1 << 24);
  };
  v1::Model& model = graph.mutable_model();
  model.clear_weights();
  for (const model::WeightSpec& spec : graph.AllWeightSpecs()) {
    size_t count = 1;
    for (uint32_t d : spec.shape) count *= d;
    // Fan-in: everything but the outermost axis of a conv or dense weight.
    const size_t fan_in = spec.shape.size() > 1 ? count / spec.shape[0] : 1;
    const bool is_bn = graph.layer(spec.layer).kind() == v1::LAYER_KIND_BATCH_NORM;
    const std::string param = spec.name.substr(spec.name.rfind('.') + 1);
    std::vector<float> values(count);
    for (float& v : values) {
      if (param == "running_var") {
        v = uniform(0.5f, 1.5f);
      } else if (is_bn && param == "weight") {
        v = uniform(0.5f, 1.5f);
      } else if (spec.shape.size() > 1) {
        const float bound = std::sqrt(6.0f / static_cast<float>(fan_in));
        v = uniform(-bound, bound);
      } else {
        v = uniform(-0.2f, 0.2f);  // biases, BN beta and running_mean
      }
    }
    v1::Tensor* tensor = model.add_weights();
    tensor->set_name(spec.name);
    for (uint32_t d : spec.shape) tensor->add_shape(d);
    tensor->set_data(
        std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
  }
}

v1::Layer* AddLayer(v1::Model& model, const std::string& name, v1::LayerKind kind,
                    const std::vector<uint32_t>& inputs) {
  v1::Layer* layer = model.add_layers();
  layer->set_name(name);
  layer->set_kind(kind);
  for (uint32_t i : inputs) layer->add_inputs(i);
  return layer;
}

namespace {

void SetWindow(v1::Layer* l, uint32_t kernel, uint32_t stride) {
  l->set_kernel_h(kernel);
  l->set_kernel_w(kernel);
  l->set_stride_h(stride);
  l->set_stride_w(stride);
}

void SetPadding(v1::Layer* l, uint32_t top, uint32_t bottom, uint32_t left, uint32_t right) {
  l->set_pad_top(top);
  l->set_pad_bottom(bottom);
  l->set_pad_left(left);
  l->set_pad_right(right);
}

}  // namespace

v1::Model EveryLayerKindModel() {
  v1::Model m;
  m.set_format_version(1);
  m.set_architecture("every-kind");
  for (uint32_t d : {3, 8, 8}) m.add_input_shape(d);
  m.set_input_normalization("pixels/255");
  for (const char* label : {"cat", "dog", "ému"}) m.add_labels(label);
  AddLayer(m, "input", v1::LAYER_KIND_INPUT, {});
  v1::Layer* conv = AddLayer(m, "conv1", v1::LAYER_KIND_CONV2D, {0});  // 1: [4,8,8]
  conv->set_filters(4);
  conv->set_bias(true);
  SetWindow(conv, 3, 1);
  SetPadding(conv, 1, 1, 1, 1);
  AddLayer(m, "conv1_bn", v1::LAYER_KIND_BATCH_NORM, {1});                  // 2
  AddLayer(m, "conv1_relu", v1::LAYER_KIND_RELU6, {2});                     // 3
  v1::Layer* dw = AddLayer(m, "dw", v1::LAYER_KIND_DEPTHWISE_CONV2D, {3});  // 4: [4,4,4]
  dw->set_filters(4);
  dw->set_groups(4);
  SetWindow(dw, 3, 2);
  SetPadding(dw, 0, 1, 0, 1);
  AddLayer(m, "dw_relu", v1::LAYER_KIND_RELU, {4});               // 5
  v1::Layer* pw = AddLayer(m, "pw", v1::LAYER_KIND_CONV2D, {5});  // 6: [4,4,4]
  pw->set_filters(4);
  SetWindow(pw, 1, 1);
  AddLayer(m, "add", v1::LAYER_KIND_ADD, {5, 6});                               // 7
  v1::Layer* max_pool = AddLayer(m, "max_pool", v1::LAYER_KIND_MAX_POOL, {7});  // 8: [4,4,4]
  SetWindow(max_pool, 3, 1);
  SetPadding(max_pool, 1, 1, 1, 1);
  v1::Layer* avg_pool = AddLayer(m, "avg_pool", v1::LAYER_KIND_AVG_POOL, {8});  // 9: [4,2,2]
  SetWindow(avg_pool, 3, 2);
  SetPadding(avg_pool, 1, 1, 1, 1);                         // padded cells are not counted
  AddLayer(m, "gap", v1::LAYER_KIND_GLOBAL_AVG_POOL, {9});  // 10: [4]
  AddLayer(m, "dropout", v1::LAYER_KIND_DROPOUT, {10})->set_rate(0.5f);
  v1::Layer* dense = AddLayer(m, "predictions", v1::LAYER_KIND_DENSE, {11});  // 12: [3]
  dense->set_filters(3);
  dense->set_bias(true);
  AddLayer(m, "softmax", v1::LAYER_KIND_SOFTMAX, {12});
  return m;
}

v1::Model FlatModel() {
  v1::Model m;
  m.set_format_version(1);
  m.set_architecture("flat");
  for (uint32_t d : {1, 4, 4}) m.add_input_shape(d);
  m.set_input_normalization("pixels/255");
  m.add_labels("a");
  m.add_labels("b");
  AddLayer(m, "input", v1::LAYER_KIND_INPUT, {});
  AddLayer(m, "flatten", v1::LAYER_KIND_FLATTEN, {0});
  AddLayer(m, "dense", v1::LAYER_KIND_DENSE, {1})->set_filters(2);
  return m;
}

}  // namespace impulse::testing
