// The int8 stage of the quantize-evaluate task (evaluate_export.h, step 5):
// post-training quantization of the trained model and the metrics of the
// integer arithmetic a microcontroller runs.
//
// Algorithm:
//   1. Calibration rows: up to options.calibration_rows TRAIN rows of the
//      train split, stratified and seeded with the training seed
//      (worker/training/calibration.h). Fewer than asked: a warning naming
//      both numbers. Fewer than kMinCalibrationRows: no int8 model at all
//      (ranges from a handful of images would be guesses), and a warning
//      that says so; the float32 results stand.
//   2. Activation statistics of the float model on those rows (min/max and
//      histograms per layer).
//   3. Quantize with min/max ranges (worker/int8/quantizer.h) and score the
//      validation rows with the integer interpreter. When that loses more
//      than options.retry_points to float32 on validation, quantize again
//      with each of options.percentiles and keep the model with the best
//      VALIDATION accuracy (the test set never chooses); ties keep the
//      earlier candidate. results.quantization_method names the one kept.
//   4. Score the test rows with it: results.int8.{validation,test}.
//      Inputs are pixel - 128 (scale 1/255, zero point -128); outputs are
//      dequantized, (q + 128) / 256 for a softmax, and fed to
//      SplitMetricsAccumulator (probabilities; logits for a model without a
//      softmax). ctx.Threads() threads, one Interpreter each, over blocks of
//      rows; results do not depend on the thread count.
//   5. When int8 test accuracy is more than options.warn_points below
//      float32: a warning naming the ops whose dequantized outputs are
//      furthest from the float layers' (SQNR over a few calibration rows).
//   6. Artifacts: confusion_matrix_i8.png, the C library as
//      "model_i8/model.h" and "model_i8/model.c", and model_i8.onnx (QDQ).
//   7. Device figures of both precisions for in.device
//      (worker/device/device_figures.h), the int8 ones from the C library.
//
// Failures: Cancelled when ctx.StopRequested(); Internal when an artifact
// cannot be written or LibTorch fails during calibration; a model the
// int8 engine cannot run is not a failure (the coordinator refuses it at
// submit): the stage adds a warning and leaves results.int8 empty.
#pragma once

#include <cstdint>
#include <vector>

#include "impulse/status.h"
#include "impulse/v1/coordinator.pb.h"
#include "worker/evaluation/stage.h"
#include "worker/task_context.h"

namespace impulse::worker::evaluation {

inline constexpr uint64_t kMinCalibrationRows = 10;

struct Int8Options {
  uint64_t calibration_rows = 500;  // worker/training/calibration.h's default
  // Tried in this order when min/max loses more than retry_points.
  std::vector<double> percentiles = {99.999, 99.99, 99.9};
  double retry_points = 0.5;  // accuracy points (0.5 = half a percent)
  double warn_points = 2.0;
};

// Runs the stage on `in`, whose float32 metrics are already in
// output.results().float32(); progress runs from `progress_from` to 1.
Status Int8Stage(const EvaluationInputs& in, const Int8Options& options, TaskContext& ctx,
                 double progress_from, v1::TaskOutput& output);

}  // namespace impulse::worker::evaluation
