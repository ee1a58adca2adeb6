// Single-image float32 latency of a trained model on this machine, for the
// `host` target's device figures (worker/device/device_figures.h). The
// header is LibTorch-free; the implementation runs LibTorch.
#pragma once

#include "impulse/status.h"
#include "impulse/v1/model.pb.h"

namespace impulse::worker::training {

// The median wall time, in milliseconds, of `repeats` forward passes of one
// [1, C, H, W] image (eval mode, no autograd) on `threads` LibTorch threads
// (process-wide), after one warm-up pass. InvalidArgument when the model
// is malformed or lacks weights; Internal with LibTorch's message if it
// throws. Thread-compatible, like PredictLogits.
Result<double> MeasureFloatLatencyMs(const v1::Model& model, int repeats, int threads);

}  // namespace impulse::worker::training
