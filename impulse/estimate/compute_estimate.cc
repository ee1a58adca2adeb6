#include "impulse/estimate/compute_estimate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include "impulse/impulse_spec.h"

namespace impulse::estimate {
namespace {

// The worker's fixed batch sizes and sample counts (worker/training,
// worker/features, worker/evaluation).
constexpr double kInferBatch = 256;
constexpr double kProjectionMaxSamples = 2000;
constexpr double kProjectionMaxValues = 4096;
constexpr double kCalibrationRows = 500;

// Smaller input sides FitAdvice tries, largest first.
constexpr uint32_t kAdviceSides[] = {224, 192, 160, 128, 112, 96, 80, 64, 56, 48,
                                     40,  32,  28,  24,  20,  16, 12, 8};
constexpr float kMobileNetV1Alphas[] = {1.0f, 0.75f, 0.5f, 0.35f, 0.25f, 0.2f, 0.1f};
constexpr float kMobileNetV2Alphas[] = {1.0f, 0.75f, 0.5f, 0.35f, 0.1f, 0.05f};

// Every zero double of `m` (nested messages included) from `d`.
void FillZeros(google::protobuf::Message* m, const google::protobuf::Message& d) {
  const auto* descriptor = m->GetDescriptor();
  const auto* reflection = m->GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const auto* field = descriptor->field(i);
    if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_DOUBLE) {
      if (reflection->GetDouble(*m, field) == 0) {
        reflection->SetDouble(m, field, d.GetReflection()->GetDouble(d, field));
      }
    } else if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
      FillZeros(reflection->MutableMessage(m, field), d.GetReflection()->GetMessage(d, field));
    }
  }
}

}  // namespace

double SampleSeconds(const PassWork& w, const PassCosts& c) {
  return w.conv_macs * c.conv_s_per_mac() + w.conv_outputs * c.conv_s_per_output() +
         w.depthwise_macs * c.depthwise_s_per_mac() +
         w.depthwise_channels * c.depthwise_s_per_channel() +
         w.depthwise_1x1_channels * c.depthwise_1x1_s_per_channel() +
         w.pointwise_macs * c.pointwise_s_per_mac() +
         w.pointwise_outputs * c.pointwise_s_per_output() + w.dense_macs * c.dense_s_per_mac() +
         w.batch_norm_elements * c.batch_norm_s_per_element() +
         w.pool_elements * c.pool_s_per_element() +
         w.elements * c.elementwise_s_per_element();
}

namespace {

double BatchFixedSeconds(const PassWork& w, const PassCosts& c, bool optimizer_step) {
  return w.layers * c.layer_overhead_s() + (optimizer_step ? w.params * c.param_s() : 0);
}

// Inference over `rows` rows in the worker's batches of 256.
double InferSeconds(const PassWork& w, const PassCosts& c, double rows) {
  if (rows <= 0) return 0;
  const double batches = std::ceil(rows / kInferBatch);
  return batches * (c.batch_overhead_s() + BatchFixedSeconds(w, c, false)) +
         rows * SampleSeconds(w, c);
}

// One training step of `rows` rows; with a frozen backbone only the head
// runs backward and steps, the backbone runs as inference does.
double StepSeconds(const PassWork& all, const PassWork& backbone, const PassWork& head,
                   const CostTable& c, double rows, bool frozen) {
  if (!frozen) return BatchSeconds(all, c.train(), rows, true);
  return c.train().batch_overhead_s() + BatchFixedSeconds(backbone, c.infer(), false) +
         rows * SampleSeconds(backbone, c.infer()) + BatchFixedSeconds(head, c.train(), true) +
         rows * SampleSeconds(head, c.train());
}

std::string Seconds(double s) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.0f s", s);
  return text;
}

std::string AlphaText(float alpha) {
  char text[16];
  std::snprintf(text, sizeof(text), "%g", alpha);
  return text;
}

std::optional<double> TotalOf(const v1::Impulse& impulse, const DatasetSize& data,
                              const CostTable& cost) {
  auto estimate = EstimateJob(impulse, data, cost);
  if (!estimate.ok()) return std::nullopt;
  return estimate->total_s;
}

}  // namespace

