// Random weights for a layer graph, so that exporters and runtimes can be
// compared without training: He-uniform conv and dense weights, small
// biases, batch-norm statistics near identity (variances in [0.5, 1.5]).
// The same seed gives the same tensors on every machine (our own draw from
// std::mt19937_64, not a library distribution).
#pragma once

#include <cstdint>

#include "impulse/model/layer_graph.h"

namespace impulse::testing {

// Replaces graph's weights with random ones of every spec's shape; after
// it, graph.CheckWeights() is OK.
void FillRandomWeights(model::LayerGraph& graph, uint64_t seed);

}  // namespace impulse::testing
