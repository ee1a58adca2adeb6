// What the stages of the quantize-evaluate task (evaluate_export.h) share:
// the inputs, loaded and checked once, and the upload of an artifact.
// Internal to worker/evaluation/.
#pragma once

#include <string>
#include <vector>

#include "impulse/model/layer_graph.h"
#include "impulse/status.h"
#include "impulse/v1/coordinator.pb.h"
#include "impulse/v1/device.pb.h"
#include "impulse/v1/impulse.pb.h"
#include "worker/features/feature_matrix.h"
#include "worker/task_context.h"
#include "worker/training/rows.h"

namespace impulse::worker::evaluation {

// Everything both precisions evaluate on. Read-only once loaded.
struct EvaluationInputs {
  v1::Impulse impulse;  // with defaults
  model::LayerGraph graph;
  features::FeatureMatrix features;
  training::RowSplit split;  // the train task's split (rows.h)
  std::vector<std::string> labels;
  std::vector<v1::EpochStats> training_log;
  v1::Device device;  // the target (worker/device/device_figures.h TaskDevice); empty: unknown
};

// Uploads the file at `path` (ctx.PutBlob) and lists it in `output` as the
// artifact `name` ("model_f32.onnx", "model_i8/model.c"). A blob error as
// ctx returned it; Internal when the file cannot be read.
Status AddArtifact(TaskContext& ctx, const std::string& path, const std::string& name,
                   v1::TaskOutput& output);

}  // namespace impulse::worker::evaluation
