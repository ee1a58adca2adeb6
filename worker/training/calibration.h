// Calibration for post-training int8 quantization (worker/int8/quantizer.h):
// what the trained float model's layers output on a representative sample
// of its training rows. LibTorch-free header; the implementation runs the
// float model (GraphModule with a layer observer).
//
// Algorithm:
//   1. CalibrationRows picks up to `count` TRAIN rows of the train split,
//      stratified (each label keeps its share, largest remainders first)
//      and seeded, so the same model and settings calibrate on the same rows.
//   2. CollectActivationStats runs the model twice over those rows in eval
//      mode: the first pass records each layer's min and max, the second a
//      histogram of kHistogramBins equal bins over [min, max].
//   3. Ranges turns the statistics into one range per layer: min/max, or a
//      percentile of each tail read off the histogram (linear inside a bin),
//      which clips rare outliers so the int8 steps of the common values are
//      finer.
//
// Thread safety: the free functions share nothing, but LibTorch's thread
// count is process-wide (one calibration at a time per process).
#pragma once

#include <cstdint>
#include <vector>

#include "impulse/status.h"
#include "impulse/v1/model.pb.h"
#include "worker/features/feature_matrix.h"
#include "worker/int8/quantizer.h"

namespace impulse::worker::training {

// The DESIGN's "a few hundred images": enough for stable 99.99th percentiles
// of conv outputs (hundreds of thousands of values per layer), a second or
// two of float inference even for a MobileNet at 96x96.
inline constexpr uint64_t kDefaultCalibrationRows = 500;
inline constexpr int kHistogramBins = 2048;

// Up to `count` rows of `train_rows` (each a row of `features`), stratified
// by label and drawn with `seed`; increasing row order. All of them when
// count >= train_rows.size().
std::vector<uint64_t> CalibrationRows(const features::FeatureMatrix& features,
                                      const std::vector<uint64_t>& train_rows, uint64_t count,
                                      uint64_t seed);

// One layer's outputs over the calibration rows. `observed` is false for
// the layers forward() does not run (the INPUT, a final SOFTMAX): their
// range is left to the quantizer's fixed parameters.
struct LayerActivationStats {
  bool observed = false;
  float min = 0;
  float max = 0;
  std::vector<uint64_t> histogram;  // kHistogramBins counts over [min, max]
};

struct ActivationStats {
  uint64_t rows = 0;                         // calibration rows seen
  std::vector<LayerActivationStats> layers;  // one per layer of the graph
};

// InvalidArgument when the model does not fit the features (as
// PredictLogits), `rows` is empty or names a row past the matrix; Internal
// with LibTorch's message when it throws, or when a layer outputs NaN or
// infinity (naming the layer). Sets LibTorch's thread count to `threads`.
Result<ActivationStats> CollectActivationStats(const v1::Model& model,
                                               const features::FeatureMatrix& features,
                                               const std::vector<uint64_t>& rows, int threads);

// One range per layer. percentile == 100: each layer's min and max;
// otherwise in [50, 100): min at the (100 - percentile)th and max at the
// percentile-th percentile of the layer's values. Unobserved layers get
// {0, 0}.
std::vector<int8::ActivationRange> Ranges(const ActivationStats& stats, double percentile);

// The float outputs of `layers` (indices into the model's layers, each run
// by forward()) on each of `rows`: result[r][k] is layers[k]'s output for
// rows[r], flattened [C, H, W] C-major. For comparing int8 op outputs with
// the float layers they replace. Failures as CollectActivationStats.
Result<std::vector<std::vector<std::vector<float>>>> LayerOutputs(
    const v1::Model& model, const features::FeatureMatrix& features,
    const std::vector<uint64_t>& rows, const std::vector<int>& layers, int threads);

}  // namespace impulse::worker::training
