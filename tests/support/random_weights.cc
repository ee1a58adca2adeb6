#include "tests/support/random_weights.h"

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

}  // namespace impulse::testing
