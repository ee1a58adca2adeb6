// GraphModule: a LibTorch module that executes a model::LayerGraph.
//
// Each layer with weights becomes a registered submodule named after the
// layer (Conv2d, BatchNorm2d/1d, Linear), so the module's parameter and
// buffer names are the graph's weight names ("conv1.weight",
// "conv1_bn.running_mean"). Weightless layers run as functions. forward()
// returns the logits (the input of the final SOFTMAX); the softmax itself is
// left to the loss or the caller.
//
// LibTorch headers: only the worker's training files include this. Methods
// may throw c10::Error (LibTorch's); callers convert at their boundary.
// Not thread-safe (a module is used by one thread at a time).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "impulse/model/layer_graph.h"
#include "impulse/status.h"

namespace impulse::worker::training {

class GraphModuleImpl : public torch::nn::Module {
 public:
  // Builds submodules for every layer of `graph`, with LibTorch's default
  // initialisation (drawn from the global generator: seed it first).
  explicit GraphModuleImpl(const model::LayerGraph& graph);

  // x: [B, C, H, W] float32. Returns [B, classes] logits.
  torch::Tensor forward(torch::Tensor x);

  // Frozen: backbone parameters stop requiring gradients and backbone batch
  // norms use (and keep) their running statistics even in train mode.
  void SetBackboneFrozen(bool frozen);
  // Module::train plus the frozen backbone's batch norms kept in eval mode.
  void train(bool on = true) override;

  // Copies the model's weight tensors into the parameters and buffers.
  // InvalidArgument naming a tensor whose name or shape does not fit.
  Status LoadWeights(const v1::Model& model);
  // The current parameters and buffers as v1::Tensor, in
  // LayerGraph::AllWeightSpecs() order (written into model->weights).
  void ExportWeights(v1::Model* model);

  // Parameters by weight name, and buffers (running stats) by weight name.
  std::map<std::string, torch::Tensor> NamedState();

  // Called by forward() with each layer's output ([B, ...], possibly
  // channels-last) right after the layer ran, for calibration and per-layer
  // error analysis (worker/training/calibration.h). Unset (the default, and
  // always in training) it costs one branch per layer.
  using LayerObserver = std::function<void(int layer, const torch::Tensor& output)>;
  void SetLayerObserver(LayerObserver observer) { observer_ = std::move(observer); }

 private:
  struct Node {
    v1::Layer layer;
    std::vector<int> inputs;
    int last_use = 0;  // index of the last layer reading this output
    torch::nn::Conv2d conv{nullptr};
    torch::nn::BatchNorm2d bn2d{nullptr};
    torch::nn::BatchNorm1d bn1d{nullptr};
    torch::nn::Linear linear{nullptr};
    bool backbone = false;
  };

  // Layer i may overwrite its input (a ReLU/ReLU6 in place, as torchvision's
  // activations run): no later layer reads it and autograd keeps no copy.
  bool InPlaceOk(int i) const;

  std::vector<Node> nodes_;
  std::vector<model::WeightSpec> specs_;
  int logits_layer_ = 0;
  bool backbone_frozen_ = false;
  // Graphs with depthwise convolutions (the MobileNets) run NHWC
  // (channels-last): oneDNN's depthwise and pointwise kernels are ~1.4x
  // faster so on CPU (bench/README.md); the small default CNN stays NCHW.
  bool channels_last_ = false;
  LayerObserver observer_;
};
TORCH_MODULE(GraphModule);

// The trained `model` as a module in eval mode (dropout off, batch norms on
// their running statistics) for inputs of [C, H, W] `input_shape`, pixels
// scaled as model.input_normalization says. InvalidArgument when the model
// is malformed, lacks a weight tensor, has another input shape or an
// unknown normalization.
Result<GraphModule> LoadEvalModule(const v1::Model& model,
                                   const std::vector<uint32_t>& input_shape);

}  // namespace impulse::worker::training