CostTable DefaultCostTable() {
  // Measured with worker/training/cost_calibration on the development
  // machine (Intel Xeon @ 2.50 GHz, 1 thread); docs/COMPUTE.md.
  CostTable t;
  PassCosts& train = *t.mutable_train();
  train.set_conv_s_per_mac(0.05e-9);
  train.set_conv_s_per_output(8e-9);
  train.set_depthwise_s_per_mac(0.4e-9);
  train.set_depthwise_s_per_channel(0.18e-6);
  train.set_depthwise_1x1_s_per_channel(0.75e-6);
  train.set_pointwise_s_per_mac(0.047e-9);
  train.set_pointwise_s_per_output(2.6e-9);
  train.set_dense_s_per_mac(0.1e-9);
  train.set_batch_norm_s_per_element(8.7e-9);
  train.set_pool_s_per_element(10e-9);
  train.set_elementwise_s_per_element(2.2e-9);
  train.set_batch_overhead_s(0.1e-3);
  train.set_layer_overhead_s(55e-6);
  train.set_param_s(15e-9);
  PassCosts& infer = *t.mutable_infer();
  infer.set_conv_s_per_mac(0.022e-9);
  infer.set_conv_s_per_output(6e-9);
  infer.set_depthwise_s_per_mac(0.18e-9);
  infer.set_depthwise_s_per_channel(7e-9);
  infer.set_depthwise_1x1_s_per_channel(6e-9);
  infer.set_pointwise_s_per_mac(0.024e-9);
  infer.set_pointwise_s_per_output(1.5e-9);
  infer.set_dense_s_per_mac(0.04e-9);
  infer.set_batch_norm_s_per_element(0.25e-9);
  infer.set_pool_s_per_element(5e-9);
  infer.set_elementwise_s_per_element(0.8e-9);
  infer.set_batch_overhead_s(10e-6);
  infer.set_layer_overhead_s(3e-6);
  // The int8 interpreter's kernels, one thread (depthwise is its slow one).
  PassCosts& int8 = *t.mutable_int8();
  int8.set_conv_s_per_mac(1.0e-9);
  int8.set_depthwise_s_per_mac(8.8e-9);
  int8.set_pointwise_s_per_mac(1.1e-9);
  int8.set_dense_s_per_mac(2.7e-9);
  t.set_features_s_per_sample(5e-6);
  t.set_features_s_per_pixel(5e-9);
  t.set_projection_s_per_pair(1.2e-6);
  t.set_pca_s_per_value(2.8e-7);
  t.set_task_overhead_s(0.5);
  t.set_checkpoint_s_per_param(20e-9);
  t.set_activation_stats_s_per_element(10e-9);
  t.set_export_s_per_param(3.5e-6);
  t.set_features_scale(1);
  t.set_train_scale(1);
  t.set_evaluate_scale(1);
  t.set_source("default");
  return t;
}

CostTable WithDefaultCosts(const CostTable& cost) {
  const CostTable d = DefaultCostTable();
  CostTable t = cost;
  FillZeros(&t, d);
  if (t.source().empty()) t.set_source(d.source());
  return t;
}

PassWork WorkOf(const model::LayerGraph& graph, Layers which) {
  PassWork work;
  for (int i = 0; i < graph.size(); ++i) {
    const v1::Layer& layer = graph.layer(i);
    const bool head = layer.role() == v1::LAYER_ROLE_HEAD;
    if ((which == Layers::kHead && !head) || (which == Layers::kBackbone && head)) continue;
    const model::LayerCost cost = graph.Cost(i);
    const double macs = static_cast<double>(cost.macs);
    const double outputs = static_cast<double>(cost.output_elements);
    const double inputs =
        i == 0 ? 0 : static_cast<double>(graph.Cost(static_cast<int>(layer.inputs(0))).output_elements);
    const bool asymmetric =
        layer.pad_top() != layer.pad_bottom() || layer.pad_left() != layer.pad_right();
    work.params += static_cast<double>(cost.params);
    // Dispatch, autograd and the optimizer's per-tensor work are what a
    // layer costs per batch; layers without weights cost little of it.
    if (cost.params > 0) work.layers += 1;
    switch (layer.kind()) {
      case v1::LAYER_KIND_CONV2D:
      case v1::LAYER_KIND_DEPTHWISE_CONV2D:
        // The worker pads asymmetric "same" padding as a copy of the input.
        if (asymmetric) work.elements += inputs;
        if (layer.kind() == v1::LAYER_KIND_DEPTHWISE_CONV2D || layer.groups() > 1) {
          work.depthwise_macs += macs;
          (outputs == layer.output_shape(0) ? work.depthwise_1x1_channels
                                            : work.depthwise_channels) += layer.output_shape(0);
        } else if (layer.kernel_h() == 1 && layer.kernel_w() == 1) {
          work.pointwise_macs += macs;
          work.pointwise_outputs += outputs;
        } else {
          work.conv_macs += macs;
          work.conv_outputs += outputs;
        }
        break;
      case v1::LAYER_KIND_DENSE:
        work.dense_macs += macs;
        break;
      case v1::LAYER_KIND_BATCH_NORM:
        work.batch_norm_elements += outputs;
        break;
      case v1::LAYER_KIND_MAX_POOL:
      case v1::LAYER_KIND_AVG_POOL:
        work.pool_elements += inputs;
        break;
      case v1::LAYER_KIND_GLOBAL_AVG_POOL:
        work.elements += inputs;
        break;
      case v1::LAYER_KIND_FLATTEN:
        break;  // a view
      default:  // the input's conversion, activations, adds, dropout, softmax
        work.elements += outputs;
        break;
    }
  }
  return work;
}

