#include "worker/training/cost_calibration.h"

#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "impulse/estimate/compute_estimate.h"
#include "impulse/estimate/reference_fit.h"
#include "impulse/impulse_spec.h"
#include "impulse/model/layer_graph.h"
#include "worker/features/feature_matrix.h"
#include "worker/features/projection.h"
#include "worker/training/calibration.h"
#include "worker/training/graph_module.h"
#include "worker/training/train_step.h"

namespace impulse::worker::training {
namespace {

using Clock = std::chrono::steady_clock;
using estimate::PassWork;

constexpr int kPairsPerPass = 12;  // TimePair calls of MeasurePass
constexpr int kMinCalls = 3;
constexpr int kReferenceCalls = 4;  // timed calls per reference network, after a warm-up
constexpr int kMatrixRows = 256;
// The batch sizes the worker runs: the default training batch and the
// inference batch (activations of these sizes spill caches alike).
constexpr int64_t kTrainRows = 64;
constexpr int64_t kInferRows = 256;
// A figure is never taken below this share of what its probe measured in
// all (noise can make a difference of two timings small or negative).
constexpr double kMinShare = 0.05;

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
    const std::string path = dir_ + "/cost-calibration-" + std::to_string(::getpid()) + "-" +
                             std::to_string(key);
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
    const auto t0 = Clock::now();
    if (train_) {
      TrainStep(module_, *opt_, fm_, order_.data(), rows_, false, rng_);
    } else {
      torch::NoGradGuard no_grad;
      torch::Tensor logits = module_->forward(MakeBatch(fm_, order_.data(), rows_, false, rng_));
      (void)logits.argmax(1).sum().item<int64_t>();
    }
    return std::chrono::duration<double>(Clock::now() - t0).count();
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
    const auto started = Clock::now();
    for (int calls = 0;
         calls < kMinCalls ||
         std::chrono::duration<double>(Clock::now() - started).count() < share_s_;
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
    IMPULSE_ASSIGN_OR_RETURN(const features::FeatureMatrix* fm,
                             matrices_.For(input[0], input[1]));
    return Runnable(graph, *fm, rows, train_);
  }

