#include "worker/training/layer_probes.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "impulse/estimate/compute_estimate.h"

namespace impulse::worker::training {
namespace {

using estimate::PassWork;

// (a - b) / n, field by field.
PassWork Minus(const PassWork& a, const PassWork& b, double n) {
  PassWork d;
  for (double PassWork::*field :
       {&PassWork::conv_macs, &PassWork::conv_outputs, &PassWork::depthwise_macs,
        &PassWork::depthwise_channels, &PassWork::depthwise_1x1_channels, &PassWork::pointwise_macs,
        &PassWork::pointwise_outputs, &PassWork::dense_macs, &PassWork::batch_norm_elements,
        &PassWork::pool_elements, &PassWork::elements, &PassWork::layers, &PassWork::params}) {
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
  c.set_batch_overhead_s(std::max(t_tiny - tiny_layers * c.layer_overhead_s(), kMinShare * t_tiny));
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

}  // namespace

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
      Measure(timer, {.prefix = conv16, .layer = [](GraphSketch& s) { s.Relu(); }, .more = 8}, c));
  c.set_elementwise_s_per_element(PerUnit(act, &PassWork::elements));
  IMPULSE_ASSIGN_OR_RETURN(
      Measured pool,
      Measure(
          timer,
          {.prefix = conv16, .layer = [](GraphSketch& s) { s.MaxPool(); }, .fewer = 0, .more = 1},
          c));
  c.set_pool_s_per_element(PerUnit(pool, &PassWork::pool_elements));
  // k x k conv: a first layer on one channel (9 MACs per output) and a
  // 32 -> 32 one (288).
  IMPULSE_ASSIGN_OR_RETURN(
      Measured thin,
      Measure(
          timer,
          {.channels = 1, .layer = [](GraphSketch& s) { s.Conv(16, 3); }, .fewer = 0, .more = 1},
          c));
  IMPULSE_ASSIGN_OR_RETURN(Measured thick, Measure(timer,
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

}  // namespace impulse::worker::training
