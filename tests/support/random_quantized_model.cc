#include "tests/support/random_quantized_model.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "worker/int8/kernel_ops.h"

namespace impulse::testing {
namespace {

using model::Activation;
using model::FusedOp;
using model::OpKind;
using worker::int8::QuantizedModel;
using worker::int8::QuantizedOp;
using worker::int8::QuantizeMultiplier;
using worker::int8::QuantParams;

// Activations are calibrated to this spread (standard deviation, in int8
// steps) on a few random inputs: wide, and rarely saturated.
constexpr double kSpreadSteps = 32.0;
constexpr int kSamples = 6;

// Uniform draws from the top 32 bits of std::mt19937_64: identical everywhere.
class Draw {
 public:
  explicit Draw(uint64_t seed) : rng_(seed) {}
  double Real(double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(rng_() >> 32) / 4294967296.0;
  }
  int32_t Int(int32_t lo, int32_t hi) {
    return lo + static_cast<int32_t>((rng_() >> 32) % static_cast<uint64_t>(hi - lo + 1));
  }

 private:
  std::mt19937_64 rng_;
};

struct Stats {
  double mean = 0;  // of q - zero_point
  double rms = 0;   // of q - zero_point
  double deviation = 0;
};

// Builds the model op by op, running each new op on sample inputs with the
// very kernels under test, to choose its output scale and zero point.
class Builder {
 public:
  Builder(const model::LayerGraph& graph, uint64_t seed) : draw_(seed) {
    m_.input_shape = graph.input_shape();
    m_.input = {1.0f / 255.0f, -128};
    m_.labels.assign(graph.model().labels().begin(), graph.model().labels().end());
    m_.architecture = graph.model().architecture();
    m_.method = "random";
    const size_t size = worker::int8::ShapeElements(m_.input_shape);
    for (int s = 0; s < kSamples; ++s) {
      inputs_.emplace_back(size);
      for (int8_t& x : inputs_.back()) x = static_cast<int8_t>(draw_.Int(-128, 127));
    }
  }

  void Add(const model::LayerGraph& graph, const FusedOp& op) {
    const v1::Layer& layer = graph.layer(op.layer);
    QuantizedOp q;
    q.op = op;
    q.name = layer.name();
    q.kernel_h = layer.kernel_h();
    q.kernel_w = layer.kernel_w();
    q.stride_h = std::max(layer.stride_h(), 1u);
    q.stride_w = std::max(layer.stride_w(), 1u);
    q.pad_top = layer.pad_top();
    q.pad_bottom = layer.pad_bottom();
    q.pad_left = layer.pad_left();
    q.pad_right = layer.pad_right();
    m_.ops.push_back(std::move(q));
    switch (op.kind) {
      case OpKind::kConv2D:
      case OpKind::kDepthwiseConv2D:
      case OpKind::kDense:
        AddWeighted();
        break;
      case OpKind::kAdd:
        AddAdd();
        break;
      case OpKind::kSoftmax:
        AddSoftmax();
        break;
      default:  // pools and clamps keep their input's parameters
        m_.ops.back().output = Params(op.inputs[0]);
        SetClamp();
        outputs_.push_back(Run());
        break;
    }
  }

  QuantizedModel Finish(const model::FusedOps& fused) {
    m_.buffers = model::OpOutputBuffers(fused, 1);
    m_.arena = model::PlanArena(m_.buffers);
    return std::move(m_);
  }

 private:
  QuantizedOp& op() { return m_.ops.back(); }
  QuantParams Params(int tensor) const { return tensor < 0 ? m_.input : m_.ops[tensor].output; }
  const std::vector<int8_t>& Sample(int tensor, int s) const {
    return tensor < 0 ? inputs_[s] : outputs_[tensor][s];
  }

  Stats Measure(int tensor, int32_t zero_point) const {
    double sum = 0, sum2 = 0, n = 0;
    for (int s = 0; s < kSamples; ++s) {
      for (int8_t q : Sample(tensor, s)) {
        sum += q - zero_point;
        sum2 += double(q - zero_point) * (q - zero_point);
        ++n;
      }
    }
    Stats stats{sum / n, std::sqrt(sum2 / n), 0};
    stats.deviation = std::sqrt(std::max(0.0, stats.rms * stats.rms - stats.mean * stats.mean));
    return stats;
  }

  // The new op on every sample.
  std::vector<std::vector<int8_t>> Run() const {
    const std::vector<worker::int8::KernelOp> ops = worker::int8::BuildKernelOps(m_);
    const worker::int8::KernelOp& k = ops.back();
    std::vector<std::vector<int8_t>> out;
    for (int s = 0; s < kSamples; ++s) {
      out.emplace_back(m_.ops.back().op.output_elements);
      const int8_t* in2 = k.inputs.size() > 1 ? Sample(k.inputs[1], s).data() : nullptr;
      worker::int8::RunKernelOp(k, Sample(k.inputs[0], s).data(), in2, out.back().data());
    }
    return out;
  }