  Matrices& matrices_;
  const double share_s_;
  const bool train_;
};

// (a - b) / n, field by field.
PassWork Minus(const PassWork& a, const PassWork& b, double n) {
  PassWork d;
  for (double PassWork::*field :
       {&PassWork::conv_macs, &PassWork::conv_outputs, &PassWork::depthwise_macs,
        &PassWork::depthwise_channels, &PassWork::depthwise_1x1_channels,
        &PassWork::pointwise_macs, &PassWork::pointwise_outputs,
        &PassWork::dense_macs, &PassWork::batch_norm_elements, &PassWork::pool_elements,
        &PassWork::elements, &PassWork::layers, &PassWork::params}) {
    d.*field = (a.*field - b.*field) / n;
  }
  return d;
}

// What one more layer of a kind costs: graphs that differ only in how many
// times `layer` follows `prefix` (`fewer` vs `more`), timed, and the
// difference taken per layer and per sample, with what the figures known so
// far price (the per-layer overhead, other kinds' work) taken off.
struct LayerProbe {
  uint32_t channels = 3, side = 24;  // the input
  std::function<void(GraphSketch&)> prefix = [](GraphSketch&) {};
  std::function<void(GraphSketch&)> layer;
  int fewer = 1, more = 4;
};

struct Measured {
  double seconds = 0;  // per layer per sample, overhead off
  double total = 0;    // per layer per sample, as timed
  PassWork work;       // of one layer, one sample
};

Result<Measured> Measure(Timer& timer, const LayerProbe& probe, const v1::PassCosts& known) {
  auto build = [&](int count) {
    GraphSketch sketch(probe.channels, probe.side);
    probe.prefix(sketch);
    for (int i = 0; i < count; ++i) probe.layer(sketch);
    return sketch.Finish();
  };
  IMPULSE_ASSIGN_OR_RETURN(model::LayerGraph fewer, build(probe.fewer));
  IMPULSE_ASSIGN_OR_RETURN(model::LayerGraph more, build(probe.more));
  IMPULSE_ASSIGN_OR_RETURN(auto times, timer.TimePair(fewer, timer.rows(), more, timer.rows()));
  const auto [t_fewer, t_more] = times;
  const double n = probe.more - probe.fewer;
  Measured m;
  m.work = Minus(estimate::WorkOf(more), estimate::WorkOf(fewer), n);
  m.total = std::max(t_more - t_fewer, kMinShare * t_more) / n / timer.rows();
  m.seconds = std::max(m.total - m.work.layers * known.layer_overhead_s() / timer.rows() -
                           estimate::SampleSeconds(m.work, known),
                       kMinShare * m.total);
  return m;
}

// Two probes of one kind with different shapes: seconds = a x units_a +
// b x units_b, solved for a and b (each kept positive: when the data say
// otherwise, the other term takes the whole time).
std::pair<double, double> Solve2(const Measured& p, const Measured& q, double PassWork::*a,
                                 double PassWork::*b) {
  const double det = p.work.*a * q.work.*b - q.work.*a * p.work.*b;
  double x = (p.seconds * q.work.*b - q.seconds * p.work.*b) / det;
  double y = (p.work.*a * q.seconds - q.work.*a * p.seconds) / det;
  if (!(x > 0)) x = kMinShare * q.seconds / q.work.*a;
  if (!(y > 0)) y = kMinShare * p.seconds / p.work.*b;
  return {x, y};
}

double PerUnit(const Measured& m, double PassWork::*unit) {
  return std::max(m.seconds / (m.work.*unit), 1e-15);
}

// The per-batch and per-layer overheads: a one-layer classifier on an 8x8
// input against the same behind 24 dense layers of 16 units.
Status MeasureOverheads(Timer& timer, v1::PassCosts& c) {
  const int extra = 24;
  GraphSketch tiny(1, 8);
  tiny.Flatten();
  GraphSketch deep(1, 8);
  deep.Flatten();
  for (int i = 0; i < extra; ++i) deep.Dense(16);
  IMPULSE_ASSIGN_OR_RETURN(model::LayerGraph g_tiny, tiny.Finish());
  IMPULSE_ASSIGN_OR_RETURN(model::LayerGraph g_deep, deep.Finish());
  IMPULSE_ASSIGN_OR_RETURN(auto times, timer.TimePair(g_tiny, 2, g_deep, 2));
  const auto [t_tiny, t_deep] = times;
  c.set_layer_overhead_s(std::max((t_deep - t_tiny) / extra, kMinShare * t_deep / extra));
  const double tiny_layers = estimate::WorkOf(g_tiny).layers;
  c.set_batch_overhead_s(
      std::max(t_tiny - tiny_layers * c.layer_overhead_s(), kMinShare * t_tiny));
  return Status::Ok();
}

// Dense per MAC and, training, per parameter: a 0.66 M-parameter MLP at
// 4 and 128 rows; the slope is per sample, the intercept per step.
Status MeasureDense(Timer& timer, v1::PassCosts& c) {
  GraphSketch mlp(3, 16);
  mlp.Flatten().Dense(512).Relu().Dense(512).Relu();
  IMPULSE_ASSIGN_OR_RETURN(model::LayerGraph graph, mlp.Finish());
  const PassWork work = estimate::WorkOf(graph);
  const int64_t small = 4, large = 128;
  IMPULSE_ASSIGN_OR_RETURN(auto times, timer.TimePair(graph, small, graph, large));
  const auto [t_small, t_large] = times;
  // Noise can make the larger batch no slower; a share of its time then
  // stands in for the slope, so every figure stays positive.
  const double slope = std::max(t_large - t_small, kMinShare * t_large) / (large - small);
  const double others = work.elements * c.elementwise_s_per_element();
  c.set_dense_s_per_mac(std::max(slope - others, kMinShare * slope) / work.dense_macs);
  if (timer.train()) {
    const double fixed = c.batch_overhead_s() + work.layers * c.layer_overhead_s();
    const double intercept = t_small - small * slope - fixed;
    c.set_param_s(std::max(intercept, kMinShare * t_small) / work.params);
  }
  return Status::Ok();
}

// Every figure of one pass (training or inference), into `c`.
Status MeasurePass(Timer& timer, v1::PassCosts& c) {
  IMPULSE_RETURN_IF_ERROR(MeasureOverheads(timer, c));
  // Element-wise kinds, NCHW behind a cheap 3 -> 16 pointwise conv, as the
  // default CNN runs them.
  auto conv16 = [](GraphSketch& s) { s.Conv(16, 1); };
  IMPULSE_ASSIGN_OR_RETURN(
      Measured bn,
      Measure(timer, {.prefix = conv16, .layer = [](GraphSketch& s) { s.BatchNorm(); }}, c));
  c.set_batch_norm_s_per_element(PerUnit(bn, &PassWork::batch_norm_elements));
  IMPULSE_ASSIGN_OR_RETURN(
      Measured act,
      Measure(timer, {.prefix = conv16, .layer = [](GraphSketch& s) { s.Relu(); }, .more = 8},
              c));
  c.set_elementwise_s_per_element(PerUnit(act, &PassWork::elements));
  IMPULSE_ASSIGN_OR_RETURN(
      Measured pool,
      Measure(timer,
              {.prefix = conv16, .layer = [](GraphSketch& s) { s.MaxPool(); }, .fewer = 0, .more = 1},
              c));
  c.set_pool_s_per_element(PerUnit(pool, &PassWork::pool_elements));
  // k x k conv: a first layer on one channel (9 MACs per output) and a
  // 32 -> 32 one (288).
  IMPULSE_ASSIGN_OR_RETURN(
      Measured thin,
      Measure(timer,
              {.channels = 1, .layer = [](GraphSketch& s) { s.Conv(16, 3); }, .fewer = 0, .more = 1},
              c));
  IMPULSE_ASSIGN_OR_RETURN(
      Measured thick,
      Measure(timer,
              {.channels = 1,
               .side = 12,
               .prefix = [](GraphSketch& s) { s.Conv(32, 3); },
               .layer = [](GraphSketch& s) { s.Conv(32, 3); },
               .more = 3},
              c));
  auto [conv_mac, conv_out] = Solve2(thin, thick, &PassWork::conv_macs, &PassWork::conv_outputs);
  c.set_conv_s_per_mac(conv_mac);
  c.set_conv_s_per_output(conv_out);
  // Pointwise, channels-last behind a depthwise layer as in MobileNets:
  // 16 -> 16 on 24x24 and 128 -> 128 on 4x4 (a late stage).
  auto pointwise = [&](uint32_t channels, uint32_t side) {
    return Measure(timer,
                   {.side = side,
                    .prefix = [channels](GraphSketch& s) { s.Depthwise().Conv(channels, 1); },
                    .layer = [channels](GraphSketch& s) { s.Conv(channels, 1); },
                    .more = 5},
                   c);
  };
  IMPULSE_ASSIGN_OR_RETURN(Measured pw_thin, pointwise(16, 24));
  IMPULSE_ASSIGN_OR_RETURN(Measured pw_thick, pointwise(128, 4));
  auto [pw_mac, pw_out] =
      Solve2(pw_thin, pw_thick, &PassWork::pointwise_macs, &PassWork::pointwise_outputs);
  c.set_pointwise_s_per_mac(pw_mac);
  c.set_pointwise_s_per_output(pw_out);
  // Depthwise: 96 channels of 12x12 (MAC-bound) and 128 of 2x2 (per plane),
  // then 128 of 1x1 (a slower path of its own).
  auto depthwise = [&](uint32_t channels, uint32_t side) {
    return Measure(timer,
                   {.side = side,
                    .prefix = [channels](GraphSketch& s) { s.Conv(channels, 1); },
                    .layer = [](GraphSketch& s) { s.Depthwise(); },
                    .more = 4},
                   c);
  };
  IMPULSE_ASSIGN_OR_RETURN(Measured dw_big, depthwise(96, 12));
  IMPULSE_ASSIGN_OR_RETURN(Measured dw_small, depthwise(128, 2));
  auto [dw_mac, dw_channel] =
      Solve2(dw_big, dw_small, &PassWork::depthwise_macs, &PassWork::depthwise_channels);
  c.set_depthwise_s_per_mac(dw_mac);
  c.set_depthwise_s_per_channel(dw_channel);
  IMPULSE_ASSIGN_OR_RETURN(Measured dw_point, depthwise(128, 1));
  c.set_depthwise_1x1_s_per_channel(PerUnit(dw_point, &PassWork::depthwise_1x1_channels));
  return MeasureDense(timer, c);
}

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
    timed.push_back({.work = estimate::WorkOf(graph),
                     .rows = static_cast<double>(rows),
                     .seconds = seconds});
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
  const double seconds = FastestOf(
      2, [&] { return CollectActivationStats(model, *fm, order, threads).status(); });
  const double inference = estimate::BatchSeconds(estimate::WorkOf(graph), table.infer(), rows, false);
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
