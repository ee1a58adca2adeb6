// Models for tests of exporters and runtimes, without training: random
// weights for any layer graph, and a hand-made graph with every layer kind.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "impulse/model/layer_graph.h"

namespace impulse::testing {

// Random weights: He-uniform conv and dense weights, small biases,
// batch-norm statistics near identity (variances in [0.5, 1.5]). The same
// seed gives the same tensors on every machine (our own draw from
// std::mt19937_64, not a library distribution).
// Replaces graph's weights with random ones of every spec's shape; after
// it, graph.CheckWeights() is OK.
void FillRandomWeights(model::LayerGraph& graph, uint64_t seed);

// Every layer kind at least once on a [3, 8, 8] input, 3 classes ("cat",
// "dog", "ému"), no weights: conv with bias and padding, batch norm, ReLU6,
// depthwise stride 2 with TensorFlow's asymmetric padding, ReLU, pointwise
// conv, a residual ADD, max and average pools with padding, global pool,
// dropout, dense, softmax.
v1::Model EveryLayerKindModel();

// A RAW-block network on [1, 4, 4]: flatten, a dense layer without bias,
// and no final softmax; labels "a", "b".
v1::Model FlatModel();

// Appends layer `name` of `kind` reading `inputs`, for hand-made models.
v1::Layer* AddLayer(v1::Model& model, const std::string& name, v1::LayerKind kind,
                    const std::vector<uint32_t>& inputs);

}  // namespace impulse::testing