double BatchSeconds(const PassWork& work, const PassCosts& costs, double rows,
                    bool optimizer_step) {
  return costs.batch_overhead_s() + BatchFixedSeconds(work, costs, optimizer_step) +
         rows * SampleSeconds(work, costs);
}

double TrainGmacsPerSecond(const CostTable& cost) {
  const double s = cost.train().conv_s_per_mac();
  return s > 0 ? 1e-9 / s : 0;
}

double ReferenceSeconds(const CostTable& cost) {
  v1::Impulse cnn;
  cnn.mutable_input()->set_width(32);
  cnn.mutable_input()->set_height(32);
  cnn.mutable_processing()->set_block(v1::PROCESSING_KIND_IMAGE);
  cnn.mutable_processing()->set_color(v1::COLOR_DEPTH_GRAYSCALE);
  cnn.mutable_learning()->set_block(v1::LEARNING_KIND_CLASSIFICATION);
  cnn.mutable_training()->set_epochs(1);
  v1::Impulse mobilenet = cnn;
  mobilenet.mutable_input()->set_width(96);
  mobilenet.mutable_input()->set_height(96);
  mobilenet.mutable_processing()->set_color(v1::COLOR_DEPTH_RGB);
  mobilenet.mutable_learning()->set_block(v1::LEARNING_KIND_TRANSFER);
  const DatasetSize data{.train_rows = 1000, .test_rows = 0, .classes = 10};
  double seconds = 0;
  for (const v1::Impulse& impulse : {cnn, mobilenet}) {
    auto e = EstimateJob(impulse, data, cost);
    if (e.ok()) seconds += e->train_s;
  }
  return seconds;
}

Result<JobEstimate> EstimateJob(const v1::Impulse& raw_impulse, const DatasetSize& data,
                                const CostTable& raw_cost) {
  const v1::Impulse impulse = impulse::WithDefaults(raw_impulse);
  const CostTable cost = WithDefaultCosts(raw_cost);
  JobEstimate e;
  e.cost_source = cost.source();

  const double channels = impulse.processing().color() == v1::COLOR_DEPTH_GRAYSCALE ? 1 : 3;
  const double pixels = channels * impulse.input().width() * impulse.input().height();
  const double all_rows = static_cast<double>(data.train_rows + data.test_rows);
  if (!data.features_cached) {
    // The explorer projects a stratified sample: PCA, then exact t-SNE,
    // quadratic in the samples (worker/features/projection.h).
    const double projected = std::min(all_rows, kProjectionMaxSamples);
    e.features_s =
        cost.task_overhead_s() +
        all_rows * (cost.features_s_per_sample() + pixels * cost.features_s_per_pixel()) +
        projected * std::min(pixels, kProjectionMaxValues) * cost.pca_s_per_value() +
        projected * projected * cost.projection_s_per_pair();
    e.features_s *= cost.features_scale();
  }
  const v1::LearningBlock& learning = impulse.learning();
  if (!impulse.has_learning() || learning.block() == v1::LEARNING_KIND_UNSPECIFIED) {
    e.total_s = e.features_s;
    return e;
  }

  IMPULSE_ASSIGN_OR_RETURN(model::LayerGraph graph,
                           model::BuildGraph(impulse, std::max<uint32_t>(data.classes, 2)));
  e.macs_per_sample = graph.TotalCost().macs;
  const PassWork all = WorkOf(graph);
  const PassWork backbone = WorkOf(graph, Layers::kBackbone);
  const PassWork head = WorkOf(graph, Layers::kHead);

  const v1::TrainingSettings& training = impulse.training();
  const double validation =
      std::round(static_cast<double>(data.train_rows) * training.validation_split());
  const double train_rows = std::max(0.0, static_cast<double>(data.train_rows) - validation);
  e.train_rows = static_cast<uint64_t>(train_rows);
  e.epochs = training.epochs();

  // Train (worker/training/train.cc): full batches, then a tail batch
  // unless it holds a single row.
  const double batch = std::max<uint32_t>(1, training.batch_size());
  const double full_batches = std::floor(train_rows / batch);
  const double tail = train_rows - full_batches * batch;
  auto epoch_seconds = [&](bool frozen) {
    double s = full_batches * StepSeconds(all, backbone, head, cost, batch, frozen);
    if (tail >= 2) s += StepSeconds(all, backbone, head, cost, tail, frozen);
    s += InferSeconds(all, cost.infer(), validation);
    s += (all.params + static_cast<double>(graph.TotalCost().buffers)) *
         cost.checkpoint_s_per_param();
    return s;
  };
  const bool transfer = learning.block() == v1::LEARNING_KIND_TRANSFER;
  const bool pretrained = transfer && !learning.weights().empty();
  const uint32_t frozen_epochs =
      !pretrained ? 0 : (learning.fine_tune() ? std::min(learning.frozen_epochs(), e.epochs)
                                              : e.epochs);
  const double epoch_s = epoch_seconds(false);
  e.epoch_s = epoch_s * cost.train_scale();
  e.train_s = (cost.task_overhead_s() + frozen_epochs * epoch_seconds(true) +
               (e.epochs - frozen_epochs) * epoch_s) *
              cost.train_scale();

  // Evaluate: float and int8 over validation and test, calibration.
  const double evaluated = validation + static_cast<double>(data.test_rows);
  const double calibration = std::min(train_rows, kCalibrationRows);
  const double elements = static_cast<double>(graph.TotalCost().output_elements);
  e.evaluate_s = cost.task_overhead_s() + InferSeconds(all, cost.infer(), evaluated + calibration) +
                 calibration * elements * cost.activation_stats_s_per_element() +
                 evaluated * SampleSeconds(all, cost.int8()) +
                 all.params * cost.export_s_per_param();
  e.evaluate_s *= cost.evaluate_scale();

  e.total_s = e.features_s + e.train_s + e.evaluate_s;
  return e;
}

