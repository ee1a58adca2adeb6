// LayerGraph: a model's layer graph with inferred shapes, costs and weight
// names, over v1::Model (proto/impulse/v1/model.proto, which documents the
// layer kinds, weight names and layouts). The one description of an
// architecture: the worker's LibTorch module, the quantizer, the exporters,
// the C emitter and the coordinator's estimates all read it. No LibTorch.
//
// Builders produce a validated graph without weights; the worker trains it
// and fills v1::Model.weights. Layer order is topological: layer 0 is the
// INPUT, every layer's inputs come before it, the last layer is the output
// (SOFTMAX for the classifiers built here; its input is the logits layer).
//
// Thread safety: a const LayerGraph may be read from any number of threads.
// Failures are InvalidArgument whose message starts with the field it is
// about ("learning.alpha: ...", "layers[3] (conv1).kernel_h: ...",
// "weights: tensor conv1.weight has shape [16,1,3,3], the model needs
// [16,3,3,3]").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "impulse/status.h"
#include "impulse/v1/impulse.pb.h"
#include "impulse/v1/model.pb.h"

namespace impulse::model {

// What one layer costs per input sample.
struct LayerCost {
  uint64_t macs = 0;             // multiply-accumulates (conv, depthwise, dense)
  uint64_t ops = 0;              // other element-wise operations (BN, activations, pools, add)
  uint64_t params = 0;           // trainable weights + biases (+ BN gamma/beta)
  uint64_t buffers = 0;          // non-trainable values (BN running mean/var)
  uint64_t output_elements = 0;  // product(output_shape)
};

// The name and shape of one weight tensor the model needs.
struct WeightSpec {
  std::string name;  // "<layer>.<param>"
  std::vector<uint32_t> shape;
  bool trainable = true;  // false for BN running_mean / running_var
  int layer = 0;          // index of its layer
};

class LayerGraph {
 public:
  // Validates `model` (kinds, inputs, parameters) and fills every layer's
  // output_shape. Weights present are checked against the specs (name and
  // shape; unknown names refused). InvalidArgument naming the layer and field.
  static Result<LayerGraph> FromModel(v1::Model model);

  const v1::Model& model() const { return model_; }
  // The model with its weights; callers fill weights through this and call
  // CheckWeights() when done.
  v1::Model& mutable_model() { return model_; }

  int size() const { return model_.layers_size(); }
  const v1::Layer& layer(int i) const { return model_.layers(i); }
  // -1 when no layer has that name.
  int FindLayer(const std::string& name) const;
  // [C, H, W] of one input sample.
  std::vector<uint32_t> input_shape() const;
  // Outputs of the model (labels size when set, else the logits width).
  uint32_t classes() const;
  // The layer whose output is the logits: the input of a final SOFTMAX, or
  // the last layer.
  int logits_layer() const;

  LayerCost Cost(int i) const;
  LayerCost TotalCost() const;  // summed over layers

  // The weight tensors layer i needs (empty for weightless kinds), in the
  // order weight, bias, running_mean, running_var.
  std::vector<WeightSpec> WeightSpecs(int i) const;
  std::vector<WeightSpec> AllWeightSpecs() const;

  // The tensor named `name` in model().weights, or nullptr.
  const v1::Tensor* FindWeight(const std::string& name) const;
  // OK when every spec has a tensor of the right shape and byte size, and no
  // other tensor is present. InvalidArgument naming the first problem.
  Status CheckWeights() const;

  // Copies the tensors of `source` whose names this graph needs, checking
  // shapes: InvalidArgument "weights: tensor NAME has shape [..] in the
  // file, the model needs [..]" on a mismatch. `backbone_only`: only layers
  // with role BACKBONE are copied, and every backbone tensor must be present
  // in `source` (NotFound-style InvalidArgument naming the first missing
  // one). Returns how many tensors were copied.
  Result<int> LoadWeights(const v1::Model& source, bool backbone_only);

  // One line per layer: index, name, kind, output shape, MACs, params, role.
  std::string Summary() const;
  // The same as a JSON object {"architecture", "input_shape", "macs",
  // "params", "layers": [{"name","kind","inputs","output_shape","macs",
  // "params","role"}]}.
  std::string SummaryJson() const;

 private:
  explicit LayerGraph(v1::Model model) : model_(std::move(model)) {}
  Status InferShapes();

  v1::Model model_;
};

// The classification block (learning.block: classification) on [C, H, W]
// features, with `classes` outputs. Empty conv and dense_layers lists give
// the default network (docs/IMPULSE.md, "The default network"): a compact
// CNN for 28..64-pixel inputs. `c` is 1 or 3. InvalidArgument naming the
// learning.* field for bad settings, or an input too small for the pools.
Result<LayerGraph> BuildClassificationGraph(const v1::LearningBlock& learning, uint32_t c,
                                            uint32_t h, uint32_t w, uint32_t classes);

// The transfer-learning head: global average pool, dropout (when > 0), an
// optional dense layer of `dense` units with ReLU, and the classifier
// (dense `classes` + softmax).
struct HeadOptions {
  uint32_t dense = 0;    // 0 = no hidden dense layer
  float dropout = 0.0f;  // [0, 1)
};

// MobileNetV1 (Howard et al. 2017; Keras applications layout) with width
// multiplier alpha in {0.1, 0.2, 0.25, 0.35, 0.5, 0.75, 1.0}: a 3x3/2 conv,
// 13 depthwise-separable blocks, BN after every conv, ReLU6; channels are
// round(alpha * base) as Keras does (int(alpha*c) for V1). Input at least
// 32x32, C 1 or 3. `classes` 0 builds the backbone only (no head), for a
// weights file.
Result<LayerGraph> BuildMobileNetV1(float alpha, uint32_t c, uint32_t h, uint32_t w,
                                    uint32_t classes, const HeadOptions& head);

// MobileNetV2 (Sandler et al. 2018; Keras layout) with alpha in {0.05, 0.1,
// 0.35, 0.5, 0.75, 1.0}: channels made divisible by 8 as Keras'
// _make_divisible does, 17 inverted-residual blocks with residual ADDs, the
// last 1x1 conv to 1280 channels (max(1280, 1280*alpha) for alpha > 1).
Result<LayerGraph> BuildMobileNetV2(float alpha, uint32_t c, uint32_t h, uint32_t w,
                                    uint32_t classes, const HeadOptions& head);

// The graph an impulse's learning block describes, for `classes` classes,
// on the processing block's [C, H, W] (RAW: the same pixels, flattened by
// the network's first layer). Applies WithDefaults() itself. FailedPrecondition
// when the impulse has no learning block.
Result<LayerGraph> BuildGraph(const v1::Impulse& impulse, uint32_t classes);

// "[16,3,3,3]"
std::string ShapeString(const std::vector<uint32_t>& shape);
// The lower-case kind name used in summaries: "conv2d", "depthwise_conv2d", ...
std::string LayerKindName(v1::LayerKind kind);

}  // namespace impulse::model
