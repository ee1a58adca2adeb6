#include "worker/evaluation/evaluate_export.h"

#include <fstream>
#include <string>
#include <vector>

#include "impulse/impulse_spec.h"
#include "impulse/model/layer_graph.h"
#include "worker/device/device_figures.h"
#include "worker/evaluation/evaluate_int8.h"
#include "worker/evaluation/plots.h"
#include "worker/evaluation/split_metrics.h"
#include "worker/evaluation/stage.h"
#include "worker/export/onnx_export.h"
#include "worker/features/feature_matrix.h"
#include "worker/training/inference.h"
#include "worker/training/rows.h"

namespace impulse::worker::evaluation {
namespace {

using features::FeatureMatrix;

// Rows per inference call: progress and cancellation are checked between.
constexpr size_t kChunkRows = 2048;
// Share of the task's progress the float32 stage takes; int8 gets the rest.
constexpr double kFloatShare = 0.8;

template <typename Message>
Result<Message> ReadProtoBlob(TaskContext& ctx, const v1::TaskSpec& spec, const std::string& input,
                              const char* what) {
  auto sha = spec.inputs().find(input);
  if (sha == spec.inputs().end()) {
    return FailedPrecondition("quantize-evaluate: the task has no " + input + " input");
  }
  IMPULSE_ASSIGN_OR_RETURN(std::string path, ctx.BlobPath(sha->second));
  std::ifstream in(path, std::ios::binary);
  Message message;
  if (!in || !message.ParseFromIstream(&in)) {
    return InvalidArgument(input + ": blob " + sha->second + " is not a serialized " + what);
  }
  return message;
}

std::string LabelList(const std::vector<std::string>& labels) {
  std::string out;
  for (const auto& label : labels) out += (out.empty() ? "" : ", ") + label;
  return "[" + out + "]";
}

Result<EvaluationInputs> LoadInputs(const v1::TaskSpec& spec, TaskContext& ctx,
                                    v1::JobResults& results) {
  IMPULSE_ASSIGN_OR_RETURN(v1::Model model,
                           ReadProtoBlob<v1::Model>(ctx, spec, "model", "impulse.v1.Model"));
  auto features_sha = spec.inputs().find("features");
  if (features_sha == spec.inputs().end()) {
    return FailedPrecondition("quantize-evaluate: the task has no features input");
  }
  IMPULSE_ASSIGN_OR_RETURN(std::string features_path, ctx.BlobPath(features_sha->second));
  IMPULSE_ASSIGN_OR_RETURN(FeatureMatrix fm, FeatureMatrix::Open(features_path));

  auto graph = model::LayerGraph::FromModel(std::move(model));
  if (!graph.ok()) return graph.status().WithContext("model");
  IMPULSE_RETURN_IF_ERROR(graph->CheckWeights().WithContext("model"));

  const auto& shape = fm.shape();
  std::vector<std::string> labels(graph->model().labels().begin(), graph->model().labels().end());
  if (labels != shape.labels) {
    return InvalidArgument("model: labels " + LabelList(labels) +
                           " differ from the features' labels " + LabelList(shape.labels));
  }
  const std::vector<uint32_t> input = graph->input_shape();
  if (input != std::vector<uint32_t>{shape.channels, shape.height, shape.width}) {
    return InvalidArgument("model: input " + model::ShapeString(input) +
                           " differs from the features' [" + std::to_string(shape.channels) + "," +
                           std::to_string(shape.height) + "," + std::to_string(shape.width) + "]");
  }

  const v1::Impulse impulse = WithDefaults(spec.impulse());
  training::RowSplit split =
      training::SplitRows(fm, impulse.training().validation_split(), impulse.training().seed());

  const auto& recorded = spec.dependency_results().training_log();
  std::vector<v1::EpochStats> log(recorded.begin(), recorded.end());
  if (log.empty()) {
    results.add_warnings(
        "training_curves.png: the train task reported no epochs, so the picture is empty");
  }
  auto target = device::TaskDevice(spec);
  if (!target.ok()) results.add_warnings("device: " + target.status().message() + "; no figures");
  return EvaluationInputs{.impulse = impulse,
                          .graph = std::move(graph).value(),
                          .features = std::move(fm),
                          .split = std::move(split),
                          .labels = std::move(labels),
                          .training_log = std::move(log),
                          .device = target.ok() ? *target : v1::Device()};
}

// Scores `rows` with the float32 model; progress runs from `progress_from`
// over `progress_span` of the task.
Result<v1::SplitMetrics> EvaluateFloat(const EvaluationInputs& in,
                                       const std::vector<uint64_t>& rows,
                                       const std::string& split_name, TaskContext& ctx,
                                       double progress_from, double progress_span) {
  SplitMetricsAccumulator metrics(in.labels, ScoreKind::kLogits);
  for (size_t start = 0; start < rows.size(); start += kChunkRows) {
    if (ctx.StopRequested()) return Cancelled("quantize-evaluate: stopped");
    const std::vector<uint64_t> chunk(rows.begin() + start,
                                      rows.begin() + std::min(rows.size(), start + kChunkRows));
    IMPULSE_ASSIGN_OR_RETURN(
        auto logits, training::PredictLogits(in.graph.model(), in.features, chunk, ctx.Threads()));
    for (size_t i = 0; i < chunk.size(); ++i) {
      IMPULSE_RETURN_IF_ERROR(metrics.Add(in.features.info(chunk[i]).label, logits[i]));
    }
    ctx.ReportProgress(progress_from + progress_span * static_cast<double>(start + chunk.size()) /
                                           static_cast<double>(rows.size()),
                       "float32 " + split_name);
  }
  return metrics.Finish();
}

// The float32 stage: metrics of both splits and the float32 artifacts.
Status Float32Stage(const EvaluationInputs& in, TaskContext& ctx, v1::TaskOutput& output) {
  const double validation_share =
      in.split.validation.size() + in.split.test.size() == 0
          ? 0.5
          : static_cast<double>(in.split.validation.size()) /
                static_cast<double>(in.split.validation.size() + in.split.test.size());
  v1::ModelResults& f32 = *output.mutable_results()->mutable_float32();
  IMPULSE_ASSIGN_OR_RETURN(*f32.mutable_validation(),
                           EvaluateFloat(in, in.split.validation, "validation", ctx, 0,
                                         kFloatShare * 0.9 * validation_share));
  IMPULSE_ASSIGN_OR_RETURN(
      *f32.mutable_test(),
      EvaluateFloat(in, in.split.test, "test", ctx, kFloatShare * 0.9 * validation_share,
                    kFloatShare * 0.9 * (1 - validation_share)));
  ctx.Log("float32: validation accuracy " + std::to_string(f32.validation().accuracy()) + " on " +
          std::to_string(f32.validation().samples()) + " rows, test accuracy " +
          std::to_string(f32.test().accuracy()) + " on " + std::to_string(f32.test().samples()) +
          " rows");

  const std::string dir = ctx.ScratchDir();
  const std::string onnx_path = dir + "/model_f32.onnx";
  const exporters::OnnxExportInfo info{.impulse_name = in.impulse.name(),
                                       .normalization = exporters::NormalizationNote(in.impulse)};
  IMPULSE_RETURN_IF_ERROR(exporters::ExportFloatOnnx(in.graph, info, onnx_path));
  IMPULSE_RETURN_IF_ERROR(AddArtifact(ctx, onnx_path, "model_f32.onnx", output));

  const bool use_test = f32.test().samples() > 0;
  const std::string matrix_path = dir + "/confusion_matrix_f32.png";
  IMPULSE_RETURN_IF_ERROR(WriteConfusionMatrixPng(
      matrix_path, (use_test ? f32.test() : f32.validation()).confusion(), in.labels,
      std::string("float32, ") + (use_test ? "test set" : "validation set")));
  IMPULSE_RETURN_IF_ERROR(AddArtifact(ctx, matrix_path, "confusion_matrix_f32.png", output));

  const std::string curves_path = dir + "/training_curves.png";
  IMPULSE_RETURN_IF_ERROR(WriteTrainingCurvesPng(curves_path, in.training_log));
  IMPULSE_RETURN_IF_ERROR(AddArtifact(ctx, curves_path, "training_curves.png", output));
  ctx.ReportProgress(kFloatShare, "float32 artifacts written");
  return Status::Ok();
}

Result<v1::TaskOutput> EvaluateAndExportUnguarded(const v1::TaskSpec& spec, TaskContext& ctx) {
  v1::TaskOutput output;
  v1::JobResults& results = *output.mutable_results();
  IMPULSE_ASSIGN_OR_RETURN(EvaluationInputs inputs, LoadInputs(spec, ctx, results));
  for (const auto& label : inputs.labels) results.add_labels(label);
  ctx.Log("evaluating on " + std::to_string(inputs.split.validation.size()) + " validation and " +
          std::to_string(inputs.split.test.size()) + " test rows");
  IMPULSE_RETURN_IF_ERROR(Float32Stage(inputs, ctx, output));
  IMPULSE_RETURN_IF_ERROR(Int8Stage(inputs, Int8Options{}, ctx, kFloatShare, output));
  // The int8 stage adds both precisions' device figures; without an int8
  // model, float32's alone.
  if (results.target().empty() && !inputs.device.id().empty()) {
    device::AddDeviceFigures(inputs.device, inputs.graph, nullptr, "", results);
  }
  ctx.ReportProgress(1.0, "done");
  return output;
}

}  // namespace

Result<v1::TaskOutput> EvaluateAndExport(const v1::TaskSpec& spec, TaskContext& ctx) {
  // OpenCV (the pictures) may throw; LibTorch's errors are already Statuses.
  try {
    return EvaluateAndExportUnguarded(spec, ctx);
  } catch (const std::exception& e) {
    return Internal(std::string("quantize-evaluate: ") + e.what());
  }
}

}  // namespace impulse::worker::evaluation
