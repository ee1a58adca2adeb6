// The quantize-evaluate task: measures the trained model on the held-out
// rows and writes the artifacts a user takes away.
//
// Inputs (TaskSpec.inputs): "model" (the train task's serialized v1::Model
// with weights and labels), "features" (the feature matrix the model was
// trained on); and TaskSpec.dependency_results.training_log, the epochs the
// train task recorded (without them training_curves.png says "no training
// log" and results.warnings says why).
//
// Algorithm:
//   1. Open the model and the features; check that their labels and
//      [C, H, W] agree.
//   2. Recreate the train task's split with the same function and settings
//      (worker/training/rows.h SplitRows, WithDefaults(impulse).training's
//      validation_split and seed), so "validation" means the same rows.
//   3. float32: logits of the validation and test rows from the worker's
//      float inference (worker/training/inference.h), in chunks between which
//      progress is reported and cancellation is honoured; SplitMetrics
//      (split_metrics.h) of each.
//   4. Artifacts: model_f32.onnx (worker/export/onnx_export.h, checked by
//      libonnx), confusion_matrix_f32.png (the test set; the validation set
//      when there is no test row), training_curves.png.
//   5. int8 (evaluate_int8.h): calibrate on training rows, quantize,
//      evaluate the same rows with the integer interpreter, fill
//      results.int8 and results.quantization_method, and add
//      confusion_matrix_i8.png, model_i8/model.h, model_i8/model.c and
//      model_i8.onnx — a second stage over the same loaded inputs and split.
// Output: results.labels, results.float32.{validation,test},
// results.int8.{validation,test}, results.quantization_method,
// results.warnings, the artifacts.
// results.training_log is left to the train task (repeated results are
// concatenated when the coordinator merges task outputs).
//
// Failures: FailedPrecondition when the model or features input is missing;
// InvalidArgument when the model does not parse or does not fit the
// features (labels or shape, naming both); Cancelled when
// ctx.StopRequested(); a blob error as ctx returned it; Internal when an
// artifact cannot be written or the exported ONNX fails the checker.
//
// Uses ctx.Threads() LibTorch threads for float inference and calibration,
// and as many threads for integer inference.
#pragma once

#include "impulse/status.h"
#include "impulse/v1/coordinator.pb.h"
#include "impulse/v1/job.pb.h"
#include "worker/task_context.h"

namespace impulse::worker::evaluation {

Result<v1::TaskOutput> EvaluateAndExport(const v1::TaskSpec& spec, TaskContext& ctx);

}  // namespace impulse::worker::evaluation
