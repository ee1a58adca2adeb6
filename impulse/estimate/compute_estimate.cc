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

// Seconds per sample, without the per-batch terms.
double SampleSeconds(const PassWork& w, const PassCosts& c) {
  return w.conv_macs * c.conv_s_per_mac() + w.depthwise_macs * c.depthwise_s_per_mac() +
         w.pointwise_macs * c.pointwise_s_per_mac() + w.dense_macs * c.dense_s_per_mac() +
         w.elements * c.elementwise_s_per_element();
}

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
  train.set_conv_s_per_mac(0.9e-9);
  train.set_depthwise_s_per_mac(6.0e-9);
  train.set_pointwise_s_per_mac(0.8e-9);
  train.set_dense_s_per_mac(0.7e-9);
  train.set_elementwise_s_per_element(6.0e-9);
  train.set_batch_overhead_s(1.0e-3);
  train.set_layer_overhead_s(60e-6);
  train.set_param_s(4e-9);
  PassCosts& infer = *t.mutable_infer();
  infer.set_conv_s_per_mac(0.3e-9);
  infer.set_depthwise_s_per_mac(2.0e-9);
  infer.set_pointwise_s_per_mac(0.27e-9);
  infer.set_dense_s_per_mac(0.25e-9);
  infer.set_elementwise_s_per_element(1.5e-9);
  infer.set_batch_overhead_s(0.2e-3);
  infer.set_layer_overhead_s(15e-6);
  t.set_infer_int8_s_per_mac(1.0e-9);
  t.set_features_s_per_sample(5e-6);
  t.set_features_s_per_pixel(5e-9);
  t.set_projection_s_per_sample(2e-3);
  t.set_task_overhead_s(0.5);
  t.set_checkpoint_s_per_param(20e-9);
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
    double elements = static_cast<double>(cost.output_elements);
    switch (layer.kind()) {
      case v1::LAYER_KIND_CONV2D:
        if (layer.groups() > 1) {
          work.depthwise_macs += macs;
        } else if (layer.kernel_h() == 1 && layer.kernel_w() == 1) {
          work.pointwise_macs += macs;
        } else {
          work.conv_macs += macs;
        }
        break;
      case v1::LAYER_KIND_DEPTHWISE_CONV2D:
        work.depthwise_macs += macs;
        break;
      case v1::LAYER_KIND_DENSE:
        work.dense_macs += macs;
        break;
      case v1::LAYER_KIND_MAX_POOL:
      case v1::LAYER_KIND_AVG_POOL:
      case v1::LAYER_KIND_GLOBAL_AVG_POOL:
        // A pool reads its whole input (and its backward writes it).
        elements += static_cast<double>(graph.Cost(static_cast<int>(layer.inputs(0))).output_elements);
        break;
      case v1::LAYER_KIND_FLATTEN:
        elements = 0;  // a view
        break;
      default:
        break;
    }
    work.elements += elements;
    if (i > 0 && layer.kind() != v1::LAYER_KIND_FLATTEN) work.layers += 1;
    work.params += static_cast<double>(cost.params);
  }
  return work;
}

double BatchSeconds(const PassWork& work, const PassCosts& costs, double rows,
                    bool optimizer_step) {
  return costs.batch_overhead_s() + BatchFixedSeconds(work, costs, optimizer_step) +
         rows * SampleSeconds(work, costs);
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
    e.features_s =
        cost.task_overhead_s() +
        all_rows * (cost.features_s_per_sample() + pixels * cost.features_s_per_pixel()) +
        std::min(all_rows, kProjectionMaxSamples) * cost.projection_s_per_sample();
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
  e.epoch_s = epoch_seconds(false);
  e.train_s = cost.task_overhead_s() + frozen_epochs * epoch_seconds(true) +
              (e.epochs - frozen_epochs) * e.epoch_s;

  // Evaluate: float and int8 over validation and test, calibration.
  const double evaluated = validation + static_cast<double>(data.test_rows);
  e.evaluate_s =
      cost.task_overhead_s() +
      InferSeconds(all, cost.infer(), evaluated + std::min(train_rows, kCalibrationRows)) +
      evaluated * static_cast<double>(e.macs_per_sample) * cost.infer_int8_s_per_mac();

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
