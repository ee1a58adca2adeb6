#include "worker/training/latency.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "impulse/model/layer_graph.h"
#include "worker/training/graph_module.h"

namespace impulse::worker::training {
namespace {

Result<double> MeasureUnguarded(const v1::Model& model, int repeats, int threads) {
  IMPULSE_ASSIGN_OR_RETURN(model::LayerGraph graph, model::LayerGraph::FromModel(model));
  IMPULSE_RETURN_IF_ERROR(graph.CheckWeights());
  GraphModule module(graph);
  IMPULSE_RETURN_IF_ERROR(module->LoadWeights(model));
  module->eval();
  torch::set_num_threads(std::max(1, threads));
  torch::NoGradGuard no_grad;

  const std::vector<uint32_t> shape = graph.input_shape();
  // Mid-grey: the time of a dense float network does not depend on values.
  const torch::Tensor image =
      torch::full({1, static_cast<int64_t>(shape[0]), static_cast<int64_t>(shape[1]),
                   static_cast<int64_t>(shape[2])},
                  0.5f, torch::kFloat32);
  module->forward(image);  // warm-up: first-call allocations and kernel selection
  std::vector<double> ms;
  for (int i = 0; i < std::max(1, repeats); ++i) {
    const auto start = std::chrono::steady_clock::now();
    module->forward(image);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

Result<double> MeasureFloatLatencyMs(const v1::Model& model, int repeats, int threads) {
  try {
    return MeasureUnguarded(model, repeats, threads);
  } catch (const c10::Error& e) {
    return Internal(std::string("float32 latency: LibTorch: ") + e.what_without_backtrace());
  }
}

}  // namespace impulse::worker::training
