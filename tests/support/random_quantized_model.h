// A valid QuantizedModel for any layer graph, without weights, training or
// calibration: random int8 weights and biases, scales chosen so activations
// keep a spread of tens of int8 steps through any depth (neither all
// saturated nor all zero), multipliers from QuantizeMultiplier, ReLU /
// ReLU6 clamps, the softmax table, and the arena plan. For tests of the
// interpreter, the C library and the exporters. The same seed gives the
// same model on every machine (our own draws from std::mt19937_64).
#pragma once

#include <cstdint>

#include "impulse/model/layer_graph.h"
#include "impulse/status.h"
#include "worker/int8/quantized_model.h"

namespace impulse::testing {

// InvalidArgument from FusedOps::FromGraph when the int8 engine cannot run
// the graph. The result passes int8::CheckQuantizedModel.
Result<worker::int8::QuantizedModel> RandomQuantizedModel(const model::LayerGraph& graph,
                                                          uint64_t seed);

}  // namespace impulse::testing
