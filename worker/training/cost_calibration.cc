#include "worker/training/cost_calibration.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <limits>
#include <random>
#include <vector>

#include "impulse/estimate/compute_estimate.h"
#include "impulse/estimate/reference_fit.h"
#include "impulse/impulse_spec.h"
#include "impulse/model/layer_graph.h"
#include "worker/features/projection.h"
#include "worker/training/calibration.h"
#include "worker/training/calibration_timer.h"
#include "worker/training/layer_probes.h"

namespace impulse::worker::training {
namespace {

using Clock = CalibrationClock;

constexpr int kPairsPerPass = 12;   // TimePair calls of MeasurePass
constexpr int kReferenceCalls = 4;  // timed calls per reference network, after a warm-up

// The networks users train, timed whole (impulse/estimate/reference_fit.h):
// the default CNN at 48x48 in its batches of 64; MobileNetV2 0.35 at 32x32
// in batches of 16 and of 64 (the same network at two batch sizes tells
// its per-batch costs from its per-sample ones) and at 64x64; MobileNetV1
// 0.25 at 48x48 in batches of 32, as transfer learning runs them. Inference
// runs each network once, in the worker's batches of 256.
Status MeasureReferences(Timer& timer, v1::PassCosts& c) {
  struct Reference {
    v1::LearningKind block;
    v1::Backbone backbone;
    float alpha;
    uint32_t side;
    int64_t train_rows;
    bool infer;  // also timed for inference
  };
  const Reference references[] = {
      {v1::LEARNING_KIND_CLASSIFICATION, v1::BACKBONE_UNSPECIFIED, 0, 48, 64, true},
      {v1::LEARNING_KIND_TRANSFER, v1::BACKBONE_MOBILENET_V2, 0.35f, 32, 16, false},
      {v1::LEARNING_KIND_TRANSFER, v1::BACKBONE_MOBILENET_V2, 0.35f, 32, 64, true},
      {v1::LEARNING_KIND_TRANSFER, v1::BACKBONE_MOBILENET_V2, 0.35f, 64, 32, true},
      {v1::LEARNING_KIND_TRANSFER, v1::BACKBONE_MOBILENET_V1, 0.25f, 48, 32, true}};
  std::vector<estimate::TimedReference> timed;
  for (const Reference& r : references) {
    if (!timer.train() && !r.infer) continue;
    v1::Impulse impulse;
    impulse.mutable_input()->set_width(r.side);
    impulse.mutable_input()->set_height(r.side);
    impulse.mutable_processing()->set_block(v1::PROCESSING_KIND_IMAGE);
    impulse.mutable_processing()->set_color(v1::COLOR_DEPTH_GRAYSCALE);
    impulse.mutable_learning()->set_block(r.block);
    impulse.mutable_learning()->set_backbone(r.backbone);
    impulse.mutable_learning()->set_alpha(r.alpha);
    IMPULSE_ASSIGN_OR_RETURN(model::LayerGraph graph,
                             model::BuildGraph(impulse::WithDefaults(impulse), 10));
    const int64_t rows = timer.train() ? r.train_rows : kInferRows;
    IMPULSE_ASSIGN_OR_RETURN(double seconds, timer.TimeOne(graph, rows, kReferenceCalls));
    timed.push_back(
        {.work = estimate::WorkOf(graph), .rows = static_cast<double>(rows), .seconds = seconds});
  }
  c = estimate::FitToReferences(c, timed, timer.train());
  return Status::Ok();
}

// The fastest of `calls` calls of `fn` (which returns a Status: a failed
// call throws, as LibTorch's would, to the caller's boundary).
template <typename Fn>
double FastestOf(int calls, Fn&& fn) {
  double fastest = std::numeric_limits<double>::infinity();
  for (int i = 0; i < calls; ++i) {
    const auto t0 = Clock::now();
    const Status status = fn();
    if (!status.ok()) throw std::runtime_error(status.ToString());
    fastest = std::min(fastest, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return fastest;
}

// The feature explorer on `threads` threads (worker/features/projection.h):
// PCA of 1 000 rows of 256 values, and t-SNE of those 1 000 points with 10
// and with 30 of its iterations: the difference prices an iteration, the
// rest the fixed part (bandwidths, P), both per pair of points, at the size
// it runs at (up to 2 000 points).
Status MeasureExplorer(int threads, v1::CostTable& table) {
  const int points = 1000, dims = 256, few = 10, many = 30;
  std::mt19937 rng(7);
  std::vector<uint8_t> pixels(static_cast<size_t>(points) * dims);
  for (auto& p : pixels) p = static_cast<uint8_t>(rng());
  std::vector<const uint8_t*> rows;
  for (int i = 0; i < points; ++i) rows.push_back(pixels.data() + static_cast<size_t>(i) * dims);
  cv::Mat projected;
  const double pca_s = FastestOf(1, [&] {
    projected = features::PcaProject(rows, dims, 50, 1, threads);
    return Status::Ok();
  });
  table.set_pca_s_per_value(pca_s / (static_cast<double>(points) * dims));

  features::TsneOptions options;
  options.threads = threads;
  const int all_iterations = options.iterations;
  auto tsne_s = [&](int iterations) {
    options.iterations = iterations;
    options.exaggeration_iterations = iterations / 3;
    return FastestOf(1, [&] { return features::Tsne(projected, options).status(); });
  };
  const double t_few = tsne_s(few), t_many = tsne_s(many);
  const double per_iteration = std::max(t_many - t_few, kMinShare * t_many) / (many - few);
  const double fixed = std::max(t_few - few * per_iteration, 0.0);
  table.set_projection_s_per_pair((fixed + all_iterations * per_iteration) /
                                  (static_cast<double>(points) * points));
  return Status::Ok();
}

// The int8 stage's activation statistics (worker/training/calibration.h)
// over 128 rows of a small CNN, less what its inference costs at the
// measured `infer` figures, per output element.
Status MeasureActivationStats(Matrices& matrices, int threads, v1::CostTable& table) {
  GraphSketch sketch(1, 24);
  sketch.Conv(16, 3).BatchNorm().Relu().MaxPool().Conv(32, 3).BatchNorm().Relu();
  IMPULSE_ASSIGN_OR_RETURN(model::LayerGraph graph, sketch.Finish());
  IMPULSE_ASSIGN_OR_RETURN(const features::FeatureMatrix* fm, matrices.For(1, 24));
  v1::Model model = graph.model();
  for (const auto& label : fm->shape().labels) model.add_labels(label);
  GraphModule(graph)->ExportWeights(&model);
  const int64_t rows = 128;
  std::vector<uint64_t> order(rows);
  for (int64_t i = 0; i < rows; ++i) order[i] = static_cast<uint64_t>(i);
  const double seconds =
      FastestOf(2, [&] { return CollectActivationStats(model, *fm, order, threads).status(); });
  const double inference =
      estimate::BatchSeconds(estimate::WorkOf(graph), table.infer(), rows, false);
  const double elements = static_cast<double>(rows * graph.TotalCost().output_elements);
  table.set_activation_stats_s_per_element(std::max(seconds - inference, kMinShare * seconds) /
                                           elements);
  return Status::Ok();
}

// The int8 evaluator is not timed here (it is not LibTorch code): its
// default figures (one thread of the development machine) divided by the
// thread count, since the evaluator runs one interpreter per thread over
// blocks of rows.
void ScaleInt8(int threads, v1::CostTable& table) {
  const v1::CostTable defaults = estimate::DefaultCostTable();
  const double ratio = 1.0 / threads;
  v1::PassCosts& int8 = *table.mutable_int8();
  int8 = defaults.int8();
  int8.set_conv_s_per_mac(int8.conv_s_per_mac() * ratio);
  int8.set_depthwise_s_per_mac(int8.depthwise_s_per_mac() * ratio);
  int8.set_pointwise_s_per_mac(int8.pointwise_s_per_mac() * ratio);
  int8.set_dense_s_per_mac(int8.dense_s_per_mac() * ratio);
}

}  // namespace

Result<v1::CostTable> MeasureCostTable(const CalibrationOptions& options) {
  const auto started = Clock::now();
  torch::set_num_threads(std::max(1, options.threads));
  Matrices matrices(options.scratch_dir.empty() ? std::filesystem::temp_directory_path().string()
                                                : options.scratch_dir);
  const double share_s = options.budget_s / (2 * kPairsPerPass);
  Timer train(matrices, share_s, true);
  Timer infer(matrices, share_s, false);
  v1::CostTable table;
  try {
    torch::manual_seed(1);
    IMPULSE_RETURN_IF_ERROR(MeasurePass(train, *table.mutable_train()));
    IMPULSE_RETURN_IF_ERROR(MeasurePass(infer, *table.mutable_infer()));
    IMPULSE_RETURN_IF_ERROR(MeasureReferences(train, *table.mutable_train()));
    IMPULSE_RETURN_IF_ERROR(MeasureReferences(infer, *table.mutable_infer()));
    IMPULSE_RETURN_IF_ERROR(MeasureExplorer(std::max(1, options.threads), table));
    IMPULSE_RETURN_IF_ERROR(MeasureActivationStats(matrices, std::max(1, options.threads), table));
    ScaleInt8(std::max(1, options.threads), table);
  } catch (const std::exception& e) {
    return Internal(std::string("cost calibration: ") + e.what());
  }
  table.set_source((options.cpu_model.empty() ? "unknown cpu" : options.cpu_model) + " x" +
                   std::to_string(std::max(1, options.threads)));
  table.set_calibration_s(std::chrono::duration<double>(Clock::now() - started).count());
  table.set_measured_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count());
  return table;
}

}  // namespace impulse::worker::training