  // Provisional parameters were set with zero point 0 and no clamp: run,
  // then return the factor that brings the spread to kSpreadSteps and set
  // the zero point (centred, or real 0 at -128 under a ReLU).
  double Calibrate() {
    outputs_.push_back(Run());
    const Stats stats = Measure(static_cast<int>(m_.ops.size()) - 1, 0);
    outputs_.pop_back();
    const double factor = kSpreadSteps / std::max(stats.deviation, 0.5);
    op().output.zero_point =
        op().op.activation != Activation::kNone
            ? -128
            : static_cast<int32_t>(std::clamp(std::round(-stats.mean * factor), -100.0, 100.0));
    return factor;
  }

  void SetClamp() {
    QuantizedOp& q = op();
    if (q.op.activation == Activation::kNone) return;
    q.activation_min = std::max(-128, q.output.zero_point);
    if (q.op.activation == Activation::kRelu6) {
      q.activation_max = static_cast<int32_t>(
          std::clamp<double>(q.output.zero_point + std::round(6.0 / q.output.scale), -128, 127));
    }
  }

  // conv / depthwise / dense: random weights and small biases; per-channel
  // multipliers within +-30 % of each other.
  void AddWeighted() {
    QuantizedOp& q = op();
    const int input = q.op.inputs[0];
    const QuantParams in = Params(input);
    const uint32_t channels = q.op.output_shape[0];
    const std::vector<uint32_t>& in_shape =
        input < 0 ? m_.input_shape : m_.ops[input].op.output_shape;
    uint64_t fan_in = uint64_t{q.kernel_h} * q.kernel_w;  // depthwise
    if (q.op.kind == OpKind::kConv2D) fan_in *= in_shape[0];
    if (q.op.kind == OpKind::kDense) fan_in = worker::int8::ShapeElements(in_shape);
    q.weights.resize(channels * fan_in);
    for (int8_t& w : q.weights) w = static_cast<int8_t>(draw_.Int(-127, 127));
    // The accumulator's spread: ~73 (uniform weights) * input rms * sqrt(fan_in).
    const double acc_spread = 73.0 * std::max(Measure(input, in.zero_point).rms, 1.0) *
                              std::sqrt(static_cast<double>(fan_in));
    const size_t multipliers = q.op.kind == OpKind::kDense ? 1 : channels;
    std::vector<double> real(multipliers);
    for (double& r : real) r = draw_.Real(0.7, 1.3) * 8.0 / acc_spread;  // ~8 steps for now
    for (uint32_t c = 0; c < channels; ++c) {
      q.bias.push_back(static_cast<int32_t>(draw_.Real(-0.3, 0.3) * acc_spread));
    }
    q.output = {static_cast<float>(draw_.Real(0.02, 0.06)), 0};
    SetMultipliers(real, in);
    const double factor = Calibrate();
    for (double& r : real) r *= factor;
    SetMultipliers(real, in);
    SetClamp();
    outputs_.push_back(Run());
  }

  void SetMultipliers(const std::vector<double>& real, const QuantParams& in) {
    QuantizedOp& q = op();
    q.output_multipliers.clear();
    q.weight_scales.clear();
    for (double r : real) {
      q.output_multipliers.push_back(QuantizeMultiplier(r));
      q.weight_scales.push_back(static_cast<float>(r * q.output.scale / in.scale));
    }
  }

  // TFLite's parameters: both inputs to twice the larger scale, shifted left.
  void SetAddMultipliers(const QuantParams& a, const QuantParams& b) {
    QuantizedOp& q = op();
    const double twice_max = 2.0 * std::max(a.scale, b.scale);
    q.input_multipliers = {QuantizeMultiplier(a.scale / twice_max),
                           QuantizeMultiplier(b.scale / twice_max)};
    q.add_output_multiplier = QuantizeMultiplier(
        twice_max / (static_cast<double>(1 << worker::int8::kAddLeftShift) * q.output.scale));
  }

  void AddAdd() {
    const QuantParams a = Params(op().op.inputs[0]), b = Params(op().op.inputs[1]);
    op().output = {std::max(a.scale, b.scale) * 4.0f, 0};
    SetAddMultipliers(a, b);
    const double factor = Calibrate();
    op().output.scale = static_cast<float>(op().output.scale / factor);
    SetAddMultipliers(a, b);
    SetClamp();
    outputs_.push_back(Run());
  }

  void AddSoftmax() {
    QuantizedOp& q = op();
    const QuantParams in = Params(q.op.inputs[0]);
    q.output = {1.0f / 256.0f, -128};
    for (int d = 0; d < 256; ++d) {
      q.exp_table.push_back(static_cast<uint32_t>(std::lround(65536.0 * std::exp(-d * in.scale))));
    }
    outputs_.push_back(Run());
  }

  Draw draw_;
  QuantizedModel m_;
  std::vector<std::vector<int8_t>> inputs_;                // [sample]
  std::vector<std::vector<std::vector<int8_t>>> outputs_;  // [op][sample]
};

}  // namespace

Result<QuantizedModel> RandomQuantizedModel(const model::LayerGraph& graph, uint64_t seed) {
  IMPULSE_ASSIGN_OR_RETURN(model::FusedOps fused, model::FusedOps::FromGraph(graph));
  Builder builder(graph, seed);
  for (const FusedOp& op : fused.ops()) builder.Add(graph, op);
  return builder.Finish(fused);
}

}  // namespace impulse::testing
