// The cost calibration's timing machinery (internal to
// worker/training/cost_calibration and layer_probes): small graphs built
// layer by layer, feature matrices of random pixels to feed them, and a
// timer that runs a graph on the worker's own code path (GraphModule,
// MakeBatch, TrainStep with Adam, eval-mode forward) and keeps each graph's
// fastest call. Not thread-safe: one calibration at a time.
#pragma once

#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "impulse/model/layer_graph.h"
#include "impulse/status.h"
#include "worker/features/feature_matrix.h"
#include "worker/training/graph_module.h"
#include "worker/training/train_step.h"

namespace impulse::worker::training {

using CalibrationClock = std::chrono::steady_clock;

inline constexpr int kMinCalls = 3;
inline constexpr int kMatrixRows = 256;
// The batch sizes the worker runs: the default training batch and the
// inference batch (activations of these sizes spill caches alike).
inline constexpr int64_t kTrainRows = 64;
inline constexpr int64_t kInferRows = 256;
// A figure is never taken below this share of what its probe measured in
// all (noise can make a difference of two timings small or negative).
inline constexpr double kMinShare = 0.05;

// A graph built layer by layer, stride 1, "same" padding.
class GraphSketch {
 public:
  GraphSketch(uint32_t c, uint32_t side) : c_(c) {
    model_.set_format_version(1);
    model_.set_architecture("calibration");
    for (uint32_t d : {c, side, side}) model_.add_input_shape(d);
    model_.set_input_normalization("pixels/255");
    Add(v1::LAYER_KIND_INPUT, false);
  }

  GraphSketch& Conv(uint32_t filters, uint32_t k) { return Convolution(filters, k, false); }
  GraphSketch& Depthwise() { return Convolution(c_, 3, true); }
  GraphSketch& BatchNorm() {
    Add(v1::LAYER_KIND_BATCH_NORM).set_epsilon(1e-3f);
    return *this;
  }
  GraphSketch& Relu() {
    Add(v1::LAYER_KIND_RELU);
    return *this;
  }
  GraphSketch& MaxPool() {
    v1::Layer& l = Add(v1::LAYER_KIND_MAX_POOL);
    l.set_kernel_h(2);
    l.set_kernel_w(2);
    l.set_stride_h(2);
    l.set_stride_w(2);
    return *this;
  }
  GraphSketch& Flatten() {
    Add(v1::LAYER_KIND_FLATTEN);
    return *this;
  }
  GraphSketch& Dense(uint32_t units) {
    v1::Layer& l = Add(v1::LAYER_KIND_DENSE);
    l.set_filters(units);
    l.set_bias(true);
    return *this;
  }
  // Closes the graph with a pool (when still spatial) and a 2-way classifier.
  Result<model::LayerGraph> Finish() {
    if (!flat_) Add(v1::LAYER_KIND_GLOBAL_AVG_POOL);
    Dense(2);
    Add(v1::LAYER_KIND_SOFTMAX);
    return model::LayerGraph::FromModel(model_);
  }

 private:
  GraphSketch& Convolution(uint32_t filters, uint32_t k, bool depthwise) {
    v1::Layer& l = Add(depthwise ? v1::LAYER_KIND_DEPTHWISE_CONV2D : v1::LAYER_KIND_CONV2D);
    l.set_filters(filters);
    l.set_groups(depthwise ? c_ : 1);
    l.set_kernel_h(k);
    l.set_kernel_w(k);
    l.set_pad_top(k / 2);
    l.set_pad_bottom(k / 2);
    l.set_pad_left(k / 2);
    l.set_pad_right(k / 2);
    c_ = filters;
    return *this;
  }
  v1::Layer& Add(v1::LayerKind kind, bool chained = true) {
    const int index = model_.layers_size();
    v1::Layer& l = *model_.add_layers();
    l.set_name("l" + std::to_string(index));
    l.set_kind(kind);
    l.set_role(v1::LAYER_ROLE_BACKBONE);
    if (chained) l.add_inputs(static_cast<uint32_t>(index - 1));
    if (kind == v1::LAYER_KIND_FLATTEN) flat_ = true;
    return l;
  }

  v1::Model model_;
  uint32_t c_;
  bool flat_ = false;
};

// Feature matrices of random pixels, one per input shape the probes use;
// their files are removed with the object.
class Matrices {
 public:
  explicit Matrices(std::string dir) : dir_(std::move(dir)) {}
  ~Matrices() {
    std::error_code ignored;
    for (const auto& path : paths_) std::filesystem::remove(path, ignored);
  }

