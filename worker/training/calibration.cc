#include "worker/training/calibration.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "worker/training/graph_module.h"
#include "worker/training/rows.h"
#include "worker/training/train_step.h"

namespace impulse::worker::training {
namespace {

constexpr int64_t kBatch = 128;
// MixSeed stream of the calibration draw (the train task uses epochs 1..N).
constexpr uint64_t kCalibrationStream = 0xCA11B;

// Sees one layer's output for the batch of rows starting at rows[batch_start].
using BatchObserver =
    std::function<void(size_t batch_start, int layer, const torch::Tensor& output)>;

// Runs `module` over `rows` in batches, showing `observer` every layer's
// output.
Status ForEachBatch(GraphModule& module, const features::FeatureMatrix& fm,
                    const std::vector<uint64_t>& rows, const BatchObserver& observer) {
  for (uint64_t row : rows) {
    if (row >= fm.rows()) {
      return InvalidArgument("rows: " + std::to_string(row) + " is past the " +
                             std::to_string(fm.rows()) + " feature rows");
    }
  }
  torch::NoGradGuard no_grad;
  std::mt19937_64 unused;  // MakeBatch draws only when augmenting
  for (size_t start = 0; start < rows.size(); start += kBatch) {
    const int64_t n = static_cast<int64_t>(std::min<size_t>(kBatch, rows.size() - start));
    module->SetLayerObserver(
        [&](int layer, const torch::Tensor& output) { observer(start, layer, output); });
    module->forward(MakeBatch(fm, rows.data() + start, n, /*augment=*/false, unused));
  }
  module->SetLayerObserver(nullptr);
  return Status::Ok();
}

Result<GraphModule> ModuleFor(const v1::Model& model, const features::FeatureMatrix& fm,
                              const std::vector<uint64_t>& rows, int threads) {
  if (rows.empty()) return InvalidArgument("calibration: no rows to run the model on");
  const auto& shape = fm.shape();
  torch::set_num_threads(std::max(1, threads));
  return LoadEvalModule(model, {shape.channels, shape.height, shape.width});
}

Result<ActivationStats> CollectUnguarded(const v1::Model& model, const features::FeatureMatrix& fm,
                                         const std::vector<uint64_t>& rows, int threads) {
  IMPULSE_ASSIGN_OR_RETURN(GraphModule module, ModuleFor(model, fm, rows, threads));
  ActivationStats stats;
  stats.rows = rows.size();
  stats.layers.resize(model.layers_size());
  int not_finite = -1;  // the first layer seen to output NaN or infinity
  IMPULSE_RETURN_IF_ERROR(
      ForEachBatch(module, fm, rows, [&](size_t, int layer, const torch::Tensor& out) {
        LayerActivationStats& s = stats.layers[layer];
        const auto [lo, hi] = torch::aminmax(out);
        const float min = lo.item<float>(), max = hi.item<float>();
        if (!(std::isfinite(min) && std::isfinite(max)) && not_finite < 0) not_finite = layer;
        s.min = s.observed ? std::min(s.min, min) : min;
        s.max = s.observed ? std::max(s.max, max) : max;
        s.observed = true;
      }));
  if (not_finite >= 0) {
    return Internal("calibration: layers[" + std::to_string(not_finite) + "] (" +
                    model.layers(not_finite).name() +
                    ") outputs NaN or infinity on the calibration rows");
  }
  for (LayerActivationStats& s : stats.layers) {
    if (s.observed && s.max > s.min) s.histogram.assign(kHistogramBins, 0);
  }
  IMPULSE_RETURN_IF_ERROR(
      ForEachBatch(module, fm, rows, [&](size_t, int layer, const torch::Tensor& out) {
        LayerActivationStats& s = stats.layers[layer];
        if (s.histogram.empty()) return;
        // histc's last bin is closed, so max itself is counted.
        const torch::Tensor counts =
            torch::histc(out.to(torch::kFloat32), kHistogramBins, s.min, s.max).to(torch::kDouble);
        const double* c = counts.data_ptr<double>();
        for (int b = 0; b < kHistogramBins; ++b) s.histogram[b] += static_cast<uint64_t>(c[b]);
      }));
  return stats;
}

Result<std::vector<std::vector<std::vector<float>>>> LayerOutputsUnguarded(
    const v1::Model& model, const features::FeatureMatrix& fm, const std::vector<uint64_t>& rows,
    const std::vector<int>& layers, int threads) {
  IMPULSE_ASSIGN_OR_RETURN(GraphModule module, ModuleFor(model, fm, rows, threads));
  std::map<int, size_t> slot;  // layer -> index in `layers`
  for (size_t k = 0; k < layers.size(); ++k) slot[layers[k]] = k;
  std::vector<std::vector<std::vector<float>>> outputs(
      rows.size(), std::vector<std::vector<float>>(layers.size()));
  IMPULSE_RETURN_IF_ERROR(
      ForEachBatch(module, fm, rows, [&](size_t batch_start, int layer, const torch::Tensor& out) {
        auto found = slot.find(layer);
        if (found == slot.end()) return;
        const torch::Tensor nchw = out.to(torch::kFloat32).contiguous();
        const int64_t n = nchw.size(0), per_row = nchw.numel() / n;
        const float* values = nchw.data_ptr<float>();
        for (int64_t r = 0; r < n; ++r) {
          outputs[batch_start + r][found->second].assign(values + r * per_row,
                                                         values + (r + 1) * per_row);
        }
      }));
  for (size_t k = 0; k < layers.size(); ++k) {
    if (!rows.empty() && outputs[0][k].empty()) {
      return InvalidArgument("calibration: layer " + std::to_string(layers[k]) +
                             " is not run by the float model's forward()");
    }
  }
  return outputs;
}

template <typename F>
auto Guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const c10::Error& e) {
    return Internal(std::string("calibration: LibTorch: ") + e.what_without_backtrace());
  }
}