std::vector<std::string> FitOptions(const v1::Impulse& raw_impulse, const DatasetSize& data,
                                    const CostTable& cost, double limit_s) {
  const v1::Impulse impulse = impulse::WithDefaults(raw_impulse);
  auto base = TotalOf(impulse, data, cost);
  if (!base || *base <= limit_s) return {};
  std::vector<std::string> ways;

  // Epochs: the total grows with them, so the largest that fits is found
  // by bisection.
  uint32_t lo = 0, hi = impulse.training().epochs();
  double lo_s = 0;
  while (hi - lo > 1) {
    const uint32_t mid = lo + (hi - lo) / 2;
    v1::Impulse fewer = impulse;
    fewer.mutable_training()->set_epochs(mid);
    auto s = TotalOf(fewer, data, cost);
    if (s && *s <= limit_s) {
      lo = mid;
      lo_s = *s;
    } else {
      hi = mid;
    }
  }
  if (lo > 0) ways.push_back("epochs: " + std::to_string(lo) + " (est. " + Seconds(lo_s) + ")");

  // Input size: other features, so none are cached; the aspect ratio kept.
  DatasetSize uncached = data;
  uncached.features_cached = false;
  const uint32_t width = impulse.input().width(), height = impulse.input().height();
  for (uint32_t side : kAdviceSides) {
    if (side >= width) continue;
    const uint32_t h = std::max<uint32_t>(
        1, static_cast<uint32_t>(std::lround(static_cast<double>(height) * side / width)));
    v1::Impulse smaller = impulse;
    smaller.mutable_input()->set_width(side);
    smaller.mutable_input()->set_height(h);
    auto s = TotalOf(smaller, uncached, cost);
    if (s && *s <= limit_s) {
      ways.push_back("input " + std::to_string(side) + "x" + std::to_string(h) + " (est. " +
                     Seconds(*s) + ")");
      break;
    }
  }

  // Width multiplier (transfer learning).
  const v1::LearningBlock& learning = impulse.learning();
  if (learning.block() == v1::LEARNING_KIND_TRANSFER) {
    const bool v1_backbone = learning.backbone() == v1::BACKBONE_MOBILENET_V1;
    const std::vector<float> alphas =
        v1_backbone ? std::vector<float>(std::begin(kMobileNetV1Alphas), std::end(kMobileNetV1Alphas))
                    : std::vector<float>(std::begin(kMobileNetV2Alphas), std::end(kMobileNetV2Alphas));
    for (float alpha : alphas) {
      if (alpha >= learning.alpha() - 1e-6f) continue;
      v1::Impulse narrower = impulse;
      narrower.mutable_learning()->set_alpha(alpha);
      auto s = TotalOf(narrower, data, cost);
      if (s && *s <= limit_s) {
        ways.push_back("alpha " + AlphaText(alpha) + " (est. " + Seconds(*s) + ")");
        break;
      }
    }
  }

  return ways;
}

std::string FitAdvice(const v1::Impulse& impulse, const DatasetSize& data, const CostTable& cost,
                      double limit_s) {
  const std::vector<std::string> ways = FitOptions(impulse, data, cost, limit_s);
  if (ways.empty()) return "";
  std::string text = "fits with " + ways[0];
  for (size_t i = 1; i < ways.size(); ++i) text += ", or " + ways[i];
  return text;
}

}  // namespace impulse::estimate
