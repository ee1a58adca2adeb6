#include "worker/evaluation/evaluate_int8.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "impulse/model/fused_ops.h"
#include "worker/device/device_figures.h"
#include "worker/evaluation/plots.h"
#include "worker/evaluation/split_metrics.h"
#include "worker/export/c_emitter.h"
#include "worker/export/onnx_export.h"
#include "worker/export/onnx_qdq_export.h"
#include "worker/features/parallel.h"
#include "worker/int8/interpreter.h"
#include "worker/int8/quantizer.h"
#include "worker/training/calibration.h"

namespace impulse::worker::evaluation {
namespace {

// Rows per parallel block of integer inference: progress and cancellation
// are checked between.
constexpr size_t kChunkRows = 2048;
constexpr size_t kGrain = 16;
// Calibration rows the per-op error analysis compares on, and how many of
// the worst ops the warning names.
constexpr size_t kErrorRows = 8;
constexpr size_t kWorstOps = 3;

// Maps the stage's own progress in [0, 1] onto the task's.
struct Progress {
  TaskContext& ctx;
  double from;
  void Report(double fraction, const std::string& what) const {
    ctx.ReportProgress(from + (1 - from) * std::clamp(fraction, 0.0, 1.0), what);
  }
};

std::string Fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

std::string MethodName(double percentile) {
  if (percentile >= 100) return "minmax";
  std::ostringstream name;
  name << "percentile(" << percentile << ")";
  return name.str();
}

// The int8 input of a feature row: pixel - 128 (scale 1/255, zero point -128).
void ToInt8(const uint8_t* pixels, std::vector<int8_t>& input) {
  for (size_t k = 0; k < input.size(); ++k) input[k] = static_cast<int8_t>(pixels[k] - 128);
}

// Scores `rows` with the integer interpreter on ctx.Threads() threads, one
// Interpreter each; rows are added to the metrics in order, so the result
// does not depend on the thread count.
Result<v1::SplitMetrics> EvaluateInt8(const EvaluationInputs& in, const int8::QuantizedModel& model,
                                      const std::vector<uint64_t>& rows, const std::string& what,
                                      const Progress& progress, double from, double span) {
  const size_t classes = in.labels.size();
  const int8::QuantizedOp& last = model.ops.back();
  if (last.op.output_elements != classes) {
    return Internal("int8: the model outputs " + std::to_string(last.op.output_elements) +
                    " values for " + std::to_string(classes) + " labels");
  }
  const bool softmax = last.op.kind == model::OpKind::kSoftmax;
  SplitMetricsAccumulator metrics(in.labels,
                                  softmax ? ScoreKind::kProbabilities : ScoreKind::kLogits);
  const int threads = std::max(1, progress.ctx.Threads());
  std::vector<int8::Interpreter> interpreters;
  interpreters.reserve(threads);
  for (int t = 0; t < threads; ++t) interpreters.emplace_back(model);
  const size_t row_bytes = in.features.shape().row_bytes();
  std::vector<float> scores(kChunkRows * classes);
  for (size_t start = 0; start < rows.size(); start += kChunkRows) {
    if (progress.ctx.StopRequested()) return Cancelled("quantize-evaluate: stopped");
    const size_t n = std::min(kChunkRows, rows.size() - start);
    features::ParallelFor(threads, n, kGrain, [&](size_t begin, size_t end, int thread) {
      std::vector<int8_t> input(row_bytes), output(classes);
      for (size_t i = begin; i < end; ++i) {
        ToInt8(in.features.pixels(rows[start + i]), input);
        interpreters[thread].Invoke(input, output);
        for (size_t j = 0; j < classes; ++j) {
          scores[i * classes + j] = last.output.scale * (output[j] - last.output.zero_point);
        }
      }
    });
    for (size_t i = 0; i < n; ++i) {
      IMPULSE_RETURN_IF_ERROR(metrics.Add(in.features.info(rows[start + i]).label,
                                          {scores.data() + i * classes, classes}));
    }
    progress.Report(from + span * static_cast<double>(start + n) / static_cast<double>(rows.size()),
                    "int8 " + what);
  }
  return metrics.Finish();
}

struct Candidate {
  int8::QuantizedModel model;
  v1::SplitMetrics validation;
};

Result<Candidate> TryRanges(const EvaluationInputs& in, const training::ActivationStats& stats,
                            double percentile, const Progress& progress, double from, double span) {
  IMPULSE_ASSIGN_OR_RETURN(
      int8::QuantizedModel model,
      int8::Quantize(in.graph, training::Ranges(stats, percentile), {MethodName(percentile)}));
  IMPULSE_ASSIGN_OR_RETURN(v1::SplitMetrics validation,
                           EvaluateInt8(in, model, in.split.validation,
                                        "validation, " + model.method, progress, from, span));
  return Candidate{std::move(model), std::move(validation)};
}

// The ops whose dequantized int8 outputs differ most from the float layers
// they replace, as "name SQNR dB (range [lo, hi])", worst first.
Result<std::string> WorstOps(const EvaluationInputs& in, const int8::QuantizedModel& model,
                             const std::vector<uint64_t>& rows, int threads) {
  std::map<int, size_t> slot;  // op -> index into `layers`
  std::vector<int> layers;
  for (size_t i = 0; i < model.ops.size(); ++i) {
    const int layer = model.ops[i].op.output_layer;
    if (layer > in.graph.logits_layer()) continue;  // the softmax: not run in float
    slot[static_cast<int>(i)] = layers.size();
    layers.push_back(layer);
  }
  IMPULSE_ASSIGN_OR_RETURN(
      auto floats, training::LayerOutputs(in.graph.model(), in.features, rows, layers, threads));
  std::vector<double> signal(model.ops.size()), noise(model.ops.size());
  int8::Interpreter interpreter(model);
  std::vector<int8_t> input(in.features.shape().row_bytes());
  std::vector<int8_t> output(model.ops.back().op.output_elements);
  for (size_t r = 0; r < rows.size(); ++r) {
    ToInt8(in.features.pixels(rows[r]), input);
    interpreter.Invoke(input, output, [&](int op, std::span<const int8_t> q) {
      auto found = slot.find(op);
      if (found == slot.end()) return;
      const std::vector<float>& f = floats[r][found->second];
      const int8::QuantParams& p = model.ops[op].output;
      for (size_t k = 0; k < q.size() && k < f.size(); ++k) {
        const double error = f[k] - p.scale * (q[k] - p.zero_point);
        signal[op] += static_cast<double>(f[k]) * f[k];
        noise[op] += error * error;
      }
    });
  }
  std::vector<std::pair<double, int>> sqnr;
  for (const auto& [op, unused] : slot) {
    sqnr.emplace_back(10 * std::log10((signal[op] + 1e-30) / (noise[op] + 1e-30)), op);
  }
  std::sort(sqnr.begin(), sqnr.end());
  std::string text;
  for (size_t k = 0; k < std::min(kWorstOps, sqnr.size()); ++k) {
    const int8::QuantizedOp& op = model.ops[sqnr[k].second];
    const double lo = op.output.scale * (-128 - op.output.zero_point);
    const double hi = op.output.scale * (127 - op.output.zero_point);
    text += (k ? ", " : "") + op.name + " " + Fixed(sqnr[k].first, 1) + " dB (range [" +
            Fixed(lo, 3) + ", " + Fixed(hi, 3) + "])";
  }
  return text;
}

Status WriteArtifacts(const EvaluationInputs& in, const int8::QuantizedModel& model,
                      const v1::ModelResults& i8, TaskContext& ctx, v1::TaskOutput& output) {
  const std::string dir = ctx.ScratchDir();
  const bool use_test = i8.test().samples() > 0;
  const std::string matrix_path = dir + "/confusion_matrix_i8.png";
  IMPULSE_RETURN_IF_ERROR(WriteConfusionMatrixPng(
      matrix_path, (use_test ? i8.test() : i8.validation()).confusion(), in.labels,
      "int8 (" + model.method + "), " + (use_test ? "test set" : "validation set")));
  IMPULSE_RETURN_IF_ERROR(AddArtifact(ctx, matrix_path, "confusion_matrix_i8.png", output));

  const std::string library = dir + "/model_i8";
  IMPULSE_RETURN_IF_ERROR(exporters::WriteCLibrary(model, library));
  for (const char* file : {"model.h", "model.c"}) {
    IMPULSE_RETURN_IF_ERROR(
        AddArtifact(ctx, library + "/" + file, std::string("model_i8/") + file, output));
  }

  const std::string onnx_path = dir + "/model_i8.onnx";
  const exporters::OnnxExportInfo info{.impulse_name = in.impulse.name(),
                                       .normalization = exporters::NormalizationNote(in.impulse)};
  IMPULSE_RETURN_IF_ERROR(exporters::ExportQdqOnnx(model, info, onnx_path));
  return AddArtifact(ctx, onnx_path, "model_i8.onnx", output);
}

// Names the worst ops when int8 lost more than options.warn_points.
Status WarnIfFarBelow(const EvaluationInputs& in, const int8::QuantizedModel& model,
                      const std::vector<uint64_t>& calibration_rows, const Int8Options& options,
                      TaskContext& ctx, v1::JobResults& results) {
  const bool use_test = results.int8().test().samples() > 0;
  const double f32 =
      (use_test ? results.float32().test() : results.float32().validation()).accuracy();
  const double i8 = (use_test ? results.int8().test() : results.int8().validation()).accuracy();
  if ((f32 - i8) * 100 <= options.warn_points) return Status::Ok();
  const std::vector<uint64_t> rows(
      calibration_rows.begin(),
      calibration_rows.begin() +
          static_cast<ptrdiff_t>(std::min(kErrorRows, calibration_rows.size())));
  IMPULSE_ASSIGN_OR_RETURN(std::string worst, WorstOps(in, model, rows, ctx.Threads()));
  results.add_warnings("int8: " + std::string(use_test ? "test" : "validation") + " accuracy " +
                       Fixed(100 * i8, 2) + " % is " + Fixed(100 * (f32 - i8), 2) +
                       " points below float32 (" + Fixed(100 * f32, 2) + " %) with " +
                       model.method + " ranges; the ops quantized worst (SQNR of their int8 " +
                       "outputs against the float layers on " + std::to_string(rows.size()) +
                       " calibration rows): " + worst);
  return Status::Ok();
}

}  // namespace

Status Int8Stage(const EvaluationInputs& in, const Int8Options& options, TaskContext& ctx,
                 double progress_from, v1::TaskOutput& output) {
  v1::JobResults& results = *output.mutable_results();
  if (auto fused = model::FusedOps::FromGraph(in.graph); !fused.ok()) {
    results.add_warnings("int8: no int8 model, the int8 engine cannot run this network: " +
                         fused.status().message());
    return Status::Ok();
  }
  const Progress progress{ctx, progress_from};
  const std::vector<uint64_t> rows = training::CalibrationRows(
      in.features, in.split.train, options.calibration_rows, in.impulse.training().seed());
  if (rows.size() < kMinCalibrationRows) {
    results.add_warnings("int8: no int8 model: calibration needs at least " +
                         std::to_string(kMinCalibrationRows) + " training rows, the split has " +
                         std::to_string(rows.size()));
    return Status::Ok();
  }
  if (rows.size() < options.calibration_rows) {
    results.add_warnings("int8: calibrated on " + std::to_string(rows.size()) +
                         " training rows, fewer than the " +
                         std::to_string(options.calibration_rows) +
                         " asked (all the training split has); int8 ranges may be less reliable");
  }
  progress.Report(0, "int8 calibration on " + std::to_string(rows.size()) + " rows");
  IMPULSE_ASSIGN_OR_RETURN(
      training::ActivationStats stats,
      training::CollectActivationStats(in.graph.model(), in.features, rows, ctx.Threads()));
  IMPULSE_ASSIGN_OR_RETURN(Candidate best, TryRanges(in, stats, 100, progress, 0.05, 0.3));
  const double f32_validation = results.float32().validation().accuracy();
  if ((f32_validation - best.validation.accuracy()) * 100 > options.retry_points) {
    const double span = 0.15 / static_cast<double>(options.percentiles.size());
    for (size_t k = 0; k < options.percentiles.size(); ++k) {
      IMPULSE_ASSIGN_OR_RETURN(Candidate candidate, TryRanges(in, stats, options.percentiles[k],
                                                              progress, 0.35 + k * span, span));
      ctx.Log("int8: validation accuracy " + Fixed(100 * candidate.validation.accuracy(), 2) +
              " % with " + candidate.model.method + ", " +
              Fixed(100 * best.validation.accuracy(), 2) + " % with " + best.model.method);
      if (candidate.validation.accuracy() > best.validation.accuracy()) best = std::move(candidate);
    }
  }
  v1::ModelResults& i8 = *results.mutable_int8();
  *i8.mutable_validation() = best.validation;
  IMPULSE_ASSIGN_OR_RETURN(*i8.mutable_test(),
                           EvaluateInt8(in, best.model, in.split.test, "test", progress, 0.5, 0.4));
  results.set_quantization_method(best.model.method);
  ctx.Log("int8 (" + best.model.method + "): validation accuracy " +
          Fixed(100 * i8.validation().accuracy(), 2) + " %, test accuracy " +
          Fixed(100 * i8.test().accuracy(), 2) + " %");
  IMPULSE_RETURN_IF_ERROR(WarnIfFarBelow(in, best.model, rows, options, ctx, results));
  IMPULSE_RETURN_IF_ERROR(WriteArtifacts(in, best.model, i8, ctx, output));
  if (!in.device.id().empty()) {
    device::AddDeviceFigures(in.device, in.graph, &best.model, ctx.ScratchDir() + "/model_i8",
                             results);
  }
  progress.Report(1, "int8 artifacts written");
  return Status::Ok();
}

}  // namespace impulse::worker::evaluation
