// A trained model quantized as the quantize-evaluate task first quantizes
// it (worker/evaluation/evaluate_int8.h, steps 1-3 without the percentile
// retries): min/max ranges over worker/training/calibration.h's default
// number of stratified calibration rows of the training split, then
// worker/int8/quantizer.h. For tests and benchmarks that need the int8
// model without running the task.
#pragma once

#include "impulse/status.h"
#include "impulse/v1/model.pb.h"
#include "worker/features/feature_matrix.h"
#include "worker/int8/quantized_model.h"

namespace impulse::testing {

// Errors as CollectActivationStats, LayerGraph::FromModel and Quantize
// report them. Sets LibTorch's thread count to `threads`.
Result<worker::int8::QuantizedModel> QuantizeMinMax(const v1::Model& model,
                                                    const worker::features::FeatureMatrix& features,
                                                    int threads);

}  // namespace impulse::testing
