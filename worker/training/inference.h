// Float32 inference over feature rows, for the evaluation task and tests.
// The header is LibTorch-free; the implementation runs LibTorch.
#pragma once

#include <cstdint>
#include <vector>

#include "impulse/status.h"
#include "impulse/v1/model.pb.h"
#include "worker/features/feature_matrix.h"

namespace impulse::worker::training {

// The logits (pre-softmax outputs, one vector of model.labels_size() or
// classes floats per row) of `model` on `rows` of `features`, in the order
// of `rows`. Pixels are scaled as model.input_normalization says
// ("pixels/255"), in eval mode (dropout off, batch norms on their running
// statistics), in batches of 256 on `threads` LibTorch threads (this sets
// LibTorch's process-wide thread count).
//
// InvalidArgument when the model is malformed, lacks a weight tensor, or
// its input shape differs from the features' [C, H, W]; Internal with the
// LibTorch op's message if LibTorch throws. Thread-compatible: one call at
// a time per process (LibTorch's thread count is global).
Result<std::vector<std::vector<float>>> PredictLogits(const v1::Model& model,
                                                      const features::FeatureMatrix& features,
                                                      const std::vector<uint64_t>& rows,
                                                      int threads);

}  // namespace impulse::worker::training