// The value below which `fraction` of the histogram's mass lies.
float Quantile(const LayerActivationStats& s, double fraction) {
  const uint64_t total = std::accumulate(s.histogram.begin(), s.histogram.end(), uint64_t{0});
  const double target = fraction * static_cast<double>(total);
  const double width = (static_cast<double>(s.max) - s.min) / kHistogramBins;
  double below = 0;
  for (int b = 0; b < kHistogramBins; ++b) {
    const double count = static_cast<double>(s.histogram[b]);
    if (count > 0 && below + count >= target) {
      const double inside = (target - below) / count;
      return static_cast<float>(std::clamp(s.min + (b + inside) * width, static_cast<double>(s.min),
                                           static_cast<double>(s.max)));
    }
    below += count;
  }
  return s.max;
}

}  // namespace

std::vector<uint64_t> CalibrationRows(const features::FeatureMatrix& features,
                                      const std::vector<uint64_t>& train_rows, uint64_t count,
                                      uint64_t seed) {
  if (count >= train_rows.size()) return train_rows;
  std::map<uint32_t, std::vector<uint64_t>> by_label;
  for (uint64_t row : train_rows) by_label[features.info(row).label].push_back(row);
  // Largest-remainder quotas: each label's share of `count`, summing to it.
  struct Quota {
    uint32_t label;
    uint64_t take;
    double remainder;
  };
  std::vector<Quota> quotas;
  uint64_t given = 0;
  for (const auto& [label, rows] : by_label) {
    const double exact =
        static_cast<double>(count) * static_cast<double>(rows.size()) / train_rows.size();
    quotas.push_back({label, static_cast<uint64_t>(exact), exact - std::floor(exact)});
    given += quotas.back().take;
  }
  std::vector<size_t> order(quotas.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return quotas[a].remainder > quotas[b].remainder; });
  for (size_t k = 0; given < count; k = (k + 1) % order.size()) {
    Quota& q = quotas[order[k]];
    if (q.take < by_label[q.label].size()) ++q.take, ++given;
  }
  std::vector<uint64_t> picked;
  for (const Quota& q : quotas) {
    std::vector<uint64_t> rows = by_label[q.label];
    std::mt19937_64 rng(MixSeed(seed, kCalibrationStream + q.label));
    rows = ShuffledRows(std::move(rows), rng);
    picked.insert(picked.end(), rows.begin(), rows.begin() + static_cast<ptrdiff_t>(q.take));
  }
  std::sort(picked.begin(), picked.end());
  return picked;
}

Result<ActivationStats> CollectActivationStats(const v1::Model& model,
                                               const features::FeatureMatrix& features,
                                               const std::vector<uint64_t>& rows, int threads) {
  return Guarded([&] { return CollectUnguarded(model, features, rows, threads); });
}

std::vector<int8::ActivationRange> Ranges(const ActivationStats& stats, double percentile) {
  std::vector<int8::ActivationRange> ranges(stats.layers.size());
  for (size_t i = 0; i < stats.layers.size(); ++i) {
    const LayerActivationStats& s = stats.layers[i];
    if (!s.observed) continue;
    ranges[i] = {s.min, s.max};
    if (percentile >= 100 || s.histogram.empty()) continue;
    const double tail = (100.0 - percentile) / 100.0;
    ranges[i] = {Quantile(s, tail), Quantile(s, 1.0 - tail)};
  }
  return ranges;
}

Result<std::vector<std::vector<std::vector<float>>>> LayerOutputs(
    const v1::Model& model, const features::FeatureMatrix& features,
    const std::vector<uint64_t>& rows, const std::vector<int>& layers, int threads) {
  return Guarded([&] { return LayerOutputsUnguarded(model, features, rows, layers, threads); });
}

}  // namespace impulse::worker::training