  Result<const features::FeatureMatrix*> For(uint32_t channels, uint32_t side) {
    const uint32_t key = channels * 100000 + side;
    for (size_t i = 0; i < keys_.size(); ++i) {
      if (keys_[i] == key) return &matrices_[i];
    }
    std::error_code ignored;
    std::filesystem::create_directories(dir_, ignored);  // Create() names a failure
    const std::string path =
        dir_ + "/cost-calibration-" + std::to_string(::getpid()) + "-" + std::to_string(key);
    features::FeatureShape shape{
        .flags = 0, .channels = channels, .height = side, .width = side, .labels = {"a", "b"}};
    IMPULSE_ASSIGN_OR_RETURN(auto writer,
                             features::FeatureMatrixWriter::Create(path, shape, kMatrixRows));
    paths_.push_back(path);
    std::mt19937 rng(key);
    std::vector<uint8_t> pixels(shape.row_bytes());
    for (uint32_t row = 0; row < kMatrixRows; ++row) {
      for (auto& p : pixels) p = static_cast<uint8_t>(rng());
      IMPULSE_RETURN_IF_ERROR(writer->Append({row % 2, 1, row}, pixels.data()));
    }
    IMPULSE_RETURN_IF_ERROR(writer->Finish());
    IMPULSE_ASSIGN_OR_RETURN(auto matrix, features::FeatureMatrix::Open(path));
    keys_.push_back(key);
    matrices_.push_back(std::move(matrix));
    return &matrices_.back();
  }

 private:
  std::string dir_;
  std::vector<std::string> paths_;
  std::vector<uint32_t> keys_;
  std::deque<features::FeatureMatrix> matrices_;  // stable addresses
};

// One graph made runnable: a training step (MakeBatch, forward, loss,
// backward, Adam step) or an eval-mode inference batch, on the worker's own
// code path.
class Runnable {
 public:
  Runnable(const model::LayerGraph& graph, const features::FeatureMatrix& fm, int64_t rows,
           bool train)
      : fm_(fm), rows_(rows), train_(train), module_(graph), order_(static_cast<size_t>(rows)) {
    for (int64_t i = 0; i < rows; ++i) order_[i] = static_cast<uint64_t>(i % kMatrixRows);
    module_->train(train);
    if (train) opt_ = MakeOptimizer(false, 1e-4, module_);
  }

  // Seconds of one call.
  double Run() {
    const auto t0 = CalibrationClock::now();
    if (train_) {
      TrainStep(module_, *opt_, fm_, order_.data(), rows_, false, rng_);
    } else {
      torch::NoGradGuard no_grad;
      torch::Tensor logits = module_->forward(MakeBatch(fm_, order_.data(), rows_, false, rng_));
      (void)logits.argmax(1).sum().item<int64_t>();
    }
    return std::chrono::duration<double>(CalibrationClock::now() - t0).count();
  }

 private:
  const features::FeatureMatrix& fm_;
  const int64_t rows_;
  const bool train_;
  GraphModule module_;
  std::unique_ptr<torch::optim::Optimizer> opt_;
  std::vector<uint64_t> order_;
  std::mt19937_64 rng_{1};
};

// Times graphs in `rows`-row batches of one pass.
class Timer {
 public:
  Timer(Matrices& matrices, double share_s, bool train)
      : matrices_(matrices), share_s_(share_s), train_(train) {}

  bool train() const { return train_; }
  int64_t rows() const { return train_ ? kTrainRows : kInferRows; }

  // Seconds of one call of `a` and of `b` (batches of `rows_a`, `rows_b`
  // rows), run alternately after one warm-up call each: the fastest call of
  // each. The fastest is what the machine does when nothing else runs; the
  // other processes of a busy machine only ever add to it, and a worker
  // measures itself once, at start, often while something else is busy.
  Result<std::pair<double, double>> TimePair(const model::LayerGraph& a, int64_t rows_a,
                                             const model::LayerGraph& b, int64_t rows_b) {
    IMPULSE_ASSIGN_OR_RETURN(Runnable run_a, Prepare(a, rows_a));
    IMPULSE_ASSIGN_OR_RETURN(Runnable run_b, Prepare(b, rows_b));
    run_a.Run();
    run_b.Run();
    double t_a = std::numeric_limits<double>::infinity(), t_b = t_a;
    const auto started = CalibrationClock::now();
    for (int calls = 0;
         calls < kMinCalls ||
         std::chrono::duration<double>(CalibrationClock::now() - started).count() < share_s_;
         ++calls) {
      t_a = std::min(t_a, run_a.Run());
      t_b = std::min(t_b, run_b.Run());
    }
    return std::pair{t_a, t_b};
  }

  // Seconds of one call of `graph` on `rows` rows: the fastest of `calls`
  // after a warm-up call.
  Result<double> TimeOne(const model::LayerGraph& graph, int64_t rows, int calls) {
    IMPULSE_ASSIGN_OR_RETURN(Runnable run, Prepare(graph, rows));
    run.Run();
    double fastest = std::numeric_limits<double>::infinity();
    for (int i = 0; i < calls; ++i) fastest = std::min(fastest, run.Run());
    return fastest;
  }

 private:
  Result<Runnable> Prepare(const model::LayerGraph& graph, int64_t rows) {
    const auto input = graph.input_shape();
    IMPULSE_ASSIGN_OR_RETURN(const features::FeatureMatrix* fm, matrices_.For(input[0], input[1]));
    return Runnable(graph, *fm, rows, train_);
  }

  Matrices& matrices_;
  const double share_s_;
  const bool train_;
};

}  // namespace impulse::worker::training
